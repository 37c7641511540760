// The daemon's flags, the --config file, the --auth file, and the loopback rule.
#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "storage/test_util.h"

namespace esd::server {
namespace {

std::optional<Config> Parse(std::vector<std::string> args, std::string* error) { return ParseArgs(args, error); }

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The flags `esd --help` lists, in its order.
std::vector<std::string> UsageFlags() {
  std::vector<std::string> flags;
  static const std::regex kFlag(R"(^  (?:-h, )?(--[a-z-]+))");
  std::istringstream in(Usage());
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kFlag)) flags.push_back(m[1]);
  }
  return flags;
}

// Everything a --config file or the flags may set, compared as a whole.
void ExpectSameOptions(const Config& a, const Config& b) {
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.http, b.http);
  EXPECT_EQ(a.fsync.ToString(), b.fsync.ToString());
  EXPECT_EQ(a.segment_size, b.segment_size);
  EXPECT_EQ(a.max_event_size, b.max_event_size);
  EXPECT_EQ(a.snapshot_every, b.snapshot_every);
  EXPECT_EQ(a.max_connections, b.max_connections);
  EXPECT_EQ(a.tcp_keepalive, b.tcp_keepalive);
  EXPECT_EQ(a.login_timeout, b.login_timeout);
  EXPECT_EQ(a.scavenge_max_read_rate, b.scavenge_max_read_rate);
  EXPECT_EQ(a.auth_file, b.auth_file);
  EXPECT_EQ(a.tls_cert, b.tls_cert);
  EXPECT_EQ(a.tls_key, b.tls_key);
  EXPECT_EQ(a.insecure, b.insecure);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.log_format, b.log_format);
}

TEST(Config, DefaultsAreLoopbackAndDurable) {
  std::string error;
  auto c = Parse({}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->data_dir, "data");
  EXPECT_EQ(c->listen, "127.0.0.1:7400");
  EXPECT_EQ(c->http, "127.0.0.1:7401");
  EXPECT_EQ(c->fsync.mode, storage::Durability::kAlways);
}

TEST(Config, EveryFlagIsParsedInBothForms) {
  std::string error;
  auto c = Parse({"--data-dir", "/d", "--listen=unix:/s", "--http", "off", "--fsync", "interval=10",
                  "--segment-size=1048576", "--max-event-size", "4096"},
                 &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->data_dir, "/d");
  EXPECT_EQ(c->listen, "unix:/s");
  EXPECT_EQ(c->http, "off");
  EXPECT_EQ(c->fsync.mode, storage::Durability::kInterval);
  EXPECT_EQ(c->segment_size, 1048576u);
  EXPECT_EQ(c->max_event_size, 4096u);
}

