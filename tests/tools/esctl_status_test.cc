// esctl --data-dir DIR status: what a stopped store holds, from its files.
#include <gtest/gtest.h>
#include <signal.h>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/store.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

TEST(EsctlStatus, OfflineStatusReadsPositionsStreamsAndTheProjectionCheckpoint) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  {
    testing::EsdProcess esd(data);
    auto c = client::Client::Connect(esd.rpc_address());
    ASSERT_TRUE(c->CreateOrder("s1", "cust").ok());
    ASSERT_TRUE(c->Append("other", client::Expected::Any(), {client::NewEvent::Json("E", "{}")}).ok());
    ASSERT_EQ(esd.Stop(SIGTERM), 0);  // saves the projection at checkpoint 2
  }
  Result r = RunEsctl({"--data-dir", data.string(), "--json", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"durablePosition\":2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"streams\":2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"checkpoint\":2,\"lag\":0,\"snapshot\":true"), std::string::npos) << r.out;
  r = RunEsctl({"--data-dir", data.string(), "status"});
  EXPECT_NE(r.out.find("durable position  2"), std::string::npos) << r.out;

  testing::EsdProcess running(data);
  r = RunEsctl({"--data-dir", data.string(), "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("pid " + std::to_string(running.pid())), std::string::npos) << r.err;
}


TEST(EsctlStatus, OfflineStatusSaysWhatOpeningRepairedInTheWordsOfVerify) {
  storage::testing::TempDir dir;
  {
    auto store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
    for (uint64_t i = 0; i < 5; ++i) {
      ASSERT_TRUE(store->AppendSync("t", storage::ExpectedVersion::Any(), storage::testing::MakeEvents("t", i, 1)).ok());
    }
  }
  const auto seg = storage::testing::SegmentFiles(dir.path()).back();
  storage::testing::FlipByte(seg, storage::testing::BatchOffsets(seg).back() + 70);  // the last batch: a torn tail
  const Result verify = RunEsctl({"--data-dir", dir.path().string(), "verify"});
  ASSERT_EQ(verify.code, 0) << verify.out << verify.err;
  const std::string note = verify.out.substr(verify.out.find("note: ") + 6);
  const Result r = RunEsctl({"--data-dir", dir.path().string(), "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("recovery          " + note.substr(0, note.find('\n'))), std::string::npos)
      << r.out << "\nverify said: " << verify.out;
  EXPECT_NE(r.out.find("durable position  4"), std::string::npos) << r.out;
}

// The number after "key": in a line of JSON (0 when absent).
uint64_t JsonNumber(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  return at == std::string::npos ? 0 : std::stoull(json.substr(at + key.size() + 3));
}

TEST(EsctlStatus, StatusReportsTheLogWrittenAndTheDiskAllocatedSeparatelyOnlineAndOffline) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  uint64_t online_log = 0;
  {
    testing::EsdProcess esd(data);
    auto c = client::Client::Connect(esd.rpc_address());
    ASSERT_TRUE(c->Append("s", client::Expected::Any(), {client::NewEvent::Json("E", "{\"n\":1}")}).ok());
    Result r = RunEsctl({"--connect", esd.rpc_address(), "--json", "status"});
    ASSERT_EQ(r.code, 0) << r.err;
    online_log = JsonNumber(r.out, "logBytes");
    EXPECT_GT(online_log, 64u) << "a segment header and a batch: " << r.out;
    EXPECT_GT(JsonNumber(r.out, "allocatedBytes"), online_log) << r.out;
    r = RunEsctl({"--connect", esd.rpc_address(), "status"});
    EXPECT_NE(r.out.find("log               " + std::to_string(online_log) + " bytes written, "), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(" bytes allocated on disk"), std::string::npos) << r.out;
    ASSERT_EQ(esd.Stop(SIGTERM), 0);
  }
  Result r = RunEsctl({"--data-dir", data.string(), "--json", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(JsonNumber(r.out, "logBytes"), online_log) << "the same log, read from the files: " << r.out;
  EXPECT_GT(JsonNumber(r.out, "allocatedBytes"), online_log) << r.out;
  r = RunEsctl({"--data-dir", data.string(), "status"});
  EXPECT_NE(r.out.find("log               " + std::to_string(online_log) + " bytes written, "), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace esd
