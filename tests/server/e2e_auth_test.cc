// Authentication and roles, end to end (TLS: e2e_tls_test.cc).
#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "client/appender.h"
#include "client/client.h"
#include "protocol/esd.capnp.h"
#include "protocol/transport.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Error;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

std::filesystem::path WriteAuthFile(const std::filesystem::path& dir) {
  const auto path = dir / "tokens";
  std::ofstream(path) << "# token role\nr-token reader\nw-token writer\na-token admin\n";
  return path;
}

TEST(Auth, WithoutAValidTokenTheBootstrapHandsOutNothing) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--auth", WriteAuthFile(dir.path()).string()});
  for (const char* token : {"", "wrong"}) {
    try {
      Client::Connect(esd.rpc_address(), token);
      ADD_FAILURE() << "token '" << token << "' was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), Error::Kind::kUnauthenticated) << e.what();
    }
  }
}

TEST(Auth, EachRoleGetsWhatItMayDoAndNoMore) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--auth", WriteAuthFile(dir.path()).string()});
  auto writer = Client::Connect(esd.rpc_address(), "w-token");
  EXPECT_EQ(writer->Role(), "writer");
  ASSERT_TRUE(writer->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  try {
    writer->Status();
    ADD_FAILURE() << "Admin needs the admin role";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::kPermissionDenied) << e.what();
    EXPECT_EQ(std::string(e.what()).find("stringify"), std::string::npos) << "a sentence, not assert text: " << e.what();
    EXPECT_NE(std::string(e.what()).find("writer"), std::string::npos) << e.what();
  }

  auto reader = Client::Connect(esd.rpc_address(), "r-token");
  EXPECT_EQ(reader->Role(), "reader");
  auto refused = reader->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")});
  EXPECT_EQ(refused.outcome, client::AppendResult::Outcome::kRejected);
  EXPECT_EQ(refused.reject_code, "permission-denied") << refused.reason;
  EXPECT_EQ(reader->ReadStream("s", 0, 10)->size(), 1u) << "a reader reads";
  bool caught_up = false;
  auto sub = reader->Subscribe(client::SubscribeFrom::Start(), {}, nullptr, [&](uint64_t) { caught_up = true; });
  EXPECT_TRUE(reader->RunUntil([&] { return caught_up; }, std::chrono::seconds(30))) << "a reader subscribes";

  auto admin = Client::Connect(esd.rpc_address(), "a-token");
  EXPECT_EQ(admin->Status().durable_position, 1u);
  EXPECT_TRUE(admin->Append("s", Expected::Exact(0), {NewEvent::Json("E", "{}")}).ok());
}

// Under --auth a connection slot is for a client that logged in. Three that have not are
// closed at --login-timeout: one that sends nothing, a framed one that sends its magic and
// no login, and an RPC one whose login was refused (it sees the disconnect). A client that
// logged in before them is served after their deadlines, and so after its own.
TEST(Auth, ConnectionsThatDoNotLogInWithinLoginTimeoutAreClosedAndLoggedInOnesAreServed) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data",
                 {"--auth", WriteAuthFile(dir.path()).string(), "--login-timeout", "1", "--log-level", "debug"});
  auto writer = Client::Connect(esd.rpc_address(), "w-token");
  ASSERT_TRUE(writer->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  client::ConnectOptions options;
  options.address = esd.rpc_address();
  options.token = "w-token";
  auto framed_writer = client::Appender::Connect(options);
  ASSERT_TRUE(framed_writer->Append("f", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());

  const int silent = testing::ConnectLoopback(esd.rpc_address());
  const int framed = testing::ConnectLoopback(esd.rpc_address());
  ASSERT_EQ(::write(framed, transport::kFramesMagic, sizeof(transport::kFramesMagic)),
            static_cast<ssize_t>(sizeof(transport::kFramesMagic)));
  // A raw RPC client, on a thread of its own: this one's event loop is the Client's.
  bool refused = false, closed = false;
  std::thread([&] {
    auto io = kj::setupAsyncIo();
    auto stream = io.provider->getNetwork().parseAddress(esd.rpc_address()).wait(io.waitScope)->connect().wait(
        io.waitScope);
    capnp::TwoPartyClient rpc(*stream);
    auto login = rpc.bootstrap().castAs<rpc::Bootstrap>().loginRequest();
    login.setToken("wrong");
    refused = login.send().then([](auto&&) { return false; }, [](kj::Exception&&) { return true; }).wait(io.waitScope);
    // The bound is the test's patience, not a timing: esd closes it about a second in.
    closed = io.provider->getTimer()
                 .timeoutAfter(60 * kj::SECONDS, rpc.onDisconnect())
                 .then([] { return true; }, [](kj::Exception&&) { return false; })
                 .wait(io.waitScope);
  }).join();
  EXPECT_TRUE(refused) << "a wrong token was accepted";
  EXPECT_TRUE(closed) << "esd kept a connection that did not log in";
  ASSERT_TRUE(esd.WaitForOutput("esd: a connection closed:", 3)) << esd.Output();
  EXPECT_TRUE(esd.WaitForOutput("closed a connection whose client did not log in within 1 s (esd --login-timeout;"))
      << esd.Output();
  char byte;
  EXPECT_EQ(::read(silent, &byte, 1), 0) << "the silent connection is closed";
  EXPECT_EQ(::read(framed, &byte, 1), 0) << "the framed connection without a login is closed";
  ::close(silent);
  ::close(framed);
  EXPECT_TRUE(writer->Append("s", Expected::Exact(0), {NewEvent::Json("E", "{}")}).ok()) << "the logged-in client";
  EXPECT_TRUE(framed_writer->Append("f", Expected::Exact(0), {NewEvent::Json("E", "{}")}).ok())
      << "the logged-in framed client";
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("esd_login_timeouts_total 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("esd_connections 2\n"), std::string::npos) << metrics;
}

int RunEsd(const std::vector<std::string>& args, std::string* output) {
  std::string cmd = ESD_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) output->append(buf);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Auth, NonLoopbackListenerWithoutAuthIsRefused) {
  std::string out;
  // Refused while parsing the flags: nothing is ever bound to the address.
  EXPECT_EQ(RunEsd({"--listen", "0.0.0.0:7400"}, &out), 2);
  EXPECT_NE(out.find("--auth"), std::string::npos) << out;
}

}  // namespace
}  // namespace esd
