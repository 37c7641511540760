// TLS end to end.
#include <gtest/gtest.h>

#include <cstdlib>

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

TEST(Tls, ClientsTalkToTheDaemonOverTlsAndPlainClientsDoNot) {
  storage::testing::TempDir dir;
  const auto cert = dir.path() / "cert.pem", key = dir.path() / "key.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                          "-addext subjectAltName=DNS:localhost -keyout " + key.string() + " -out " + cert.string() +
                          " > /dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl cannot make a test certificate here";
  EsdProcess esd(dir.path() / "data", {"--tls-cert", cert.string(), "--tls-key", key.string()});
  ASSERT_EQ(esd.rpc_address().rfind("tls:", 0), 0u) << esd.rpc_address();
  const std::string address = esd.rpc_address().substr(4);
  client::ConnectOptions tls;
  tls.address = address;
  tls.tls = true;
  tls.tls_ca_file = cert.string();
  tls.tls_server_name = "localhost";
  auto c = Client::Connect(tls);
  ASSERT_TRUE(c->Append("secure", Expected::NoStream(), {NewEvent::Json("E", R"({"x":1})")}).ok());
  EXPECT_EQ(c->ReadStream("secure", 0, 10)->at(0).data, R"({"x":1})");
  EXPECT_THROW(
      {
        auto plain = Client::Connect(address);
        plain->ReadStream("secure", 0, 10);
      },
      Error);
}

}  // namespace
}  // namespace esd
