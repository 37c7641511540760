// esctl streams: online (paged) and offline, in name order, by prefix.
#include <gtest/gtest.h>
#include <signal.h>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

TEST(EsctlStreams, OnlineAndOfflineListTheSameStreamsInNameOrder) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  std::string online, online_prefix;
  {
    testing::EsdProcess esd(data);
    auto c = client::Client::Connect(esd.rpc_address());
    for (int i = 0; i < 1200; ++i) {  // more than one page of 1000
      std::string s = (i % 2 ? "b-" : "a-") + std::to_string(i);
      ASSERT_TRUE(c->Append(s, client::Expected::NoStream(), {client::NewEvent::Json("E", "{}")}).ok());
    }
    ASSERT_TRUE(c->Append("a-0", client::Expected::Exact(0), {client::NewEvent::Json("E", "{}")}).ok());
    Result r = RunEsctl({"--connect", esd.rpc_address(), "streams"});
    ASSERT_EQ(r.code, 0) << r.err;
    online = r.out;
    r = RunEsctl({"--connect", esd.rpc_address(), "--json", "streams", "--prefix", "a-"});
    ASSERT_EQ(r.code, 0) << r.err;
    online_prefix = r.out;
    ASSERT_EQ(esd.Stop(SIGTERM), 0);
  }
  const auto lines = Lines(online);
  ASSERT_EQ(lines.size(), 1200u);
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_LT(lines[i - 1], lines[i]) << "name order";
  EXPECT_EQ(lines[0].rfind("a-0 ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("events 2"), std::string::npos) << lines[0];
  const auto prefixed = Lines(online_prefix);
  ASSERT_EQ(prefixed.size(), 600u);
  EXPECT_EQ(prefixed[0].rfind("{\"stream\":\"a-0\",\"lastVersion\":1,\"events\":2", 0), 0u) << prefixed[0];

  const Result offline = RunEsctl({"--data-dir", data.string(), "streams"});
  ASSERT_EQ(offline.code, 0) << offline.err;
  EXPECT_EQ(offline.out, online) << "offline reads the same from the files";
}

}  // namespace
}  // namespace esd
