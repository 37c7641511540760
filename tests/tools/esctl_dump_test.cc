// esctl dump: a segment's batches with offsets, sizes, positions and checksums, of a stopped
// store or of a running daemon's files.
#include <gtest/gtest.h>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/store.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using storage::testing::SegmentFiles;

class EsctlDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(store->AppendSync("d", storage::ExpectedVersion::Any(),
                                    storage::testing::MakeEvents("d", 2 * i, 2, 0, 400)).ok());
    }
  }
  Result Dump(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data-dir", dir_.path().string(), "dump"});
    return RunEsctl(args);
  }
  storage::testing::TempDir dir_;
};

TEST_F(EsctlDumpTest, ListsEveryBatchOfASegmentWithOffsetsAndChecksums) {
  const auto seg = SegmentFiles(dir_.path())[0];
  const auto offsets = storage::testing::BatchOffsets(seg);
  const Result r = Dump({seg.filename().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), offsets.size());
  EXPECT_EQ(lines[0].rfind("offset 64 ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("positions 0..1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" ok"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("offset " + std::to_string(offsets[1])), std::string::npos) << lines[1];
}

TEST_F(EsctlDumpTest, PositionShowsTheBatchThatHoldsIt) {
  const Result r = Dump({"--position", "301"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_NE(lines[0].find("positions 300..301"), std::string::npos) << lines[0];
  const Result json = Dump({"--position", "301", "--json"});
  EXPECT_NE(json.out.find("\"firstPosition\":300"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"status\":\"ok\""), std::string::npos) << json.out;
  EXPECT_EQ(Dump({"--position", "100000"}).code, 1);
}

TEST_F(EsctlDumpTest, ADamagedBatchIsListedWithItsStatusAndExitFour) {
  const auto seg = SegmentFiles(dir_.path())[0];
  const auto offsets = storage::testing::BatchOffsets(seg);
  storage::testing::FlipByte(seg, offsets[5] + 100);
  const Result r = Dump({seg.filename().string()});
  EXPECT_EQ(r.code, 4) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << "the batches before it, then the damaged one";
  EXPECT_NE(lines[5].find("checksum mismatch"), std::string::npos) << lines[5];
  EXPECT_NE(r.err.find("offset " + std::to_string(offsets[5])), std::string::npos) << r.err;
}

TEST_F(EsctlDumpTest, BadUsageSaysWhatIsNeeded) {
  EXPECT_EQ(Dump({}).code, 2);
  EXPECT_EQ(Dump({"00000000000000000000.seg", "--position", "1"}).code, 2);
  EXPECT_EQ(Dump({"nosuch.seg"}).code, 1);
  EXPECT_EQ(RunEsctl({"dump", "x.seg"}).code, 2) << "no --data-dir";
}

TEST_F(EsctlDumpTest, ADamagedSegmentHeaderIsDamageNotAMissingFile) {
  const auto seg = SegmentFiles(dir_.path())[0];
  storage::testing::FlipByte(seg, 8);
  const Result r = Dump({seg.filename().string()});
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("bad segment header"), std::string::npos) << r.err;
}

TEST(EsctlDump, WorksOnTheFilesOfARunningDaemonWhileItServes) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  auto c = client::Client::Connect(esd.rpc_address());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c->Append("live", client::Expected::Any(), {client::NewEvent::Json("E", "{}")}).ok());
  }
  const Result r = RunEsctl({"--data-dir", (dir.path() / "data").string(), "dump", "--position", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("positions 3..3"), std::string::npos) << r.out;
  EXPECT_TRUE(c->Append("live", client::Expected::Exact(4), {client::NewEvent::Json("E", "{}")}).ok())
      << "the daemon serves on: dump read the files only";
}

}  // namespace
}  // namespace esd
