// `esctl order ...` end to end: the real esctl as a child process against a real esd (one
// per test), checking what it prints and how it exits (0 ok, 1 failure, 2 bad usage, 3 a
// rule rejection, a conflict or a reused command id, 4 the order's events are damaged).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "client/client.h"
#include "server/damaged_store.h"
#include "server/esd_process.h"
#include "server/long_streams.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"
#include "tools/esctl_text.h"

namespace esd {
namespace {


bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The first match of `re`'s group 1 in `text`, or "".
std::string Find(const std::string& text, const std::string& re) {
  std::smatch m;
  return std::regex_search(text, m, std::regex(re)) ? m[1].str() : "";
}

class OrderCliTest : public ::testing::Test {
 protected:
  Result Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--connect", esd_.rpc_address()});
    return RunEsctl(std::move(args));
  }
  // Runs a command that must succeed; returns the position it printed.
  std::string Ok(std::vector<std::string> args) {
    const Result r = Ctl(std::move(args));
    EXPECT_EQ(r.code, 0) << r.err;
    return Find(r.out, R"(, position (\d+) \()");
  }
  // o1 for alice: 3 apples at 50 and 2 pears at 80, placed; returns the position of the place.
  std::string PlacedOrder() {
    Ok({"order", "create", "o1", "--customer", "alice"});
    Ok({"order", "add-item", "o1", "--sku", "apple", "--qty", "3", "--price", "50"});
    Ok({"order", "add-item", "o1", "--sku", "pear", "--qty", "2", "--price", "80"});
    return Ok({"order", "place", "o1"});
  }

  storage::testing::TempDir dir_;
  testing::EsdProcess esd_{dir_.path() / "data"};
};

const std::string kTime = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)";

TEST_F(OrderCliTest, CreateAddPlaceThenGetShowsThePlacedOrderAsTextAndJson) {
  Result r = Ctl({"order", "create", "o1", "--customer", "alice"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"(order o1: version 0, position 0 \(command id [0-9a-f-]{36}\)\n)")))
      << r.out;
  r = Ctl({"--json", "order", "add-item", "o1", "--sku", "apple", "--qty", "3", "--price", "50"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(esctl::CompactJson(r.out).has_value()) << r.out;
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"(\{"orderId":"o1","version":1,"position":1,)"
                                                 R"("alreadyApplied":false,"commandId":"[0-9a-f-]{36}"\}\n)")))
      << r.out;
  Ok({"order", "add-item", "o1", "--sku", "pear", "--qty", "2", "--price", "80"});
  const std::string placed = Ok({"order", "place", "o1"});
  ASSERT_EQ(placed, "3");

  r = Ctl({"order", "get", "o1", "--min-position", placed});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* row : {"order          o1\n", "customer       alice\n", "status         placed\n",
                          "line           apple 3 x 50 cents\n", "line           pear 2 x 80 cents\n",
                          "total          310 cents (3.10)\n", "version        3\n", "cancelled      -\n"}) {
    EXPECT_TRUE(Has(r.out, row)) << row << " in\n" << r.out;
  }
  EXPECT_TRUE(std::regex_search(r.out, std::regex("created        " + kTime + "\nplaced         " + kTime))) << r.out;

  r = Ctl({"--json", "order", "get", "o1", "--min-position", placed});
  EXPECT_TRUE(esctl::CompactJson(r.out).has_value()) << r.out << r.err;
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex(R"(\{"orderId":"o1","customerId":"alice","status":"placed","lines":\[\{"sku":"apple",)"
                        R"("quantity":3,"unitPriceCents":50\},\{"sku":"pear","quantity":2,"unitPriceCents":80\}\],)"
                        R"("totalCents":310,"total":"3\.10","version":3,"lastPosition":3,"createdAt":")" + kTime +
                        R"(","placedAt":")" + kTime + R"(","cancelledAt":null,"cancelReason":""\}\n)")))
      << r.out;

  r = Ctl({"order", "get", "nobody"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(Has(r.err, "order 'nobody' not found")) << r.err;
}

TEST_F(OrderCliTest, ARuleRejectionExitsThreeAndNamesTheRule) {
  PlacedOrder();
  Result r = Ctl({"order", "add-item", "o1", "--sku", "plum", "--qty", "1", "--price", "10"});
  EXPECT_EQ(r.code, 3);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(Has(r.err, "esctl: rejected by rule order-not-open: order 'o1' is placed, not open")) << r.err;

  r = Ctl({"--json", "order", "place", "o1"});
  EXPECT_EQ(r.code, 3);
  EXPECT_TRUE(esctl::CompactJson(r.out).has_value()) << r.out;
  EXPECT_TRUE(Has(r.out, R"({"result":"rejected","rule":"order-not-open",)")) << r.out;

  Ok({"order", "create", "empty", "--customer", "alice"});
  r = Ctl({"order", "place", "empty"});
  EXPECT_EQ(r.code, 3);
  EXPECT_TRUE(Has(r.err, "rejected by rule order-empty:")) << r.err;
}

TEST_F(OrderCliTest, RetryingWithTheSameCommandIdSaysAlreadyAppliedAndWritesNothing) {
  const std::vector<std::string> create = {"order", "create", "o1", "--customer", "alice", "--command-id", "c-1"};
  EXPECT_EQ(Ctl(create).out, "order o1: version 0, position 0 (command id c-1)\n");
  Result again = Ctl(create);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, "order o1: version 0, position 0 (already applied: nothing new written; command id c-1)\n");
  auto json = create;
  json.insert(json.begin(), "--json");
  again = Ctl(json);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, R"({"orderId":"o1","version":0,"position":0,"alreadyApplied":true,"commandId":"c-1"})" "\n");
  EXPECT_EQ(Lines(Ctl({"order", "history", "o1"}).out).size(), 1u);
}