TEST(Config, BadFlagsNameWhatIsWrong) {
  std::string error;
  EXPECT_FALSE(Parse({"--bogus"}, &error));
  EXPECT_NE(error.find("--bogus"), std::string::npos);
  EXPECT_FALSE(Parse({"--fsync", "sometimes"}, &error));
  EXPECT_NE(error.find("--fsync"), std::string::npos);
  EXPECT_FALSE(Parse({"--segment-size", "12x"}, &error));
  EXPECT_NE(error.find("--segment-size"), std::string::npos);
  EXPECT_FALSE(Parse({"--listen", "nohost"}, &error));
  EXPECT_FALSE(Parse({"--data-dir"}, &error));
  EXPECT_NE(error.find("needs a value"), std::string::npos);
  EXPECT_FALSE(Parse({"--tls-cert", "c.pem"}, &error));
  EXPECT_NE(error.find("--tls-key"), std::string::npos);
  EXPECT_FALSE(Parse({"stray"}, &error));
  EXPECT_NE(error.find("'stray'"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--insecure=yes"}, &error)) << "a switch takes no value on the command line";
  EXPECT_FALSE(Parse({"--data"}, &error)) << "no abbreviations: " << error;
}

TEST(Config, SizesOutsideWhatTheStoreTakesAreUsageErrors) {
  std::string error;
  EXPECT_FALSE(Parse({"--segment-size", "1000"}, &error));
  EXPECT_NE(error.find("--segment-size: must be a multiple of 4096 from 65536"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--segment-size", "4294967296"}, &error));
  EXPECT_FALSE(Parse({"--max-event-size", "33554432"}, &error));
  EXPECT_NE(error.find("--max-event-size: must be from"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--segment-size", "65536", "--max-event-size", "65536"}, &error));
  EXPECT_NE(error.find("half of --segment-size"), std::string::npos) << error;
  EXPECT_TRUE(Parse({"--segment-size", "65536", "--max-event-size", "16384"}, &error)) << error;
  EXPECT_FALSE(Parse({"--segment-size", "1048576"}, &error)) << "the default --max-event-size needs 2 MiB";
  EXPECT_NE(error.find("--max-event-size 1048576 is more than half of --segment-size 1048576"), std::string::npos)
      << error;
}

TEST(Config, MaxConnectionsIsFromOneToAMillion) {
  std::string error;
  auto c = Parse({}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->max_connections, 10'000u);
  c = Parse({"--max-connections", "3"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->max_connections, 3u);
  EXPECT_FALSE(Parse({"--max-connections", "0"}, &error));
  EXPECT_NE(error.find("--max-connections: must be from 1 to 1000000, got 0"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--max-connections", "1000001"}, &error));
  EXPECT_NE(error.find("--max-connections: must be from 1 to 1000000"), std::string::npos) << error;
  Config from_file;
  ASSERT_TRUE(ParseConfigText("max-connections = 500\n", "esd.conf", &from_file, &error)) << error;
  EXPECT_EQ(from_file.max_connections, 500u);
}

TEST(Config, TcpKeepaliveIsInSecondsUpToLinuxsBoundAndZeroTurnsItOff) {
  std::string error;
  auto c = Parse({}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->tcp_keepalive, 300u);
  c = Parse({"--tcp-keepalive", "0"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->tcp_keepalive, 0u);
  c = Parse({"--tcp-keepalive", "32767"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->tcp_keepalive, 32767u);
  EXPECT_FALSE(Parse({"--tcp-keepalive", "32768"}, &error));
  EXPECT_NE(error.find("--tcp-keepalive: must be from 0 (never) to 32767 seconds, got 32768"), std::string::npos)
      << error;
  EXPECT_FALSE(Parse({"--tcp-keepalive", "5m"}, &error));
  EXPECT_NE(error.find("--tcp-keepalive: not a number: '5m'"), std::string::npos) << error;
  Config from_file;
  ASSERT_TRUE(ParseConfigText("tcp-keepalive = 60\n", "esd.conf", &from_file, &error)) << error;
  EXPECT_EQ(from_file.tcp_keepalive, 60u);
}

TEST(Config, LoginTimeoutIsFromOneSecondToAnHour) {
  std::string error;
  auto c = Parse({}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->login_timeout, 60u);
  c = Parse({"--login-timeout", "3600"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->login_timeout, 3600u);
  for (const char* bad : {"0", "3601"}) {
    EXPECT_FALSE(Parse({"--login-timeout", bad}, &error));
    EXPECT_NE(error.find(std::string("--login-timeout: must be from 1 to 3600 seconds, got ") + bad), std::string::npos)
        << error;
  }
  Config from_file;
  ASSERT_TRUE(ParseConfigText("login-timeout = 10\n", "esd.conf", &from_file, &error)) << error;
  EXPECT_EQ(from_file.login_timeout, 10u);
}

TEST(Config, ConnectionsThatFitLeaveTheStoreItsFilesAndSpares) {
  EXPECT_EQ(ConnectionsThatFit(10'000, 1'048'576, 300), 10'000u) << "room enough: the flag";
  EXPECT_EQ(ConnectionsThatFit(10'000, 1024, 300), 1024u - 300 - kSpareFiles);
  EXPECT_EQ(ConnectionsThatFit(10'000, 400, 200), 1u) << "no room at all still serves one";
  EXPECT_EQ(ConnectionsThatFit(5, 1024, 300), 5u);
}

TEST(Config, TheLastOfARepeatedFlagCounts) {
  std::string error;
  auto c = Parse({"--listen", "127.0.0.1:1", "--segment-size", "2097152", "--listen=127.0.0.1:2",
                  "--segment-size", "4194304"},
                 &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->listen, "127.0.0.1:2");
  EXPECT_EQ(c->segment_size, 4194304u);
}

TEST(Config, SnapshotEveryAndLogOptions) {
  std::string error;
  auto c = Parse({"--snapshot-every", "7", "--log-level", "debug", "--log-format=json"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->snapshot_every, 7u);
  EXPECT_EQ(c->log_level, log::Level::kDebug);
  EXPECT_EQ(c->log_format, log::Format::kJson);
  c = Parse({}, &error);
  EXPECT_EQ(c->log_level, log::Level::kInfo);
  EXPECT_EQ(c->log_format, log::Format::kText);
  EXPECT_FALSE(Parse({"--log-level", "loud"}, &error));
  EXPECT_NE(error.find("--log-level: expected trace, debug, info, warn or error, got 'loud'"), std::string::npos)
      << error;
  EXPECT_FALSE(Parse({"--log-format", "xml"}, &error));
  EXPECT_NE(error.find("--log-format: expected text or json"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--snapshot-every", "-1"}, &error));
  EXPECT_NE(error.find("--snapshot-every"), std::string::npos) << error;
}

TEST(Config, ScavengeMaxReadRateCapsTheScavengesReadsAndIsOffByDefault) {
  std::string error;
  auto c = Parse({}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->scavenge_max_read_rate, 0u) << "no cap unless asked";
  c = Parse({"--scavenge-max-read-rate", "52428800"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->scavenge_max_read_rate, 52428800u);
  EXPECT_FALSE(Parse({"--scavenge-max-read-rate", "50MB"}, &error));
  EXPECT_NE(error.find("--scavenge-max-read-rate: not a number: '50MB'"), std::string::npos) << error;
  EXPECT_NE(Usage().find("--scavenge-max-read-rate BYTES"), std::string::npos);
}

TEST(Config, HelpAndVersionNeedNothingElseValid) {
  std::string error;
  auto c = Parse({"--version", "--listen", "nohost"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_TRUE(c->version);
  c = Parse({"-h"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_TRUE(c->help);
}

TEST(Config, ConfigFileSetsOptionsAndFlagsWinOverIt) {
  storage::testing::TempDir dir;
  const auto file = dir.path() / "esd.conf";
  std::ofstream(file) << "# esd's options\n"
                         "data-dir = /var/lib/esd\n"
                         "  listen=127.0.0.1:7500  \n"
                         "\n"
                         "fsync = interval=20   # a comment after the value\n"
                         "snapshot-every = 9\n"
                         "insecure = true\n"
                         "log-format = json\n";
  std::string error;
  auto c = Parse({"--config", file.string(), "--listen", "127.0.0.1:7600"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->config_file, file.string());
  EXPECT_EQ(c->data_dir, "/var/lib/esd");
  EXPECT_EQ(c->listen, "127.0.0.1:7600") << "the command line wins";
  EXPECT_EQ(c->fsync.ToString(), "interval=20");
  EXPECT_EQ(c->snapshot_every, 9u);
  EXPECT_TRUE(c->insecure);
  EXPECT_EQ(c->log_format, log::Format::kJson);
  EXPECT_EQ(c->http, "127.0.0.1:7401") << "what neither says keeps its default";
  // A flag before --config wins as well: the file is read first, whatever the order.
  c = Parse({"--data-dir", "/d", "--config=" + file.string()}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->data_dir, "/d");
  EXPECT_EQ(c->listen, "127.0.0.1:7500");
}

TEST(Config, ConfigFileErrorsNameFileLineAndKey) {
  Config c;
  std::string error;
  EXPECT_FALSE(ParseConfigText("data-dir = /d\n# fine\nlisen = 127.0.0.1:1\n", "esd.conf", &c, &error));
  EXPECT_NE(error.find("esd.conf:3: unknown key 'lisen'"), std::string::npos) << error;
  EXPECT_FALSE(ParseConfigText("\nsegment-size = 12x\n", "esd.conf", &c, &error));
  EXPECT_NE(error.find("esd.conf:2: segment-size: not a number: '12x'"), std::string::npos) << error;
  EXPECT_FALSE(ParseConfigText("data-dir\n", "esd.conf", &c, &error));
  EXPECT_NE(error.find("esd.conf:1: expected \"name = value\""), std::string::npos) << error;
  EXPECT_FALSE(ParseConfigText("[server]\n", "esd.conf", &c, &error));
  EXPECT_NE(error.find("esd.conf:1: sections are not used"), std::string::npos) << error;
  EXPECT_FALSE(ParseConfigText("insecure = maybe\n", "esd.conf", &c, &error));
  EXPECT_NE(error.find("esd.conf:1: insecure: expected true or false"), std::string::npos) << error;
  EXPECT_FALSE(ParseConfigText("data-dir =\n", "esd.conf", &c, &error));
  EXPECT_NE(error.find("esd.conf:1: data-dir needs a value"), std::string::npos) << error;
  for (const char* key : {"config", "help", "version"}) {
    EXPECT_FALSE(ParseConfigText(std::string(key) + " = x\n", "esd.conf", &c, &error)) << key;
    EXPECT_NE(error.find("unknown key '" + std::string(key) + "'"), std::string::npos) << error;
  }
}

TEST(Config, BadConfigFileIsRefusedWhole) {
  storage::testing::TempDir dir;
  std::string error;
  EXPECT_FALSE(Parse({"--config", (dir.path() / "missing.conf").string()}, &error));
  EXPECT_NE(error.find("--config: cannot read"), std::string::npos) << error;
  const auto file = dir.path() / "esd.conf";
  std::ofstream(file) << "listen = 0.0.0.0:7400\n";
  EXPECT_FALSE(Parse({"--config", file.string()}, &error)) << "the file's options obey the same rules";
  EXPECT_NE(error.find("--auth"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--config"}, &error));
  EXPECT_NE(error.find("--config needs a value"), std::string::npos) << error;
}

// packaging/esd.conf (installed as /etc/esd/esd.conf) sets the package's data directory and
// lists every other option commented out with its default: uncommented, each line still
// means the default (auth and tls-* have none: theirs are example paths).
TEST(Config, PackagedConfigFileListsEveryOptionWithItsDefault) {
  const std::string text = ReadText(ESD_SOURCE_DIR "/packaging/esd.conf");
  ASSERT_FALSE(text.empty());
  Config expected;
  expected.data_dir = "/var/lib/esd";
  Config shipped;
  std::string error;
  ASSERT_TRUE(ParseConfigText(text, "esd.conf", &shipped, &error)) << error;
  ExpectSameOptions(shipped, expected);
  std::string uncommented;
  std::set<std::string> keys;
  static const std::regex kSetting(R"(^(?:# )?([a-z-]+) = (.*)$)");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, kSetting)) {
      keys.insert(m[1]);
      uncommented += std::string(m[1]) + " = " + std::string(m[2]) + "\n";
    }
  }
  Config all;
  ASSERT_TRUE(ParseConfigText(uncommented, "uncommented esd.conf", &all, &error)) << error;
  EXPECT_FALSE(all.auth_file.empty() || all.tls_cert.empty() || all.tls_key.empty());
  all.auth_file = all.tls_cert = all.tls_key = "";
  ExpectSameOptions(all, expected);
  for (const std::string& flag : UsageFlags()) {
    if (flag == "--config" || flag == "--help" || flag == "--version") continue;
    EXPECT_TRUE(keys.count(flag.substr(2))) << flag << " is missing from packaging/esd.conf";
  }
}

// `esd --help`, the README and docs/server.md name the same flags, and each one parses.
TEST(Config, EveryFlagInTheHelpIsParsedAndDocumented) {
  const std::string readme = ReadText(ESD_SOURCE_DIR "/README.md");
  const std::string docs = ReadText(ESD_SOURCE_DIR "/docs/server.md");
  const std::vector<std::string> flags = UsageFlags();
  EXPECT_EQ(flags.size(), 20u) << "a flag added to esd --help belongs in this count and the docs";
  for (const std::string& flag : flags) {
    EXPECT_NE(readme.find("`" + flag), std::string::npos) << flag << " is missing from README.md";
    EXPECT_NE(docs.find("`" + flag), std::string::npos) << flag << " is missing from docs/server.md";
    std::string error;
    Parse({flag, "x"}, &error);
    EXPECT_EQ(error.find("unknown flag"), std::string::npos) << flag << ": " << error;
  }
}

TEST(Config, LogLevelAndFormatDefaultToInfoText) {
  std::string error;
  auto c = Parse({}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->log_level, log::Level::kInfo);
  EXPECT_EQ(c->log_format, log::Format::kText);
  c = Parse({"--log-level", "debug", "--log-format=json"}, &error);
  ASSERT_TRUE(c.has_value()) << error;
  EXPECT_EQ(c->log_level, log::Level::kDebug);
  EXPECT_EQ(c->log_format, log::Format::kJson);
}

TEST(Config, BadLogLevelOrFormatNamesTheFlagAndTheChoices) {
  std::string error;
  EXPECT_FALSE(Parse({"--log-level", "verbose"}, &error));
  EXPECT_EQ(error, "--log-level: expected trace, debug, info, warn or error, got 'verbose'");
  EXPECT_FALSE(Parse({"--log-format=xml"}, &error));
  EXPECT_EQ(error, "--log-format: expected text or json, got 'xml'");
  EXPECT_FALSE(Parse({"--log-level"}, &error));
  EXPECT_EQ(error, "--log-level needs a value");
}

TEST(Config, NonLoopbackNeedsAuthOrInsecure) {
  std::string error;
  EXPECT_FALSE(Parse({"--listen", "0.0.0.0:7400"}, &error));
  EXPECT_NE(error.find("--auth"), std::string::npos) << error;
  EXPECT_FALSE(Parse({"--http", "10.1.2.3:7401"}, &error)) << "the HTTP listener too";
  EXPECT_TRUE(Parse({"--listen", "0.0.0.0:7400", "--insecure"}, &error)) << error;
  storage::testing::TempDir dir;
  const auto auth = dir.path() / "auth";
  std::ofstream(auth) << "t admin\n";
  EXPECT_TRUE(Parse({"--listen", "0.0.0.0:7400", "--auth", auth.string()}, &error)) << error;
}

TEST(Config, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopback("127.0.0.1:1"));
  EXPECT_TRUE(IsLoopback("127.8.9.10:1"));
  EXPECT_TRUE(IsLoopback("localhost:1"));
  EXPECT_TRUE(IsLoopback("[::1]:1"));
  EXPECT_TRUE(IsLoopback("unix:/tmp/s"));
  EXPECT_FALSE(IsLoopback("0.0.0.0:1"));
  EXPECT_FALSE(IsLoopback("192.168.1.1:1"));
  EXPECT_FALSE(IsLoopback("[::]:1"));
}

TEST(Config, AuthFileLinesAndErrors) {
  std::string error;
  auto tokens = ParseAuthFile("# comment\n a reader\nb writer # trailing\n\nc admin\n", &error);
  ASSERT_TRUE(tokens.has_value()) << error;
  EXPECT_EQ(tokens->size(), 3u);
  EXPECT_EQ(tokens->at("a"), Role::kReader);
  EXPECT_EQ(tokens->at("b"), Role::kWriter);
  EXPECT_EQ(tokens->at("c"), Role::kAdmin);
  EXPECT_FALSE(ParseAuthFile("a root\n", &error));
  EXPECT_NE(error.find("line 1"), std::string::npos);
  EXPECT_FALSE(ParseAuthFile("a reader\na writer\n", &error));
  EXPECT_NE(error.find("twice"), std::string::npos);
  EXPECT_FALSE(ParseAuthFile("lonely\n", &error));
  EXPECT_FALSE(ParseAuthFile("# nothing\n", &error)) << "no token at all would lock everyone out";
}

TEST(Config, HostPortSplitting) {
  std::string host;
  uint16_t port;
  ASSERT_TRUE(SplitHostPort("[::1]:7400", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 7400);
  EXPECT_FALSE(SplitHostPort("h:70000", &host, &port));
  EXPECT_FALSE(SplitHostPort(":1", &host, &port));
  EXPECT_FALSE(SplitHostPort("h:", &host, &port));
}

}  // namespace
}  // namespace esd::server
