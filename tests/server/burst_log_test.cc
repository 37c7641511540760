#include "server/burst_log.h"

#include <gtest/gtest.h>

namespace esd::server {
namespace {

using namespace std::chrono_literals;
const BurstLog::Clock::time_point t0 = BurstLog::Clock::time_point{} + 1h;

TEST(BurstLog, TheFirstFailureIsLoggedAtOnceAndTheRestOfTheBurstOnceAnIntervalHasPassed) {
  BurstLog log(10s);
  EXPECT_EQ(log.Failed(t0), 1u);
  EXPECT_EQ(log.Failed(t0), 0u);
  EXPECT_EQ(log.Failed(t0 + 9s), 0u) << "still within the interval";
  EXPECT_EQ(log.Failed(t0 + 10s), 3u) << "this one and the two not logged";
  EXPECT_EQ(log.Failed(t0 + 10s), 0u);
}

TEST(BurstLog, AFailureAfterAQuietSpellIsLoggedAtOnce) {
  BurstLog log(10s);
  EXPECT_EQ(log.Failed(t0), 1u);
  EXPECT_EQ(log.Failed(t0 + 60s), 1u);
}

}  // namespace
}  // namespace esd::server