TEST_F(OrderCliTest, AReusedCommandIdForAnotherCommandExitsThreeAndSaysToUseANewOne) {
  Ok({"order", "create", "o2", "--customer", "alice", "--command-id", "cmd-1"});
  for (const auto& reuse : std::vector<std::vector<std::string>>{
           {"order", "create", "o2", "--customer", "bob", "--command-id", "cmd-1"},
           {"order", "add-item", "o2", "--sku", "a", "--qty", "1", "--price", "1", "--command-id", "cmd-1"},
           {"order", "create", "o3", "--customer", "bob", "--command-id", "cmd-1"}}) {
    const Result r = Ctl(reuse);
    EXPECT_EQ(r.code, 3) << reuse[1] << " " << reuse[2] << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_TRUE(Has(r.err, "esctl: idempotency conflict: command id 'cmd-1' was already used")) << r.err;
    EXPECT_TRUE(Has(r.err, "leave out --command-id")) << "names what to do: " << r.err;
  }
  const Result json = Ctl({"--json", "order", "create", "o2", "--customer", "bob", "--command-id", "cmd-1"});
  EXPECT_EQ(json.code, 3);
  EXPECT_TRUE(Has(json.out, R"({"result":"failed","code":"idempotency-conflict",)")) << json.out;
  EXPECT_EQ(Lines(Ctl({"order", "history", "o2"}).out).size(), 1u) << "nothing was written";
  EXPECT_EQ(Ctl({"order", "history", "o3"}).code, 1) << "no such order";
}

TEST_F(OrderCliTest, GetAtVersionBeforePlacingShowsTheOpenOrder) {
  PlacedOrder();
  const Result r = Ctl({"order", "get", "o1", "--at-version", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "status         open\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "total          150 cents (1.50)\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "placed         -\n")) << r.out;
  EXPECT_FALSE(Has(r.out, "pear")) << r.out;
}

TEST_F(OrderCliTest, GetAtTimeTakenFromTheHistoryShowsTheOrderAsItWasThen) {
  PlacedOrder();
  const Result history = Ctl({"--json", "order", "history", "o1"});
  ASSERT_EQ(history.code, 0) << history.err;
  const auto events = Lines(history.out);
  ASSERT_EQ(events.size(), 4u) << history.out;
  const std::string apple_added = Find(events[1], R"x("time":"([^"]+)")x");
  ASSERT_FALSE(apple_added.empty()) << events[1];

  Result r = Ctl({"order", "get", "o1", "--at-time", apple_added});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "status         open\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "line           apple 3 x 50 cents\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "version        1\n")) << r.out;

  r = Ctl({"--json", "order", "get", "o1", "--at-time", "2000-01-01T00:00:00"});  // no fraction, no Z
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "not found as of 2000-01-01T00:00:00.000000Z")) << r.err;
}

