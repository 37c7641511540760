// Authentication and roles, end to end (TLS: e2e_tls_test.cc).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "client/client.h"
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
