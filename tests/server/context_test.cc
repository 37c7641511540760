// OffLoopJobs: jobs run on a few threads of their own, and JoinAll waits for every one of them.
#include "server/context.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
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

TEST(OffLoopJobs, AtMostFourRunAtOnceAndTheRestWaitTheirTurn) {
  // A client pipelining a thousand verifies must not get a thousand threads.
  OffLoopJobs jobs;
  std::mutex mu;
  std::condition_variable cv;
  int running = 0, most = 0, ran = 0;
  bool open = false;
  for (int i = 0; i < 10; ++i) {
    jobs.Start([&] {
      std::unique_lock lock(mu);
      most = std::max(most, ++running);
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
      --running;
      ++ran;
    });
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return running == OffLoopJobs::kMaxThreads; });  // they block until opened
    open = true;
    cv.notify_all();
  }
  jobs.JoinAll();
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(most, OffLoopJobs::kMaxThreads);
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
