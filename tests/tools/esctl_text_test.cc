// esctl's text helpers: JSON checking that keeps tokens as written, quoting, and the one
// time format (RFC 3339, UTC, microseconds) with its inverse.
#include "tools/esctl_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace esd::esctl {
namespace {

TEST(Duration, TakesAWholeNumberAndOneUnit) {
  EXPECT_EQ(ParseDuration("500ms"), 500'000u);
  EXPECT_EQ(ParseDuration("30s"), 30'000'000u);
  EXPECT_EQ(ParseDuration("15m"), 900'000'000u);
  EXPECT_EQ(ParseDuration("2h"), 7'200'000'000u);
  EXPECT_EQ(ParseDuration("7d"), 604'800'000'000u);
}

TEST(Duration, RefusesZeroNegativesFractionsAndUnknownUnits) {
  for (const char* bad : {"", "0s", "-5s", "1.5h", "30", "s", "10w", "10 s", "5sec", "99999999999999999999d"}) {
    EXPECT_EQ(ParseDuration(bad), std::nullopt) << bad;
  }
}

TEST(Duration, PrintsInTheLargestUnitThatDividesIt) {
  EXPECT_EQ(FormatDuration(604'800'000'000), "7d");
  EXPECT_EQ(FormatDuration(5'400'000'000), "90m");
  EXPECT_EQ(FormatDuration(1'500'000), "1500ms");
  EXPECT_EQ(FormatDuration(1'500), "1500us");
  for (const char* text : {"500ms", "30s", "15m", "2h", "7d"}) EXPECT_EQ(FormatDuration(*ParseDuration(text)), text);
}

TEST(CompactJson, DropsOnlyTheWhitespaceBetweenTokens) {
  EXPECT_EQ(CompactJson(" { \"a b\" : [ 1e2 , -0.50 ,\n\t12345678901234567890123 ] , \"c\":\"x \\\" y\" } "),
            R"({"a b":[1e2,-0.50,12345678901234567890123],"c":"x \" y"})");
  EXPECT_EQ(CompactJson("\"\\\\\""), "\"\\\\\"") << "an escaped backslash ends no string";
  EXPECT_EQ(CompactJson("7"), "7");
}

TEST(CompactJson, RefusesWhatIsNotOneJsonValue) {
  for (const std::string text : std::vector<std::string>{"", "{", "{} {}", "{\"a\":}", "[1,]", "'x'", "nul",
                                                         "\"tab\there\"", "\"\xff\"", "\"\xc0\xaf\""}) {
    EXPECT_FALSE(CompactJson(text).has_value()) << text;
  }
}

TEST(CompactJson, DeepNestingIsJson) {
  const std::string deep = std::string(10'000, '[') + std::string(10'000, ']');
  EXPECT_EQ(CompactJson(deep), deep);
}

TEST(QuoteJson, EscapesControlsAndReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(QuoteJson("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
  EXPECT_EQ(QuoteJson("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(QuoteJson(std::string("x\xffy", 3)), "\"x\xef\xbf\xbdy\"");
}

TEST(Timestamp, FormatsRfc3339InUtcWithMicroseconds) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(1795695108123456), "2026-11-26T12:11:48.123456Z");
  EXPECT_EQ(FormatTimestamp(951782400000001), "2000-02-29T00:00:00.000001Z");
}

TEST(Timestamp, ParsingIsTheInverse) {
  for (uint64_t micros : {uint64_t{0}, uint64_t{1795695108123456}, uint64_t{951782400000001}}) {
    EXPECT_EQ(ParseTimestamp(FormatTimestamp(micros)), micros);
  }
  EXPECT_EQ(ParseTimestamp("2026-11-26T12:11:48"), 1795695108000000u);
  EXPECT_EQ(ParseTimestamp("2026-11-26T12:11:48.5Z"), 1795695108500000u);
  EXPECT_FALSE(ParseTimestamp("2025-02-30T00:00:00Z").has_value());
  EXPECT_FALSE(ParseTimestamp("1969-12-31T23:59:59Z").has_value());
}

}  // namespace
}  // namespace esd::esctl
