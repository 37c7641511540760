// esctl end to end: the real binary as a child process against a real esd, checking what it
// prints and how it exits (0 ok, 1 failure, 2 bad usage, 3 append not done, 4 damage).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "client/client.h"
#include "server/damaged_store.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"
#include "tools/esctl.h"
#include "tools/esctl_exit.h"
#include "tools/esctl_text.h"

extern char** environ;

namespace esd {
namespace {

using testing::EsdProcess;

class EsctlTest : public ::testing::Test {
 protected:
  // esctl --connect ADDR ARGS...
  Result Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--connect", esd_.rpc_address()});
    return RunEsctl(std::move(args));
  }
  void Append(const std::string& stream, const std::string& type, const std::string& data = "{}") {
    const Result r = Ctl({"append", stream, "--type", type, "--data", data});
    ASSERT_EQ(r.code, 0) << r.err;
  }

  storage::testing::TempDir dir_;
  EsdProcess esd_{dir_.path() / "data"};
};

const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");

TEST_F(EsctlTest, AppendThenReadRoundTripsAsTextAndJson) {
  Result r = Ctl({"append", "cart-1", "--type", "OrderCreated", "--data", R"({ "customer": "c-1" })",
                  "--expected-version", "no-stream", "--metadata", R"({"by":"ops"})"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("appended cart-1@0 at position 0 (", 0), 0u) << r.out;
  r = Ctl({"append", "cart-1", "--type", "Blob", "--content-type", "application/octet-stream", "--data", "\xff\x01"});
  ASSERT_EQ(r.code, 0) << r.err;

  r = Ctl({"read", "cart-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].rfind("0 cart-1@0 OrderCreated ", 0), 0u) << lines[0];
  EXPECT_TRUE(lines[0].ends_with(R"( {"customer":"c-1"})")) << lines[0];
  EXPECT_TRUE(std::regex_search(lines[0], kTimestamp)) << lines[0];
  EXPECT_TRUE(lines[1].ends_with(" base64:/wE=")) << lines[1];

  r = Ctl({"--json", "read", "cart-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const auto& line : lines) EXPECT_TRUE(esctl::CompactJson(line).has_value()) << line;
  for (const char* field : {R"("stream":"cart-1")", R"("version":0)", R"("position":0)", R"("type":"OrderCreated")",
                            R"("contentType":"application/json")", R"("metadata":{"by":"ops"})",
                            R"("data":{"customer":"c-1"})"}) {
    EXPECT_NE(lines[0].find(field), std::string::npos) << field << " in " << lines[0];
  }
  EXPECT_TRUE(std::regex_search(lines[0], std::regex(R"("id":"[0-9a-f-]{36}","type")"))) << lines[0];
  EXPECT_TRUE(std::regex_search(lines[0], std::regex(R"("timestamp":"\d{4}-\d\d-\d\dT[0-9:.]{15}Z")")));
  EXPECT_NE(lines[1].find(R"("data":"/wE=","dataEncoding":"base64")"), std::string::npos) << lines[1];
}

TEST_F(EsctlTest, WrongExpectedVersionExitsThreeAndNamesTheActualVersion) {
  Append("s", "A");
  Append("s", "B");
  Result r = Ctl({"append", "s", "--type", "C", "--data", "{}", "--expected-version", "0"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("is at version 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--expected-version 1"), std::string::npos) << r.err;

  r = Ctl({"--json", "append", "fresh", "--type", "C", "--data", "{}", "--expected-version", "exists"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out, "{\"result\":\"wrong-expected-version\",\"stream\":\"fresh\",\"actualVersion\":null}\n");
  EXPECT_EQ(Lines(Ctl({"read", "s"}).out).size(), 2u);
}

TEST(Esctl, BadUsageExitsTwoBeforeConnecting) {
  // Nothing listens on port 1: usage errors must be found before esctl tries to connect.
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"read"},
      {"read", "s", "--count", "ten"},
      {"read", "s", "--from", "-1"},
      {"read", "s", "--from"},
      {"read", "s", "--bogus"},
      {"read-all", "--count", "0"},
      {"append", "s", "--type", "T", "--data", "{}", "--id", "not-a-uuid"},
      {"append", "s", "--type", "T", "--data", "{\"unterminated\":"},
      {"append", "s", "--type", "T"},
      {"append", "s", "--type", "T", "--data", "{}", "--expected-version", "maybe"},
      {"tail", "--from", "middle"},
  };
  for (auto args : cases) {
    args.insert(args.begin(), {"--connect", "127.0.0.1:1"});
    const Result r = RunEsctl(args);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_NE(r.err.find("esctl help"), std::string::npos) << r.err;
  }
}

TEST(Esctl, VersionPrintsVersionAndCommitWithoutConnecting) {
  const Result r = RunEsctl({"--version"}, {"ESD_CONNECT=127.0.0.1:1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"(esctl \d+\.\d+\.\d+ \(git ([0-9a-f]{7,}|unknown)\)\n)"))) << r.out;
}

TEST(Esctl, HelpPrintsUsageAndExitsZero) {
  using Args = std::vector<std::string>;
  for (const Args& args : {Args{"help"}, Args{"--help"}, Args{"help", "append"}, Args{"read-all", "--help"}}) {
    const Result r = RunEsctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("usage: esctl", 0), 0u) << r.out;
  }
}

TEST(Esctl, EveryCommandsHelpNamesItsExitCodes) {
  for (const char* command :
       {"status", "streams", "append", "read", "read-all", "tail", "verify", "replay", "dump", "backup", "snapshot",
        "snapshot list", "snapshot show", "snapshot create", "snapshot delete", "order", "order create",
        "order add-item", "order remove-item", "order place", "order cancel", "order get", "order list",
        "order history"}) {
    std::vector<std::string> args = {"help"};
    std::istringstream words(command);
    for (std::string w; words >> w;) args.push_back(w);
    const Result r = RunEsctl(args);
    EXPECT_EQ(r.code, 0) << command << ": " << r.err;
    EXPECT_NE(r.out.find("\nexit codes: 0 "), std::string::npos) << command << ":\n" << r.out;
    EXPECT_NE(r.out.find("2 bad usage"), std::string::npos) << command << ":\n" << r.out;
  }
}

TEST(Esctl, ConnectionRefusedExitsOneWithAHint) {
  // A bound socket that does not listen refuses connections for as long as it is open.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  Result r = RunEsctl({"--connect", address, "read", "s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot connect to " + address), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Is esd running"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  r = RunEsctl({"status"}, {"ESD_CONNECT=" + address});  // the address from the environment
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot connect to " + address), std::string::npos) << r.err;
  ::close(fd);
}

TEST(Esctl, AServerAtItsMaxConnectionsExitsOneNamingTheFlag) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--max-connections", "1"});
  auto held = client::Client::Connect(esd.rpc_address());
  EXPECT_FALSE(held->ReadStream("s", 0, 1).has_value());  // answered: this connection is served and counted
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "read", "s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("too many connections: esd serves at most 1 connections at once (--max-connections)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("retry once other clients have closed theirs, or restart esd with a higher "
                       "--max-connections"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("Check that esd is still running"), std::string::npos) << "it is running: " << r.err;
}

TEST_F(EsctlTest, StatusNamesTheDurablePosition) {
  Append("s", "A");
  Result r = Ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(durable position +1 )"))) << r.out;
  EXPECT_NE(r.out.find("data dir"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(streams +1\n)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(segments +1, [1-9][0-9]* bytes)"))) << r.out;
  r = RunEsctl({"--json", "status"}, {"ESD_CONNECT=" + esd_.rpc_address()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("durablePosition":1,)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("projections":[{"name":"orders","checkpoint":)"), std::string::npos) << r.out;
  EXPECT_TRUE(esctl::CompactJson(r.out).has_value()) << r.out;
  r = Ctl({"status"});
  EXPECT_NE(r.out.find("projection"), std::string::npos) << "the projection's checkpoint and lag: " << r.out;
}

TEST_F(EsctlTest, AppendToAnOrderStreamExitsThreeNamingTheOrderCommands) {
  const Result r = Ctl({"append", "order-1", "--type", "OrderCreated", "--data", R"({"customer":"c-1"})"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("append rejected (invalid-argument): stream 'order-1' is reserved for the Order service"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("esctl order create"), std::string::npos) << r.err;
  EXPECT_EQ(Ctl({"read", "order-1"}).out, "") << "nothing was written";
  EXPECT_EQ(Ctl({"order", "create", "1", "--customer", "c-1"}).code, 0);
  EXPECT_NE(Ctl({"append", "--help"}).out.find("change orders with `esctl order`"), std::string::npos);
}

TEST_F(EsctlTest, ReadAllFiltersByStreamPrefixAndTypes) {
  Append("cart-1", "A");
  Append("cart-1", "B");
  Append("customer-1", "A");
  Append("cart-2", "C");
  Result r = Ctl({"read-all", "--stream-prefix", "cart-", "--type", "A", "--type", "C"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].rfind("0 cart-1@0 A ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("3 cart-2@0 C ", 0), 0u) << lines[1];

  lines = Lines(Ctl({"read-all", "--from", "1", "--count", "2"}).out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind("1 cart-1@1 B ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("2 customer-1@0 A ", 0), 0u) << lines[1];
}

TEST_F(EsctlTest, ReadBackwardListsNewestFirst) {
  for (const char* type : {"A", "B", "C"}) Append("s", type);
  auto lines = Lines(Ctl({"read", "s", "--backward"}).out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("2 s@2 C ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[2].rfind("0 s@0 A ", 0), 0u) << lines[2];
  lines = Lines(Ctl({"read", "s", "--backward", "--from", "1", "--count", "1"}).out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("1 s@1 B ", 0), 0u) << lines[0];
  const Result missing = Ctl({"read", "nothing-here"});
  EXPECT_EQ(missing.code, 0);
  EXPECT_TRUE(missing.out.empty());
  EXPECT_NE(missing.err.find("has no events"), std::string::npos) << missing.err;
}

TEST_F(EsctlTest, ReadingPagesThroughMoreEventsThanOneRequestHolds) {
  client::ConnectOptions options;
  options.address = esd_.rpc_address();
  auto c = client::Client::Connect(options);
  std::vector<client::NewEvent> events(2500, client::NewEvent::Json("E", "{}"));
  for (auto& e : events) e.id = client::NewEventId();
  ASSERT_TRUE(c->Append("long", client::Expected::NoStream(), events).ok());
  EXPECT_EQ(Lines(Ctl({"read", "long"}).out).size(), 2500u);
  EXPECT_EQ(Lines(Ctl({"read", "long", "--backward"}).out).size(), 2500u);
  EXPECT_EQ(Lines(Ctl({"read", "long", "--count", "1500"}).out).size(), 1500u);
  EXPECT_EQ(Lines(Ctl({"read-all"}).out).size(), 2500u);
}

TEST_F(EsctlTest, AppendingTheSameIdTwiceWritesOnce) {
  const std::vector<std::string> append = {"append", "s", "--type", "A", "--data", "{}",
                                           "--id", "123e4567-e89b-12d3-a456-426614174000"};
  Result first = Ctl(append);
  ASSERT_EQ(first.code, 0) << first.err;
  Result again = Ctl(append);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out.rfind("already written: s@0 at position 0 ", 0), 0u) << again.out;
  auto json = append;
  json.insert(json.begin(), "--json");
  again = Ctl(json);
  EXPECT_NE(again.out.find(R"("firstPosition":0,)"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find(R"("alreadyWritten":true)"), std::string::npos) << again.out;
  EXPECT_EQ(Lines(Ctl({"read", "s"}).out).size(), 1u);
}

TEST_F(EsctlTest, TailFromStartPrintsThePastThenWhatIsAppendedAndStopsCleanlyOnSigterm) {
  Append("s", "Old1");
  Append("s", "Old2");
  Esctl tail({"--connect", esd_.rpc_address(), "tail", "--from", "start"});
  EXPECT_EQ(tail.ReadLine().rfind("0 s@0 Old1 ", 0), 0u);
  EXPECT_EQ(tail.ReadLine().rfind("1 s@1 Old2 ", 0), 0u);
  Append("t", "New", R"({"n":1})");
  const std::string line = tail.ReadLine();
  EXPECT_EQ(line.rfind("2 t@0 New ", 0), 0u) << line;
  EXPECT_TRUE(line.ends_with(R"( {"n":1})")) << line;
  const Result r = tail.Finish(SIGTERM);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("-- caught up at"), std::string::npos) << r.err;
}

TEST_F(EsctlTest, TailInJsonModePrintsOnlyJsonOnStdout) {
  Append("s", "Old");
  Esctl tail({"--connect", esd_.rpc_address(), "--json", "tail", "--from", "0", "--type", "New"});
  Append("s", "New");
  const std::string line = tail.ReadLine();
  EXPECT_TRUE(esctl::CompactJson(line).has_value()) << line;
  EXPECT_NE(line.find(R"("type":"New")"), std::string::npos) << line;
  const Result r = tail.Finish(SIGINT);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(EsctlTail, ASubscriptionEndedAtDamageExitsFourNamingItAfterTheEventsBeforeIt) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const testing::DamagedStore store = testing::MakeDamagedStore(data);
  EsdProcess esd(data, testing::kSmallSegmentArgs);
  Esctl tail({"--connect", esd.rpc_address(), "tail", "--from", "start"});
  const Result r = tail.Finish();  // it ends by itself
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_EQ(Lines(r.out).size(), store.damaged_position);
  EXPECT_NE(r.err.find("the log is damaged at " + store.Place()), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("caught up"), std::string::npos) << r.err;
}

namespace dispatch {

// The command names of an overview's listing: the lines between "commands:" and the next
// blank line, their first word.
std::vector<std::string> ListedCommands(const std::string& text) {
  std::vector<std::string> names;
  const size_t start = text.find("commands:\n");
  if (start == std::string::npos) return names;
  std::istringstream in(text.substr(start + 10));
  for (std::string line; std::getline(in, line) && !line.empty();) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    if (line.rfind("  ", 0) == 0 && line[2] != ' ') names.push_back(name);
  }
  return names;
}

std::vector<std::string> DispatchedCommands() {
  std::vector<std::string> names;
  for (const auto& c : esctl::CommandTable()) names.emplace_back(c.name);
  return names;
}

}  // namespace dispatch

TEST(Esctl, WithoutACommandItListsEveryCommandTheDispatcherRuns) {
  const std::vector<std::string> dispatched = dispatch::DispatchedCommands();
  ASSERT_GE(dispatched.size(), 14u);
  const Result none = RunEsctl({});
  EXPECT_EQ(none.code, 2) << none.err;
  EXPECT_TRUE(none.out.empty()) << none.out;
  EXPECT_EQ(dispatch::ListedCommands("commands:\n" + none.err.substr(none.err.find('\n') + 1)), dispatched)
      << none.err;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"help"}, {"--help"}}) {
    const Result help = RunEsctl(args);
    EXPECT_EQ(help.code, 0) << help.err;
    EXPECT_EQ(dispatch::ListedCommands(help.out), dispatched) << help.out;
  }
}

TEST(Esctl, EveryDispatchedCommandHasItsOwnHelp) {
  for (const std::string& name : dispatch::DispatchedCommands()) {
    EXPECT_TRUE(esctl::HasHelp(name)) << name;
    const Result r = RunEsctl({"help", name});
    EXPECT_EQ(r.code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out.rfind("usage: esctl", 0), 0u) << name << ": " << r.out;
    EXPECT_NE(r.out.find("exit codes"), std::string::npos) << name << ": " << r.out;
  }
}

TEST(Esctl, TheOverviewPrintsTheOneExitCodeTable) {
  const Result r = RunEsctl({"help"});
  EXPECT_NE(r.out.find(std::string(esctl::kExitCodeTable)), std::string::npos) << r.out;
  // docs/esctl.md holds the same table, word for word.
  std::ifstream doc(std::string(ESD_SOURCE_DIR) + "/docs/esctl.md");
  const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(std::string(esctl::kExitCodeTable)), std::string::npos)
      << "docs/esctl.md must quote kExitCodeTable (tools/esctl_exit.h)";
}

TEST(Esctl, EveryEsctlCommandInTheReadmeExists) {
  std::ifstream readme(std::string(ESD_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(readme.good());
  size_t seen = 0;
  for (std::string line; std::getline(readme, line);) {
    // Command lines of the walk-through: "$ esctl ..." or "esctl ..." at the start.
    std::string_view rest = line;
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '$' || rest.front() == '`')) rest.remove_prefix(1);
    if (rest.rfind("build/bin/esctl ", 0) == 0) rest.remove_prefix(10);
    if (rest.rfind("esctl ", 0) != 0) continue;
    std::istringstream words{std::string(rest.substr(6))};
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    size_t i = 0;
    while (i < w.size() && w[i].rfind("--", 0) == 0) {  // global options before the command
      i += (w[i] == "--json" || w[i] == "--tls" || w[i].find('=') != std::string::npos) ? 1 : 2;
    }
    if (i >= w.size() || w[i].rfind("COMMAND", 0) == 0 || w[i] == "[--connect") continue;
    std::string command = w[i];
    if ((command == "order" || command == "snapshot") && i + 1 < w.size() && w[i + 1][0] != '-') {
      command += " " + w[i + 1];
    }
    ++seen;
    EXPECT_TRUE(esctl::HasHelp(command)) << "README names `esctl " << command << "`: " << line;
  }
  EXPECT_GT(seen, 10u) << "the README's walk-through shows esctl commands";
}

TEST_F(EsctlTest, ExpectedVersionTakesEveryDocumentedForm) {
  const auto append = [&](const std::string& expected) {
    return Ctl({"append", "ev", "--type", "T", "--data", "{}", "--expected-version", expected}).code;
  };
  EXPECT_EQ(append("stream-exists"), 3) << "no stream yet";
  EXPECT_EQ(append("no-stream"), 0);
  EXPECT_EQ(append("no-stream"), 3);
  EXPECT_EQ(append("stream-exists"), 0);
  EXPECT_EQ(append("exists"), 0) << "the short form is kept";
  EXPECT_EQ(append("2"), 0);
  EXPECT_EQ(append("any"), 0);
  EXPECT_EQ(Lines(Ctl({"read", "ev"}).out).size(), 5u);
  const Result bad = Ctl({"append", "ev", "--type", "T", "--data", "{}", "--expected-version", "exist"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("any, no-stream, stream-exists or a version number"), std::string::npos) << bad.err;
  EXPECT_NE(Ctl({"help", "append"}).out.find("any (default), no-stream, stream-exists"), std::string::npos);
}

TEST_F(EsctlTest, ReadingDollarAllReadsTheGlobalLog) {
  Append("a", "A");
  Append("b", "B");
  const Result all = Ctl({"read", "$all"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(Lines(all.out).size(), 2u) << all.out;
  EXPECT_EQ(all.out, Ctl({"read-all"}).out);
  EXPECT_EQ(Ctl({"read", "$all", "--from", "1", "--count", "1"}).out, Ctl({"read-all", "--from", "1"}).out);
  const Result backward = Ctl({"read", "$all", "--backward"});
  EXPECT_EQ(backward.code, 2);
  EXPECT_NE(backward.err.find("--backward"), std::string::npos) << backward.err;
}

// One exit code per meaning, the same for every kind of command (tools/esctl_exit.h).
TEST(EsctlExitCodes, CannotConnectExitsOneForEveryKindOfCommand) {
  storage::testing::TempDir dir;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"append", "s", "--type", "T", "--data", "{}"},
           {"order", "create", "o", "--customer", "c"},
           {"backup", (dir.path() / "b").string()},
           {"verify"},
           {"read", "s"},
           {"status"}}) {
    std::vector<std::string> full = {"--connect", "unix:" + (dir.path() / "nothing.sock").string()};
    full.insert(full.end(), args.begin(), args.end());
    const Result r = RunEsctl(full);
    EXPECT_EQ(r.code, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("--connect"), std::string::npos) << args[0] << ": " << r.err;
  }
}

TEST(EsctlExitCodes, PermissionDeniedExitsOneForEveryCommandAndNamesTheRole) {
  storage::testing::TempDir dir;
  const auto auth = dir.path() / "auth";
  std::ofstream(auth) << "reader-token reader\n";
  testing::EsdProcess esd(dir.path() / "data", {"--auth", auth.string()});
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"append", "s", "--type", "T", "--data", "{}"},
           {"order", "create", "o", "--customer", "c"},
           {"backup", (dir.path() / "b").string()},
           {"verify"},
           {"status"},
           {"replay", "orders"}}) {
    std::vector<std::string> full = {"--connect", esd.rpc_address(), "--token", "reader-token"};
    full.insert(full.end(), args.begin(), args.end());
    const Result r = RunEsctl(full);
    EXPECT_EQ(r.code, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("role"), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("--token"), std::string::npos) << args[0] << ": " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "b"));
  const Result read = RunEsctl({"--connect", esd.rpc_address(), "--token", "reader-token", "read", "s"});
  EXPECT_EQ(read.code, 0) << "a reader reads: " << read.err;
}

TEST(EsctlExitCodes, BadUsageExitsTwoForEveryKindOfCommand) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"append", "s", "--type", "T"},
           {"order", "create", "o"},
           {"order", "create", "o", "--customer", "c", "--bogus"},
           {"backup"},
           {"verify", "extra"},
           {"read", "s", "--count", "0"},
           {"snapshot"},
           {"tail", "--data-dir", "/nonexistent"}}) {
    std::vector<std::string> full = {"--connect", "127.0.0.1:1"};
    full.insert(full.end(), args.begin(), args.end());
    const Result r = RunEsctl(full);
    EXPECT_EQ(r.code, 2) << args[0] << ": " << r.err;
  }
}

TEST_F(EsctlTest, NotDoneExitsThreeForAppendsAndOrderCommandsAlike) {
  Append("s", "A");
  EXPECT_EQ(Ctl({"append", "s", "--type", "T", "--data", "{}", "--expected-version", "no-stream"}).code, 3);
  EXPECT_EQ(Ctl({"order", "create", "o", "--customer", "c"}).code, 0);
  EXPECT_EQ(Ctl({"order", "create", "o", "--customer", "c"}).code, 3) << "rule order-already-exists";
  EXPECT_EQ(Ctl({"order", "place", "o"}).code, 3) << "rule order-empty";
}

}  // namespace
}  // namespace esd
