// The log's two formats, its level filter and its escaping, read back from a string stream.
#include "log/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace esd::log {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override { Init(Level::kInfo, Format::kText); }  // back to stderr
  std::vector<std::string> Lines() {
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  std::ostringstream out_;
};

TEST_F(LogTest, TextLineHasUtcMicrosecondTimeLevelAndMessage) {
  Init(Level::kInfo, Format::kText, out_);
  Info("opened {} segments", 3);
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  static const std::regex kLine(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z info  esd: opened 3 segments)");
  EXPECT_TRUE(std::regex_match(lines[0], kLine)) << lines[0];
  EXPECT_EQ(out_.str().back(), '\n');
}

TEST_F(LogTest, LinesBelowTheLevelAreLeftOut) {
  Init(Level::kWarn, Format::kText, out_);
  Debug("d");
  Info("i");
  Warn("w");
  Error("e");
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kWarn));
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  EXPECT_NE(lines[0].find(" warn  esd: w"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(" error esd: e"), std::string::npos) << lines[1];
}

TEST_F(LogTest, TraceLevelLetsEverythingThrough) {
  Init(Level::kTrace, Format::kText, out_);
  Trace("t");
  Debug("d");
  EXPECT_EQ(Lines().size(), 2u) << out_.str();
}

TEST_F(LogTest, TextKeepsOneLinePerEventWhateverTheMessageHolds) {
  Init(Level::kInfo, Format::kText, out_);
  Write(Level::kInfo, std::string("two\nlines\tand a \x01 byte and {} braces", 37));
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  EXPECT_NE(lines[0].find("esd: two\\nlines\\tand a \\x01 byte and {} braces"), std::string::npos) << lines[0];
}

TEST_F(LogTest, TextFieldsFollowTheMessageQuotedWhenNeeded) {
  Init(Level::kInfo, Format::kText, out_);
  Write(Level::kInfo, "stopped", {{"signal", "SIGTERM"}, {"waited_ms", uint64_t{12}}, {"why", "said \"no\""},
                                   {"empty", ""}, {"ok", true}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"(esd: stopped signal=SIGTERM waited_ms=12 why="said \"no\"" empty="" ok=true)"),
            std::string::npos)
      << lines[0];
}

TEST_F(LogTest, JsonLineIsAnObjectWithTimeLevelMsgAndFields) {
  Init(Level::kInfo, Format::kJson, out_);
  Write(Level::kWarn, "slow fsync", {{"micros", uint64_t{250000}}, {"file", "segments/0.seg"}, {"delta", -3}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_TRUE(std::regex_match(j.at("time").get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
      << lines[0];
  EXPECT_EQ(j.at("level"), "warn");
  EXPECT_EQ(j.at("msg"), "slow fsync");
  EXPECT_EQ(j.at("micros"), 250000);
  EXPECT_EQ(j.at("file"), "segments/0.seg");
  EXPECT_EQ(j.at("delta"), -3);
}

TEST_F(LogTest, JsonEscapesQuotesControlsAndBrokenUtf8) {
  Init(Level::kInfo, Format::kJson, out_);
  const std::string nasty = std::string("a \"quoted\" \\ back\nslash \x01 and \xff\xfe not utf-8 {}");
  Write(Level::kError, nasty, {{"stream", nasty}});
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  const auto j = nlohmann::json::parse(lines[0]);  // throws if the line is not JSON
  const std::string msg = j.at("msg");
  EXPECT_EQ(msg.rfind("a \"quoted\" \\ back\nslash \x01 and ", 0), 0u) << msg;
  EXPECT_NE(msg.find("\xEF\xBF\xBD"), std::string::npos) << "U+FFFD stands for the bad bytes";
  EXPECT_EQ(j.at("stream"), msg);
}

TEST_F(LogTest, AFieldCannotHideTheLinesOwnKeys) {
  Init(Level::kInfo, Format::kJson, out_);
  Write(Level::kInfo, "real", {{"msg", "fake"}, {"level", "error"}});
  const auto j = nlohmann::json::parse(Lines().at(0));
  EXPECT_EQ(j.at("msg"), "real");
  EXPECT_EQ(j.at("level"), "info");
  EXPECT_EQ(j.at("_msg"), "fake");
  EXPECT_EQ(j.at("_level"), "error");
}

TEST_F(LogTest, LinesFromManyThreadsStayWhole) {
  Init(Level::kInfo, Format::kJson, out_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) Info("thread {} line {}", t, i);
    });
  }
  for (auto& t : threads) t.join();
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 800u);
  for (const auto& line : lines) EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(LogNames, LevelsAndFormatsParseByTheirFlagNames) {
  EXPECT_EQ(ParseLevel("trace"), Level::kTrace);
  EXPECT_EQ(ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(ParseLevel("info"), Level::kInfo);
  EXPECT_EQ(ParseLevel("warn"), Level::kWarn);
  EXPECT_EQ(ParseLevel("error"), Level::kError);
  EXPECT_EQ(ParseLevel("warning"), std::nullopt);
  EXPECT_EQ(ParseLevel("INFO"), std::nullopt);
  EXPECT_EQ(ParseFormat("text"), Format::kText);
  EXPECT_EQ(ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseFormat("xml"), std::nullopt);
  EXPECT_STREQ(LevelName(Level::kWarn), "warn");
  EXPECT_STREQ(FormatName(Format::kJson), "json");
}

}  // namespace
}  // namespace esd::log
