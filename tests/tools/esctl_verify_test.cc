// esctl --data-dir DIR verify on a stopped store: clean is 0; a flipped byte and a damaged
// snapshot are each named; damage exits 4; a missing or truncated index file (which open
// rebuilds) is a note, with exit 0; a running esd is named.
#include <gtest/gtest.h>

#include "client/client.h"
#include "domain/snapshots.h"
#include "server/esd_process.h"
#include "storage/store.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using storage::testing::SegmentFiles;

class EsctlVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
    for (int i = 0; i < 300; ++i) {
      const std::string s = "v-" + std::to_string(i % 3);
      ASSERT_TRUE(store->AppendSync(s, storage::ExpectedVersion::Any(),
                                    storage::testing::MakeEvents(s, i / 3, 1, 0, 400)).ok());
    }
    snapshot_ = dir_.path() / "snapshots" / "projections" / "orders.snap";
    ASSERT_TRUE(domain::WriteSnapshotFile(snapshot_, 7, domain::EncodeProjection(7, 0, {})).ok());
  }
  Result Verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--data-dir", dir_.path().string(), "verify"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunEsctl(args);
  }
  storage::testing::TempDir dir_;
  std::filesystem::path snapshot_;
};

TEST_F(EsctlVerifyTest, ACleanStoreExitsZeroAndSaysWhatItChecked) {
  const Result r = Verify();
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("clean: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("300 events"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 snapshots"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("verify: 100%"), std::string::npos) << "progress lines when not on a terminal: " << r.err;
}

TEST_F(EsctlVerifyTest, AFlippedByteIsNamedByFileAndPositionWithExitFour) {
  const auto seg = SegmentFiles(dir_.path())[1];
  storage::testing::FlipByte(seg, storage::testing::BatchOffsets(seg)[2] + 90);
  const Result r = Verify();
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("BAD segments/" + seg.filename().string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(position "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checksum"), std::string::npos) << r.out;
}

// Open rebuilds an index file it cannot load from its segment, losing nothing: verify is as
// strict as open, so that is a note, not damage.
TEST_F(EsctlVerifyTest, ATruncatedIndexFileIsANoteNamingItAndExitsZero) {
  auto idx = SegmentFiles(dir_.path())[0];
  idx.replace_extension(".idx");
  storage::testing::TruncateFile(idx, std::filesystem::file_size(idx) / 2);
  const Result r = Verify();
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("note: segments/" + idx.filename().string() + ": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rebuilds it"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("BAD "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clean: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 problems, 1 note"), std::string::npos) << r.out;
}

TEST_F(EsctlVerifyTest, AMissingIndexFileIsANoteAndExitsZero) {
  auto idx = SegmentFiles(dir_.path())[1];
  idx.replace_extension(".idx");
  ASSERT_TRUE(std::filesystem::remove(idx));
  Result r = Verify();
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("note: segments/" + idx.filename().string() + ": missing"), std::string::npos) << r.out;
  r = Verify({"--json"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("{\"ok\":true", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\"notes\":[\"segments/" + idx.filename().string() + ": missing"), std::string::npos) << r.out;
}

TEST_F(EsctlVerifyTest, ADamagedSnapshotIsANoteSinceEsdRebuildsWhatItCovers) {
  storage::testing::FlipByte(snapshot_, std::filesystem::file_size(snapshot_) - 3);
  const Result r = Verify();
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("note: snapshots/projections/orders.snap: snapshot does not verify"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("nothing is lost"), std::string::npos) << r.out;
}

TEST_F(EsctlVerifyTest, JsonListsEachProblem) {
  const auto seg = SegmentFiles(dir_.path())[0];
  storage::testing::FlipByte(seg, storage::testing::BatchOffsets(seg)[1] + 90);
  const Result r = Verify({"--json"});
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.out.rfind("{\"ok\":false", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\"problems\":[{\"file\":\"segments/" + seg.filename().string()), std::string::npos) << r.out;
}

TEST_F(EsctlVerifyTest, ARunningDaemonIsNamedAndNothingIsRead) {
  testing::EsdProcess esd(dir_.path());
  const Result r = Verify();
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("pid " + std::to_string(esd.pid())), std::string::npos) << r.err;
}

TEST(EsctlVerify, OnlineTheDaemonChecksItsFilesWhileServing) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  testing::EsdProcess esd(data, {"--segment-size", "1048576", "--max-event-size", "65536"});
  {
    auto c = client::Client::Connect(esd.rpc_address());
    for (int i = 0; i < 60; ++i) {
      std::vector<client::NewEvent> batch;
      for (int k = 0; k < 50; ++k) batch.push_back(client::NewEvent::Json("E", "\"" + std::string(400, 'x') + "\""));
      ASSERT_TRUE(c->Append("online", client::Expected::Any(), batch).ok());
    }
  }
  Result r = RunEsctl({"--connect", esd.rpc_address(), "verify"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("clean: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3000 events"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("verify: 100%"), std::string::npos) << "the daemon's progress, as plain lines: " << r.err;

  const auto seg = SegmentFiles(data)[0];  // sealed: the daemon only reads it
  storage::testing::FlipByte(seg, storage::testing::BatchOffsets(seg)[3] + 200);
  r = RunEsctl({"--connect", esd.rpc_address(), "verify"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("BAD segments/" + seg.filename().string()), std::string::npos) << r.out;
}

TEST(EsctlVerify, OnlineAMissingIndexFileIsANoteAndExitsZero) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  {
    // Written before esd starts: closing the store has written every sealed segment's index.
    auto store = storage::Store::Open(data, storage::testing::SmallOptions()).value();
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(
          store->AppendSync("s", storage::ExpectedVersion::Any(), storage::testing::MakeEvents("s", i, 1, 0, 400)).ok());
    }
  }
  testing::EsdProcess esd(data, {"--segment-size", "65536", "--max-event-size", "16384"});
  // The daemon has the sealed segment's index loaded; verify reads the files as they are.
  auto idx = SegmentFiles(data)[0];
  idx.replace_extension(".idx");
  ASSERT_TRUE(std::filesystem::remove(idx));
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "verify"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("note: segments/" + idx.filename().string() + ": missing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clean: "), std::string::npos) << r.out;
}

TEST(EsctlVerify, WithoutAStoreItSaysWhatToDo) {
  storage::testing::TempDir empty;
  Result r;
  r = RunEsctl({"--data-dir", empty.path().string(), "verify"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("holds no store"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace esd
