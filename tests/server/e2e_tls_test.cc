// TLS end to end: which names a certificate is checked against, what a client is told when
// it and the daemon disagree about TLS, and how the daemon lives with failed handshakes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <regex>

#include "client/appender.h"
#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using client::Client;
using client::Error;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

struct Certificate {
  std::string cert, key;  // PEM files
};

// A self-signed certificate and its key, subject CN=esd-test (no name a client checks), for
// the names in `san` ("DNS:localhost", "IP:127.0.0.1,DNS:db.example"), made with the openssl
// command line in `dir`; nullopt when openssl cannot make it here.
std::optional<Certificate> MakeCertificate(const std::filesystem::path& dir, const std::string& name,
                                           const std::string& san) {
  Certificate c{(dir / (name + ".pem")).string(), (dir / (name + ".key")).string()};
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                          "-subj /CN=esd-test -addext subjectAltName=" + san + " -keyout " + c.key + " -out " +
                          c.cert + " > /dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return std::nullopt;
  return c;
}

#define MAKE_CERTIFICATE(var, dir, name, san)                                             \
  const std::optional<Certificate> var##_made = MakeCertificate(dir, name, san);          \
  if (!var##_made) GTEST_SKIP() << "openssl cannot make a test certificate here";         \
  const Certificate& var = *var##_made

std::vector<std::string> TlsArgs(const Certificate& c) { return {"--tls-cert", c.cert, "--tls-key", c.key}; }

// "127.0.0.1:PORT" of a daemon that serves TLS ("tls:127.0.0.1:PORT").
std::string TlsAddress(const EsdProcess& esd) {
  EXPECT_EQ(esd.rpc_address().rfind("tls:", 0), 0u) << esd.rpc_address();
  return esd.rpc_address().substr(4);
}

client::ConnectOptions TlsOptions(const std::string& address, const Certificate& trusted,
                                  const std::string& server_name = "") {
  client::ConnectOptions o;
  o.address = address;
  o.tls = true;
  o.tls_ca_file = trusted.cert;
  o.tls_server_name = server_name;
  return o;
}

// Connect's failure, or "" when it connected.
std::string ConnectError(const client::ConnectOptions& options, Error::Kind* kind = nullptr,
                         Error::ConnectProblem* problem = nullptr) {
  try {
    Client::Connect(options)->Role();
    return "";
  } catch (const Error& e) {
    if (kind != nullptr) *kind = e.kind();
    if (problem != nullptr) *problem = e.connect_problem();
    return e.what();
  }
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

uint64_t Metric(const EsdProcess& esd, const std::string& name) {
  const std::string text = testing::HttpGet(esd.http_address(), "/metrics");
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9]+)\n"))) {
    ADD_FAILURE() << name << " is not in /metrics:\n" << text;
    return 0;
  }
  return std::stoull(m[1]);
}

size_t Count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(Tls, ClientsTalkToTheDaemonOverTlsAndPlainClientsDoNot) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "DNS:localhost");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  auto c = Client::Connect(TlsOptions(address, cert, "localhost"));
  ASSERT_TRUE(c->Append("secure", Expected::NoStream(), {NewEvent::Json("E", R"({"x":1})")}).ok());
  EXPECT_EQ(c->ReadStream("secure", 0, 10)->at(0).data, R"({"x":1})");
  EXPECT_THROW(
      {
        auto plain = Client::Connect(address);
        plain->ReadStream("secure", 0, 10);
      },
      Error);
}

// The framed protocol (client::Appender) runs inside TLS as RPC does, with the same checks.
TEST(Tls, AnAppenderAppendsOverTlsAndAPlainOneIsToldTheDaemonSpeaksTls) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "DNS:localhost");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  auto appender = client::Appender::Connect(TlsOptions(address, cert, "localhost"));
  ASSERT_TRUE(appender->Append("framed-secure", Expected::NoStream(), {NewEvent::Json("E", R"({"x":2})")}).ok());
  EXPECT_EQ(Client::Connect(TlsOptions(address, cert, "localhost"))->ReadStream("framed-secure", 0, 10)->at(0).data,
            R"({"x":2})");
  try {
    client::ConnectOptions plain;
    plain.address = address;
    client::Appender::Connect(plain);
    ADD_FAILURE() << "a plain Appender was served by a TLS port";
  } catch (const Error& e) {
    EXPECT_EQ(e.connect_problem(), Error::ConnectProblem::kServerSpeaksTls) << e.what();
    EXPECT_TRUE(Has(e.what(), "esd at " + address + " speaks TLS")) << e.what();
  }
  try {
    client::Appender::Connect(TlsOptions(address, cert, "db.example"));
    ADD_FAILURE() << "a certificate without the name checked was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.connect_problem(), Error::ConnectProblem::kCertificateName) << e.what();
  }
}

