// OffLoopJobs: jobs run on threads of their own, and JoinAll waits for every one of them.
#include "server/context.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace esd::server {
namespace {

TEST(OffLoopJobs, JoinAllWaitsForEveryJobIncludingOnesStartedAfterOthersEnded) {
  OffLoopJobs jobs;
  std::atomic<int> ran{0};
  jobs.Start([&] { ++ran; });
  jobs.JoinAll();
  EXPECT_EQ(ran, 1);
  // A job that has ended is joined when the next starts; one still running is not touched.
  std::promise<void> release;
  auto released = release.get_future().share();
  jobs.Start([&, released] {
    released.wait();
    ++ran;
  });
  for (int i = 0; i < 10; ++i) jobs.Start([&] { ++ran; });
  release.set_value();
  jobs.JoinAll();
  EXPECT_EQ(ran, 12);
}

TEST(OffLoopJobs, TheDestructorWaitsForJobsStillRunning) {
  std::atomic<bool> done{false};
  {
    OffLoopJobs jobs;
    jobs.Start([&] { done = true; });
  }
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace esd::server
