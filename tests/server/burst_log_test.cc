#include "server/burst_log.h"

#include <gtest/gtest.h>

namespace esd::server {
namespace {

TEST(BurstLog, TheFirstFailureIsLoggedAtOnceAndTheRestOfTheBurstOnceAnIntervalHasPassed) {
  kj::TimerImpl timer(kj::origin<kj::TimePoint>());
  BurstLog log(timer, 10 * kj::SECONDS);
  EXPECT_EQ(log.Failed(), 1u);
  EXPECT_EQ(log.Failed(), 0u);
  timer.advanceTo(timer.now() + 9 * kj::SECONDS);
  EXPECT_EQ(log.Failed(), 0u) << "still within the interval";
  timer.advanceTo(timer.now() + 1 * kj::SECONDS);
  EXPECT_EQ(log.Failed(), 3u) << "this one and the two not logged";
  EXPECT_EQ(log.Failed(), 0u);
}

TEST(BurstLog, AFailureAfterAQuietSpellIsLoggedAtOnce) {
  kj::TimerImpl timer(kj::origin<kj::TimePoint>());
  BurstLog log(timer, 10 * kj::SECONDS);
  EXPECT_EQ(log.Failed(), 1u);
  timer.advanceTo(timer.now() + 60 * kj::SECONDS);
  EXPECT_EQ(log.Failed(), 1u);
}

}  // namespace
}  // namespace esd::server
