// The daemon's flags, the --auth file, and the loopback rule.
#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "storage/test_util.h"

namespace esd::server {
namespace {

std::optional<Config> Parse(std::vector<std::string> args, std::string* error) { return ParseArgs(args, error); }

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