TEST(Tls, ATlsConnectionPastMaxConnectionsIsToldWhyOverTls) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "DNS:localhost");
  auto args = TlsArgs(cert);
  args.insert(args.end(), {"--max-connections", "1"});
  EsdProcess esd(dir.path() / "data", args);
  const std::string address = TlsAddress(esd);
  auto held = Client::Connect(TlsOptions(address, cert, "localhost"));
  ASSERT_TRUE(held->Append("s", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  Error::Kind kind{};
  Error::ConnectProblem problem{};
  const std::string error = ConnectError(TlsOptions(address, cert, "localhost"), &kind, &problem);
  EXPECT_EQ(kind, Error::Kind::kConnect) << error;
  EXPECT_EQ(problem, Error::ConnectProblem::kTooManyConnections) << error;
  EXPECT_TRUE(Has(error, "too many connections: esd serves at most 1 connections at once (--max-connections)"))
      << error << "\n" << esd.Output();
  EXPECT_EQ(Metric(esd, "esd_connections_refused_total"), 1u) << esd.Output();
  EXPECT_EQ(Metric(esd, "esd_tls_handshake_failures_total"), 0u) << "the handshake itself went through";
  EXPECT_EQ(held->ReadStream("s", 0, 10)->size(), 1u);
}

TEST(Tls, ADnsNameIsCheckedAgainstTheCertificatesDnsNames) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "DNS:localhost");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string port = TlsAddress(esd).substr(TlsAddress(esd).rfind(':'));
  EXPECT_EQ(ConnectError(TlsOptions("localhost" + port, cert)), "") << "the host named in the address";
}

