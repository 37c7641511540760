// How esctl prints: --json lines are JSON with numbers for 64-bit integers and RFC 3339 UTC
// times with microseconds, the same in every output; event data prints as stored.
#include "tools/esctl_output.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

namespace esd::esctl {
namespace {

using nlohmann::json;

const std::regex kRfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");

// 2026-11-26T12:11:48.123456Z
constexpr uint64_t kMicros = 1795695108123456;

json Parse(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  return json::parse(line);
}

TEST(OrderEventJson, SixtyFourBitFieldsBecomeNumbersAndTimesRfc3339) {
  // As capnp's JSON codec writes them: 64-bit integers as strings, times as microseconds.
  json j = json::parse(OrderEventJson("ItemAdded", R"({"sku":"50","quantity":2,"unitPriceCents":"50"})"));
  EXPECT_EQ(j["unitPriceCents"], 50);
  EXPECT_TRUE(j["unitPriceCents"].is_number_integer());
  EXPECT_EQ(j["sku"], "50") << "a text field stays text, whatever it holds";
  EXPECT_EQ(j["quantity"], 2);

  j = json::parse(OrderEventJson("OrderCreated", R"({"orderId":"o","customerId":"c","createdAt":"1795695108123456"})"));
  EXPECT_EQ(j["createdAt"], "2026-11-26T12:11:48.123456Z");
  EXPECT_EQ(j["orderId"], "o");

  j = json::parse(OrderEventJson("OrderPlaced", R"({"totalCents":"-5","itemCount":1})"));
  EXPECT_EQ(j["totalCents"], -5);
}

TEST(OrderEventJson, KeysKeepTheirOrderAndOtherTypesPassThrough) {
  EXPECT_EQ(OrderEventJson("ItemAdded", R"({"sku":"a","quantity":1,"unitPriceCents":"7"})"),
            R"({"sku":"a","quantity":1,"unitPriceCents":7})");
  EXPECT_EQ(OrderEventJson("SomethingElse", R"({"n":"7"})"), R"({"n":"7"})");
  EXPECT_EQ(OrderEventJson("ItemAdded", "not json"), "not json");
}

TEST(HistoryLine, NumbersAndTimesAreTheSameAsOrderGetPrintsThem) {
  client::HistoryEntry e;
  e.version = 1;
  e.position = 9;
  e.timestamp_micros = kMicros;
  e.type = "ItemAdded";
  e.json = R"({"sku":"s","quantity":3,"unitPriceCents":"50"})";
  e.command_id = "cmd";
  json h = Parse(HistoryLine(e, true));
  EXPECT_EQ(h["json"]["unitPriceCents"], 50);
  EXPECT_EQ(h["time"], "2026-11-26T12:11:48.123456Z");
  EXPECT_EQ(h["position"], 9);

  const std::string text = HistoryLine(e, false);
  EXPECT_NE(text.find(R"("unitPriceCents":50)"), std::string::npos) << text;
  EXPECT_NE(text.find("2026-11-26T12:11:48.123456Z"), std::string::npos) << text;

  e.type = "OrderCreated";
  e.json = R"({"orderId":"o","customerId":"c","createdAt":"1795695108123456"})";
  EXPECT_EQ(Parse(HistoryLine(e, true))["json"]["createdAt"], "2026-11-26T12:11:48.123456Z");

  client::OrderView v;
  v.order_id = "o";
  v.lines.push_back({"s", 3, 50});
  v.total_cents = 150;
  v.created_at_micros = kMicros;
  json g = Parse(OrderText(v, true));
  EXPECT_EQ(g["lines"][0]["unitPriceCents"], 50);
  EXPECT_EQ(g["createdAt"], "2026-11-26T12:11:48.123456Z");
  EXPECT_TRUE(g["placedAt"].is_null()) << "a time that has not happened is null";
  EXPECT_TRUE(g["cancelledAt"].is_null());
  EXPECT_EQ(g["totalCents"], 150);
}

TEST(EventLine, JsonDataPrintsAsStoredWithNumbersUntouched) {
  client::RecordedEvent e;
  e.stream = "s";
  e.version = 18446744073709551615ull;
  e.position = 9007199254740993ull;  // 2^53 + 1: a number, written exactly
  e.type = "T";
  e.content_type = "application/json";
  e.timestamp_micros = kMicros;
  e.data = R"({ "a": 1e2, "big": 12345678901234567890123, "x": [1, 2.50] })";
  const std::string line = EventLine(e, true);
  EXPECT_NE(line.find(R"("data":{"a":1e2,"big":12345678901234567890123,"x":[1,2.50]})"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("version":18446744073709551615,"position":9007199254740993,)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("timestamp":"2026-11-26T12:11:48.123456Z")"), std::string::npos) << line;
  EXPECT_NO_THROW(Parse(line));
}

TEST(EventLine, BytesThatAreNotUtf8AreBase64AndOtherTextGetsReplacementCharacters) {
  client::RecordedEvent e;
  e.stream = "s";
  e.type = std::string("T\xff", 2);  // from a server that should not send it: still one valid JSON line
  e.content_type = "application/octet-stream";
  e.timestamp_micros = kMicros;
  e.data = std::string("\xff\x01", 2);
  e.metadata = "quote \" and newline \n";
  const json j = Parse(EventLine(e, true));
  EXPECT_EQ(j["data"], "/wE=");
  EXPECT_EQ(j["dataEncoding"], "base64");
  EXPECT_EQ(j["type"], "T\xef\xbf\xbd") << "U+FFFD for the byte that is not UTF-8";
  EXPECT_EQ(j["metadata"], "quote \" and newline \n");
  EXPECT_FALSE(j.contains("metadataEncoding"));

  const std::string text = EventLine(e, false);
  EXPECT_TRUE(std::regex_search(text, kRfc3339)) << text;
  EXPECT_TRUE(text.ends_with(" base64:/wE=\n")) << text;
}

TEST(AppendLine, PositionsAreNumbersAndTheTimeIsRfc3339) {
  client::AppendResult r;
  r.first_version = r.last_version = 4;
  r.first_position = r.last_position = 41;
  r.timestamp_micros = kMicros;
  const json j = Parse(AppendLine("s", client::EventId{}, r, true));
  EXPECT_EQ(j["firstPosition"], 41);
  EXPECT_EQ(j["lastVersion"], 4);
  EXPECT_EQ(j["timestamp"], "2026-11-26T12:11:48.123456Z");
  EXPECT_EQ(AppendLine("s", client::EventId{}, r, false).find("appended s@4 at position 41 (2026-11-26T12:11:48"), 0u);
}

TEST(JsonObject, WritesKeysInOrderWithNlohmannEscaping) {
  const std::string o = JsonObject()
                            .String("k\"ey", "tab\tand \x01")
                            .Number("n", 18446744073709551615ull)
                            .Integer("i", -3)
                            .Bool("b", false)
                            .Time("t", 0)
                            .Time("u", kMicros)
                            .Raw("r", JsonArray({"1", JsonString("x")}))
                            .Done();
  EXPECT_EQ(o, R"({"k\"ey":"tab\tand \u0001","n":18446744073709551615,"i":-3,"b":false,"t":null,)"
               R"("u":"2026-11-26T12:11:48.123456Z","r":[1,"x"]})");
}

}  // namespace
}  // namespace esd::esctl