TEST_F(OrderCliTest, ListShowsACustomersOrdersFilteredByStatus) {
  Ok({"order", "create", "o1", "--customer", "alice"});
  Ok({"order", "create", "o2", "--customer", "alice"});
  Ok({"order", "add-item", "o2", "--sku", "apple", "--qty", "1", "--price", "50"});
  Ok({"order", "place", "o2"});
  Ok({"order", "create", "o3", "--customer", "alice"});
  Ok({"order", "create", "b1", "--customer", "bob"});
  const std::string last = Ok({"order", "cancel", "o3", "--reason", "changed my mind"});

  Result r = Ctl({"order", "list", "--customer", "alice", "--min-position", last});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 3u) << r.out;
  r = Ctl({"order", "list", "--customer", "alice", "--status", "placed", "--min-position", last});
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(r.out.rfind("o2 placed total 50 cents (0.50), 1 line, version 2, created ", 0), 0u) << r.out;
  r = Ctl({"--json", "order", "list", "--customer", "alice", "--status", "cancelled", "--min-position", last});
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  EXPECT_TRUE(esctl::CompactJson(r.out).has_value()) << r.out;
  EXPECT_TRUE(Has(r.out, R"("orderId":"o3")") && Has(r.out, R"("cancelReason":"changed my mind")")) << r.out;
  r = Ctl({"order", "list", "--customer", "carol"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(Has(r.err, "customer 'carol' has no orders")) << r.err;
}

TEST_F(OrderCliTest, ListPagesThroughMoreOrdersThanOnePageHolds) {
  auto c = client::Client::Connect(esd_.rpc_address());
  uint64_t last = 0;
  for (int i = 0; i < 150; ++i) {
    std::string id = "p";  // not "p" + ...: g++ 12's -Wrestrict false positive (GCC bug 105329)
    id += std::to_string(i);
    const auto o = c->CreateOrder(id, "dave");
    ASSERT_TRUE(o.ok()) << o.message;
    last = o.position;
  }
  const Result r = Ctl({"order", "list", "--customer", "dave", "--min-position", std::to_string(last)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 150u);
}

TEST_F(OrderCliTest, HistoryPrintsOneEventPerLineAndJsonLinesParse) {
  Ok({"order", "create", "o1", "--customer", "alice", "--command-id", "create-1", "--correlation-id", "flow-7"});
  Ok({"order", "add-item", "o1", "--sku", "apple", "--qty", "3", "--price", "50"});
  Ok({"order", "remove-item", "o1", "--sku", "apple"});  // the whole line
  Ok({"order", "cancel", "o1", "--reason", "changed my mind"});

  Result r = Ctl({"order", "history", "o1"});
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out << r.err;
  EXPECT_TRUE(std::regex_match(lines[0], std::regex("0 0 " + kTime + R"( OrderCreated \{.*"customerId":"alice".*\})"
                                                    R"( create-1 \(correlation flow-7, by role:admin\))")))
      << lines[0];

  r = Ctl({"--json", "order", "history", "o1"});
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out << r.err;
  const char* types[] = {"OrderCreated", "ItemAdded", "ItemRemoved", "OrderCancelled"};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(esctl::CompactJson(lines[i]).has_value()) << lines[i];
    EXPECT_EQ(lines[i].rfind(R"({"version":)" + std::to_string(i) + R"(,"position":)" + std::to_string(i) + ",", 0), 0u)
        << lines[i];
    EXPECT_TRUE(Has(lines[i], std::string(R"("type":")") + types[i] + R"(","json":{)")) << lines[i];
    EXPECT_TRUE(std::regex_search(lines[i], std::regex(R"("time":")" + kTime + "\""))) << lines[i];
  }
  EXPECT_TRUE(Has(lines[0], R"("commandId":"create-1","correlationId":"flow-7")")) << lines[0];
  EXPECT_TRUE(Has(lines[2], R"("json":{"sku":"apple","quantity":3})")) << lines[2];
  EXPECT_EQ(Ctl({"order", "history", "nobody"}).code, 1);
}

TEST(OrderCli, HistoryPrintsEveryEventOfAnOrderLongerThanOneCallReturns) {
  storage::testing::TempDir dir;
  testing::WriteLongOrder(dir.path() / "data", "long", 10'500);
  testing::EsdProcess esd(dir.path() / "data");
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "order", "history", "long"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 10'500u) << "past the 10,000 of one call";
  EXPECT_EQ(lines[10'000].rfind("10000 10000 ", 0), 0u) << lines[10'000];
  EXPECT_EQ(lines.back().rfind("10499 10499 ", 0), 0u) << lines.back();
}

TEST(OrderCli, AReaderTokenCannotWriteAndIsToldWhichRoleItNeeds) {
  storage::testing::TempDir dir;
  const auto auth = dir.path() / "auth";
  std::ofstream(auth) << "reader-token reader\n";
  testing::EsdProcess esd(dir.path() / "data", {"--auth", auth.string()});
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "--token", "reader-token", "order", "create", "o1",
                             "--customer", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "(permission-denied)") && Has(r.err, "writer role")) << r.err;
}

TEST(OrderCli, AnOrderWhoseEventsAreDamagedExitsFourNamingThePlace) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const testing::DamagedStore store = testing::MakeDamagedStore(data);
  testing::EsdProcess esd(data, testing::kSmallSegmentArgs);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"order", "history", "o-damaged"},
           {"order", "get", "o-damaged", "--at-version", "0"},
           {"order", "add-item", "o-damaged", "--sku", "s", "--qty", "1", "--price", "1"},
           {"order", "get", "o-intact", "--min-position", std::to_string(store.intact_order_position)}}) {
    std::vector<std::string> full = {"--connect", esd.rpc_address()};
    full.insert(full.end(), args.begin(), args.end());
    const Result r = RunEsctl(full);
    EXPECT_EQ(r.code, 4) << args[1] << ": " << r.err;
    EXPECT_TRUE(Has(r.err, "the log is damaged at " + store.Place())) << args[1] << ": " << r.err;
  }
}

