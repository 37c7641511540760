// Progress reports on a manual clock: nothing before there is a total, a report per tick
// only when the figures moved, a final done == total before the work's result, and a sink
// that fails stops the reports, never the work.
#include "server/progress.h"

#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/debug.h>
#include <kj/timer.h>

#include <vector>

namespace esd::server {
namespace {

class Recorder final : public rpc::ProgressSink::Server {
 public:
  Recorder(std::vector<Figures>* calls, bool fail) : calls_(calls), fail_(fail) {}
  kj::Promise<void> progress(ProgressContext context) override {
    if (fail_) return KJ_EXCEPTION(DISCONNECTED, "the caller went away");
    calls_->emplace_back(context.getParams().getDone(), context.getParams().getTotal());
    return kj::READY_NOW;
  }

 private:
  std::vector<Figures>* calls_;
  bool fail_;
};

class ProgressTest : public ::testing::Test {
 protected:
  // KJ's loop, scope and timer may throw from their destructors; a fixture's must not.
  ~ProgressTest() noexcept override {}
  // One report interval passes; whatever it set off runs.
  void Tick() {
    timer_.advanceTo(timer_.now() + kProgressInterval);
    ws_.poll();
  }
  kj::EventLoop loop_;
  kj::WaitScope ws_{loop_};
  kj::TimerImpl timer_{kj::origin<kj::TimePoint>()};
  ProgressCell cell_;
  std::vector<Figures> calls_;
};

TEST_F(ProgressTest, ReportsOnlyMovedFiguresWithATotalThenOnceMoreCompleteBeforeTheResult) {
  auto paf = kj::newPromiseAndFulfiller<int>();
  rpc::ProgressSink::Client sink = kj::heap<Recorder>(&calls_, false);
  auto result = WithProgress<int>(timer_, sink, [this] { return cell_.Get(); }, kj::mv(paf.promise));
  Tick();
  EXPECT_TRUE(calls_.empty()) << "(0, 0) is no progress: it would read as done";
  cell_.Set(10, 100);
  Tick();
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0], Figures(10, 100));
  Tick();
  EXPECT_EQ(calls_.size(), 1u) << "nothing moved";
  cell_.Set(60, 100);
  Tick();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1], Figures(60, 100));
  cell_.Set(100, 100);
  paf.fulfiller->fulfill(7);
  EXPECT_EQ(result.wait(ws_), 7);
  ASSERT_EQ(calls_.size(), 3u);
  EXPECT_EQ(calls_[2], Figures(100, 100));
  Tick();
  EXPECT_EQ(calls_.size(), 3u) << "no report after the answer";
}

TEST_F(ProgressTest, WithoutASinkTheWorkIsAllThereIs) {
  auto result = WithProgress<int>(timer_, nullptr, [this] { return cell_.Get(); }, kj::Promise<int>(5));
  EXPECT_EQ(result.wait(ws_), 5);
}

TEST_F(ProgressTest, ASinkThatFailsStopsTheReportsNotTheWork) {
  auto paf = kj::newPromiseAndFulfiller<int>();
  rpc::ProgressSink::Client sink = kj::heap<Recorder>(&calls_, true);
  auto result = WithProgress<int>(timer_, sink, [this] { return cell_.Get(); }, kj::mv(paf.promise));
  cell_.Set(1, 2);
  Tick();
  cell_.Set(2, 2);
  Tick();
  paf.fulfiller->fulfill(9);
  EXPECT_EQ(result.wait(ws_), 9);
}

}  // namespace
}  // namespace esd::server
