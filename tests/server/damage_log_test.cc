// DamageLog: one line per damaged place, naming file, offset and position, however often
// the place is met.
#include "server/damage_log.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "log/log.h"

namespace esd::server {
namespace {

class DamageLogTest : public ::testing::Test {
 protected:
  void SetUp() override { log::Init(log::Level::kInfo, log::Format::kText, out_); }
  void TearDown() override { log::Init(log::Level::kInfo, log::Format::kText); }
  std::string Text() { return out_.str(); }
  std::ostringstream out_;
};

storage::Status DamageAt(uint64_t offset, uint64_t position) {
  return storage::Status::Damaged({"segments/00000000000000000100.seg", offset, position}, "checksum mismatch");
}

TEST_F(DamageLogTest, ALineNamesTheFileOffsetPositionAndWhoFoundIt) {
  DamageLog log;
  EXPECT_TRUE(log.Report(DamageAt(4096, 117), "a read of $all"));
  const std::string text = Text();
  EXPECT_NE(text.find(" error esd: damage found by a read of $all: segments/00000000000000000100.seg offset 4096 "
                      "(position 117): checksum mismatch\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST_F(DamageLogTest, EachPlaceIsLoggedOnce) {
  DamageLog log;
  EXPECT_TRUE(log.Report(DamageAt(4096, 117), "a read"));
  EXPECT_FALSE(log.Report(DamageAt(4096, 117), "a subscription"));
  EXPECT_FALSE(log.Report(DamageAt(4096, 117), "the order projection"));
  EXPECT_TRUE(log.Report(DamageAt(8192, 130), "a read")) << "another place is news";
  const std::string text = Text();
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 2u) << text;
}

TEST_F(DamageLogTest, CorruptionWithoutAPlaceIsLoggedOncePerMessage) {
  DamageLog log;
  const auto bad = storage::Status::Corruption("stream 'order-1' version 3 (position 9): not an order event");
  EXPECT_TRUE(log.Report(bad, "a read"));
  EXPECT_FALSE(log.Report(bad, "a read"));
  EXPECT_NE(Text().find("not an order event"), std::string::npos);
}

}  // namespace
}  // namespace esd::server