TEST(OrderCli, AnOrderWhoseStreamHoldsAForeignEventExitsThreeNamingItAndWhatToDo) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  testing::MakeStoreWithForeignOrderEvent(data);
  testing::EsdProcess esd(data, testing::kSmallSegmentArgs);
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "order", "cancel", "1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_TRUE(Has(r.err, "esctl: rejected by rule foreign-event: ")) << r.err;
  EXPECT_TRUE(Has(r.err, "version 0 (position 0)")) << r.err;
  EXPECT_TRUE(Has(r.err, "esctl order create")) << r.err;
  EXPECT_FALSE(Has(r.err, "damaged")) << r.err;
}

TEST(OrderCli, BadUsageExitsTwoBeforeConnecting) {
  const std::vector<std::vector<std::string>> cases = {
      {"order"}, {"order", "ship", "o1"}, {"order", "create"}, {"order", "create", "o1"}, {"order", "place"},
      {"order", "add-item", "o1", "--sku", "a", "--qty", "many", "--price", "1"},
      {"order", "add-item", "o1", "--sku", "a", "--qty", "0", "--price", "1"},
      {"order", "add-item", "o1", "--sku", "a", "--qty", "1", "--price", "1.50"},
      {"order", "remove-item", "o1", "--sku", "a", "--qty", "-1"},
      {"order", "get", "o1", "--at-version", "1", "--at-time", "2026-11-26T11:22:15Z"},
      {"order", "get", "o1", "--at-time", "2026-11-26 11:22:15"},
      {"order", "get", "o1", "--at-time", "2026-02-30T00:00:00Z"},
      {"order", "list", "--customer", "alice", "--status", "shipped"}, {"order", "list"},
  };
  for (auto args : cases) {
    args.insert(args.begin(), {"--connect", "127.0.0.1:1"});  // nothing listens there
    const Result r = RunEsctl(args);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_TRUE(Has(r.err, "esctl help")) << r.err;
  }
}

TEST(OrderCli, HelpNamesTheOrderCommands) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"order", "--help"}, {"help", "order", "get"}}) {
    EXPECT_EQ(RunEsctl(args).out.rfind("usage: esctl order", 0), 0u) << RunEsctl(args).err;
  }
  EXPECT_TRUE(Has(RunEsctl({"help"}).out, "order        the Order service"));
}

