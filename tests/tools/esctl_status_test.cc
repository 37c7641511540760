// esctl --data-dir DIR status: what a stopped store holds, from its files.
#include <gtest/gtest.h>
#include <signal.h>

#include "client/client.h"
#include "server/esd_process.h"
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

}  // namespace
}  // namespace esd