TEST(Tls, AnIpAddressIsCheckedAgainstTheCertificatesIpAddresses) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  auto c = Client::Connect(TlsOptions(TlsAddress(esd), cert));  // no tls_server_name
  EXPECT_TRUE(c->Append("by-ip", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  const Result r = RunEsctl({"--connect", TlsAddress(esd), "--tls-ca", cert.cert, "read", "by-ip"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(Tls, AnIpv6AddressIsCheckedAgainstTheCertificatesIpAddresses) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:::1");
  std::vector<std::string> args = TlsArgs(cert);
  args.insert(args.end(), {"--listen", "[::1]:0"});  // the last --listen counts
  std::optional<EsdProcess> esd;
  try {
    esd.emplace(dir.path() / "data", args);
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  const std::string address = TlsAddress(*esd);
  ASSERT_EQ(address.rfind("[::1]:", 0), 0u) << address;
  EXPECT_EQ(ConnectError(TlsOptions(address, cert)), "");
}

TEST(Tls, ACertificateForOtherNamesIsRefusedSayingWhatItHolds) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:10.11.12.13,DNS:db.example");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  Error::Kind kind{};
  Error::ConnectProblem problem{};
  const std::string what = ConnectError(TlsOptions(address, cert), &kind, &problem);
  EXPECT_EQ(kind, Error::Kind::kConnect) << what;
  EXPECT_EQ(problem, Error::ConnectProblem::kCertificateName) << what;
  EXPECT_TRUE(Has(what, "127.0.0.1")) << "what was expected: " << what;
  EXPECT_TRUE(Has(what, "IP:10.11.12.13") && Has(what, "DNS:db.example")) << "what it holds: " << what;

  const Result r = RunEsctl({"--connect", address, "--tls-ca", cert.cert, "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "IP:10.11.12.13")) << r.err;
  EXPECT_TRUE(Has(r.err, "--tls-server-name NAME")) << "which flag helps: " << r.err;
  // ... and it does.
  const Result named = RunEsctl({"--connect", address, "--tls-ca", cert.cert, "--tls-server-name", "db.example", "status"});
  EXPECT_EQ(named.code, 0) << named.err;
  EXPECT_EQ(ConnectError(TlsOptions(address, cert, "10.11.12.13")), "") << "an IP address as the server name";
}

TEST(Tls, AnUntrustedCertificateIsRefusedSayingWhichFlagTrustsIt) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  MAKE_CERTIFICATE(other, dir.path(), "other", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  Error::Kind kind{};
  Error::ConnectProblem problem{};
  const std::string what = ConnectError(TlsOptions(TlsAddress(esd), other), &kind, &problem);
  EXPECT_EQ(kind, Error::Kind::kConnect) << what;
  EXPECT_EQ(problem, Error::ConnectProblem::kCertificateTrust) << what;
  EXPECT_TRUE(Has(what, "not trusted")) << what;
  const Result r = RunEsctl({"--connect", TlsAddress(esd), "--tls-ca", other.cert, "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "--tls-ca FILE")) << r.err;
}

TEST(Tls, APlainClientIsToldTheDaemonSpeaksTls) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  Error::Kind kind{};
  Error::ConnectProblem problem{};
  client::ConnectOptions plain;
  plain.address = address;
  const std::string what = ConnectError(plain, &kind, &problem);
  EXPECT_EQ(kind, Error::Kind::kConnect) << what;
  EXPECT_EQ(problem, Error::ConnectProblem::kServerSpeaksTls) << what;
  EXPECT_TRUE(Has(what, "esd at " + address + " speaks TLS")) << what;

  const Result r = RunEsctl({"--connect", address, "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "speaks TLS")) << r.err;
  EXPECT_TRUE(Has(r.err, "--tls-ca FILE")) << r.err;
  EXPECT_FALSE(Has(r.err, "lost the connection") || Has(r.err, "still running")) << r.err;
}

TEST(Tls, ATlsClientOnAPlainPortIsToldItDoesNotSpeakTls) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data");
  Error::Kind kind{};
  Error::ConnectProblem problem{};
  const std::string what = ConnectError(TlsOptions(esd.rpc_address(), cert), &kind, &problem);
  EXPECT_EQ(kind, Error::Kind::kConnect) << what;
  EXPECT_EQ(problem, Error::ConnectProblem::kServerSpeaksPlain) << what;
  EXPECT_TRUE(Has(what, "does not speak TLS")) << what;
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "--tls-ca", cert.cert, "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "Drop --tls and --tls-ca")) << r.err;
}

TEST(Tls, OptionsThatCannotWorkAreRefusedSayingWhichFlag) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  Error::ConnectProblem problem{};
  const std::string missing = (dir.path() / "no-such.pem").string();
  std::string what = ConnectError(TlsOptions(TlsAddress(esd), Certificate{missing, ""}), nullptr, &problem);
  EXPECT_EQ(problem, Error::ConnectProblem::kOptions) << what;
  EXPECT_TRUE(Has(what, missing)) << what;
  // A unix socket has no host name to check the certificate against; refused before connecting.
  client::ConnectOptions unix_socket = TlsOptions("unix:" + (dir.path() / "no-such.sock").string(), cert);
  what = ConnectError(unix_socket, nullptr, &problem);
  EXPECT_EQ(problem, Error::ConnectProblem::kOptions) << what;
  EXPECT_TRUE(Has(what, "unix socket has no host name")) << what;
  const Result r = RunEsctl({"--connect", unix_socket.address, "--tls-ca", cert.cert, "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "--tls-server-name NAME")) << r.err;
}

TEST(Tls, AServerThatLeavesDuringTheHandshakeIsReportedSo) {
  // Not esd: a listener that takes the TLS hello and closes.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Esctl esctl({"--connect", address, "--tls", "status"});
  const int conn = ::accept(listener, nullptr, nullptr);
  char hello[512];
  EXPECT_GT(::read(conn, hello, sizeof(hello)), 0) << "the TLS hello";
  ::shutdown(conn, SHUT_WR);
  const Result r = esctl.Finish();
  ::close(conn);
  ::close(listener);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "esd at " + address + " closed the connection during the TLS handshake")) << r.err;
  EXPECT_TRUE(Has(r.err, "(esd --tls-cert)? Check --tls-ca and --tls-server-name, or drop --tls")) << r.err;
}

TEST(Tls, FailedHandshakesAreOneLogLineABurstAndCounted) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  MAKE_CERTIFICATE(other, dir.path(), "other", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  // A client that does not trust the certificate: the first failure of a burst is logged
  // at once, which is the barrier.
  EXPECT_NE(ConnectError(TlsOptions(address, other)), "");
  ASSERT_TRUE(esd.WaitForOutput("esd: TLS handshake with 127.0.0.1:")) << esd.Output();
  // A plain client, and garbage: each is answered with a TLS alert and closed (the close is
  // the barrier).
  client::ConnectOptions plain;
  plain.address = address;
  EXPECT_NE(ConnectError(plain), "");
  const std::string answer = testing::SendAndReadToEnd(address, "GET / HTTP/1.0\r\n\r\n");
  ASSERT_GE(answer.size(), 2u);
  EXPECT_EQ(answer[0], 0x15) << "a TLS alert record";
  EXPECT_EQ(answer[1], 0x03);

  EXPECT_EQ(Metric(esd, "esd_tls_handshake_failures_total"), 3u);
  EXPECT_EQ(Metric(esd, "esd_accept_errors_total"), 0u) << "a failed handshake is no failed accept";
  const std::string log = esd.Output();
  EXPECT_EQ(Count(log, "esd: TLS handshake with"), 1u) << "one line for the burst:\n" << log;
  EXPECT_TRUE(Has(log, "refused the certificate")) << log;
  EXPECT_FALSE(Has(log, "stack:")) << log;
  EXPECT_TRUE(Client::Connect(TlsOptions(address, cert))->Append("after", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
}

TEST(Tls, AClientThatSaysNothingHoldsUpNobodyAndIsDroppedAfterTheTimeout) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  const int silent = testing::ConnectLoopback(address);  // connects, never says a word
  // Served while the silent one is still connected and waited for.
  auto c = Client::Connect(TlsOptions(address, cert));
  EXPECT_TRUE(c->Append("served", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  // The daemon gives up on the silent one after 10 s (the barrier is its log line).
  ASSERT_TRUE(esd.WaitForOutput("no TLS handshake within 10 s")) << esd.Output();
  char byte;
  EXPECT_EQ(::read(silent, &byte, 1), 0) << "closed by the daemon";
  ::close(silent);
  EXPECT_EQ(Metric(esd, "esd_tls_handshake_failures_total"), 1u);
  EXPECT_FALSE(Has(esd.Output(), "stack:")) << esd.Output();
}

TEST(Tls, RunningOutOfDescriptorsOnceDoesNotEndAcceptingTlsConnections) {
  storage::testing::TempDir dir;
  MAKE_CERTIFICATE(cert, dir.path(), "cert", "IP:127.0.0.1");
  EsdProcess esd(dir.path() / "data", TlsArgs(cert));
  const std::string address = TlsAddress(esd);
  rlimit normal{};
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, nullptr, &normal), 0) << std::strerror(errno);
  const rlimit low{esd.OpenFds() + 6, normal.rlim_max};
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  std::vector<int> spike;
  for (int i = 0; i < 40; ++i) spike.push_back(testing::ConnectLoopback(address));
  ASSERT_TRUE(esd.WaitForOutput("Too many open files")) << esd.Output();
  for (int fd : spike) ::close(fd);
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, &normal, nullptr), 0) << std::strerror(errno);

  // Once its descriptors are back, a new client is served. (The bound only ends a hang.)
  auto served = std::async(std::launch::async, [&] {
    auto c = Client::Connect(TlsOptions(address, cert));
    return c->Append("fd", Expected::Any(), {NewEvent::Json("E", "{}")}).ok();
  });
  if (served.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "no new TLS connection was accepted after the spike:\n" << esd.Output();
    esd.Kill();  // ends the hung call
  }
  EXPECT_TRUE(served.get());
}

}  // namespace
}  // namespace esd