TEST_F(OrderCliTest, ForgetCustomerDeletesItsOrdersSaysHowManyAndWhereTheAuditIs) {
  PlacedOrder();  // o1 of alice
  Ok({"order", "create", "o2", "--customer", "alice"});
  Ok({"order", "create", "o3", "--customer", "bob"});
  Result r = Ctl({"order", "forget-customer", "alice"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex(R"(customer 'alice' forgotten: 2 order stream\(s\) hard-deleted; audit record at position )"
                        R"(\d+ of \$erasures\n)")))
      << r.out;
  EXPECT_TRUE(Has(r.err, "at the next scavenge (esctl scavenge start)")) << r.err;
  r = Ctl({"order", "get", "o1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "order 'o1' not found")) << r.err;
  EXPECT_EQ(Ctl({"order", "list", "--customer", "alice"}).out, "");
  r = Ctl({"order", "create", "o1", "--customer", "alice"});
  EXPECT_EQ(r.code, 3);
  EXPECT_TRUE(Has(r.err, "rejected by rule order-deleted")) << r.err;
  EXPECT_EQ(Ctl({"order", "get", "o3"}).code, 0) << "bob's order stays";
  // Again, as JSON: nothing left to delete, and no error.
  r = Ctl({"--json", "order", "forget-customer", "alice"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(esctl::CompactJson(r.out).has_value()) << r.out;
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex(R"(\{"result":"ok","customerId":"alice","streamsDeleted":0,"auditPosition":\d+\}\n)")))
      << r.out;
}

TEST(OrderCli, ForgetCustomerNeedsAnAdminTokenAndSaysSo) {
  storage::testing::TempDir dir;
  const auto auth = dir.path() / "auth";
  std::ofstream(auth) << "writer-token writer\n";
  testing::EsdProcess esd(dir.path() / "data", {"--auth", auth.string()});
  Result r = RunEsctl({"--connect", esd.rpc_address(), "--token", "writer-token", "order", "create", "o1",
                       "--customer", "alice"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = RunEsctl({"--connect", esd.rpc_address(), "--token", "writer-token", "order", "forget-customer", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "(permission-denied)") && Has(r.err, "needs a token with the admin role")) << r.err;
  EXPECT_TRUE(Has(r.err, "--token")) << r.err;
  r = RunEsctl({"--connect", esd.rpc_address(), "--token", "writer-token", "order", "get", "o1"});
  EXPECT_EQ(r.code, 0) << "nothing was deleted: " << r.err;
}

TEST(OrderCli, ForgetCustomerWhenTheProjectionStoppedAtDamageExitsFourAndDoesNothing) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const testing::DamagedStore store = testing::MakeDamagedStore(data);
  testing::EsdProcess esd(data, testing::kSmallSegmentArgs);
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "order", "forget-customer", "anyone"});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_TRUE(Has(r.err, "the log is damaged at " + store.Place())) << r.err;
  EXPECT_TRUE(Has(r.err, "nothing was done")) << r.err;
  EXPECT_TRUE(Has(r.err, "esctl verify")) << r.err;
}

TEST(OrderCli, ForgetCustomerWithoutACustomerIsBadUsage) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"order", "forget-customer"}, {"order", "forget-customer", ""},
        {"order", "forget-customer", "a", "b"}}) {
    std::vector<std::string> full = {"--connect", "127.0.0.1:1"};  // nothing listens there
    full.insert(full.end(), args.begin(), args.end());
    const Result r = RunEsctl(full);
    EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_TRUE(Has(r.err, "esctl help")) << r.err;
  }
  const Result help = RunEsctl({"help", "order", "forget-customer"});
  EXPECT_EQ(help.out.rfind("usage: esctl order forget-customer CUSTOMER", 0), 0u) << help.out;
  EXPECT_TRUE(Has(RunEsctl({"order", "--help"}).out, "forget-customer CUSTOMER")) << "listed with the order commands";
}

TEST(OrderCliText, TimestampsParseBackFromWhatEsctlPrints) {
  EXPECT_EQ(esctl::ParseTimestamp("2026-11-26T11:22:15.571709Z"), 1795692135571709u);
  EXPECT_EQ(esctl::ParseTimestamp("2026-11-26T11:22:15.5"), 1795692135500000u);
  EXPECT_EQ(esctl::ParseTimestamp("2026-11-26T11:22:15.571709999Z"), 1795692135571709u);  // cut to micros
  const char* leap_day = "2024-02-29T23:59:59.000001Z";
  EXPECT_EQ(esctl::FormatTimestamp(esctl::ParseTimestamp(leap_day).value_or(0)), leap_day);
  for (const char* bad : {"2026-11-26", "2026-11-26T24:00:00Z", "1969-12-31T23:59:59Z", "2026-11-26T11:22:15.",
                          "2026-11-26T11:22:15+01:00", "2026-13-01T00:00:00"}) {
    EXPECT_FALSE(esctl::ParseTimestamp(bad).has_value()) << bad;
  }
}

TEST(EsctlOrderEvents, ReadShowsOrderEventsAsJsonThroughTheCapnpCodec) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  const std::string a = esd.rpc_address();
  ASSERT_EQ(RunEsctl({"--connect", a, "order", "create", "j1", "--customer", "cust", "--command-id", "cmd-j1"}).code, 0);
  ASSERT_EQ(RunEsctl({"--connect", a, "order", "add-item", "j1", "--sku", "kiwi", "--qty", "2", "--price", "30"}).code, 0);
  Result r = RunEsctl({"--connect", a, "read", "order-j1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("{\"orderId\":\"j1\",\"customerId\":\"cust\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"sku\":\"kiwi\",\"quantity\":2"), std::string::npos) << r.out;
  r = RunEsctl({"--connect", a, "--json", "read-all"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"metadata\":{\"commandId\":\"cmd-j1\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"data\":{\"orderId\":\"j1\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("base64"), std::string::npos) << "decoded, not shown as bytes";
}

}  // namespace
}  // namespace esd
