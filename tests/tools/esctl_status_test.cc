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

}  // namespace
}  // namespace esd
