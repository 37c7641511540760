// AppendCompletions: results from another thread reach their own promises on the loop, one
// wake-up for all the results that arrived together, and for the durable move of their group.
#include "server/append_completions.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>

#include <thread>
#include <vector>

namespace esd::server {
namespace {

storage::AppendResult Appended(uint64_t first) {
  storage::AppendOk ok;
  ok.first_position = storage::GlobalPosition(first);
  return ok;
}

// `n` appends waiting for their results: the promises, and the callbacks the store would run.
struct Waiting {
  std::vector<kj::Promise<kj::Own<storage::AppendResult>>> results;
  std::vector<storage::AppendCallback> callbacks;
};
Waiting ExpectMany(AppendCompletions& completions, int n) {
  Waiting w;
  for (int i = 0; i < n; ++i) {
    auto e = completions.Expect();
    w.results.push_back(kj::mv(e.result));
    w.callbacks.push_back(std::move(e.done));
  }
  return w;
}

TEST(AppendCompletions, EachResultFromTheWriterThreadReachesItsOwnAppend) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  Waiting w = ExpectMany(completions, 10);
  std::thread writer([&] {
    for (int i = 9; i >= 0; --i) w.callbacks[i](Appended(100 + i));  // in any order
  });
  for (int i = 0; i < 10; ++i) {
    auto r = w.results[i].wait(io.waitScope);
    ASSERT_TRUE(r->ok());
    EXPECT_EQ(r->value().first_position.value, 100u + i);
  }
  writer.join();
  EXPECT_EQ(completions.waiting(), 0u);
}

TEST(AppendCompletions, ResultsThatArriveTogetherWakeTheLoopOnce) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  Waiting w = ExpectMany(completions, 64);
  // The whole group is posted while the loop does not turn, as a group commit completes.
  std::thread([&] {
    for (auto& done : w.callbacks) done(Appended(7));
  }).join();
  for (auto& r : w.results) EXPECT_TRUE(r.wait(io.waitScope)->ok());
  EXPECT_EQ(completions.wakeups(), 1u);
  // The next group wakes it again.
  auto next = completions.Expect();
  std::thread([&] { next.done(Appended(8)); }).join();
  EXPECT_EQ(next.result.wait(io.waitScope)->value().first_position.value, 8u);
  EXPECT_EQ(completions.wakeups(), 2u);
}

TEST(AppendCompletions, AResultWhoseCallerGaveUpIsDropped) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  auto abandoned = completions.Expect();
  auto kept = completions.Expect();
  abandoned.result = nullptr;  // the client went away
  std::thread([&] {
    abandoned.done(Appended(1));
    kept.done(Appended(2));
  }).join();
  EXPECT_EQ(kept.result.wait(io.waitScope)->value().first_position.value, 2u);
  EXPECT_EQ(completions.waiting(), 0u);
}

TEST(AppendCompletions, AResultAfterTheLoopSideIsGoneIsDropped) {
  storage::AppendCallback late;
  {
    auto io = kj::setupAsyncIo();
    AppendCompletions completions;
    auto e = completions.Expect();
    late = std::move(e.done);
  }
  // The store finishes its queue after the daemon's loop objects are gone.
  std::thread([&] { late(Appended(3)); }).join();
}

// The durable moves a test asked for and was told of.
struct Moves {
  // Asks for the next durable move, and counts it as soon as it is told (eagerly: a kj
  // continuation otherwise runs only once someone waits on it).
  kj::Promise<void> Next(AppendCompletions& completions) {
    return completions.NextDurableMove().then([this] { ++count; }).eagerlyEvaluate(nullptr);
  }
  int count = 0;
};

// The writer thread tells of a durable move to `position`, as the store's observer does.
void MoveFromWriter(AppendCompletions& completions, uint64_t position) {
  auto observer = completions.DurableObserver();
  std::thread([&] { observer(storage::GlobalPosition(position)); }).join();
}

TEST(AppendCompletions, ADurableMoveAndTheResultsOfItsGroupWakeTheLoopOnceAnswersFirst) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  Moves moves;
  Waiting w = ExpectMany(completions, 8);
  auto moved = moves.Next(completions);
  // As the store completes a group: its durable observers first, then the callbacks.
  auto observer = completions.DurableObserver();
  std::thread([&] {
    observer(storage::GlobalPosition(8));
    for (auto& done : w.callbacks) done(Appended(7));
  }).join();
  int moves_when_answered = -1;
  w.results[0]
      .then([&](kj::Own<storage::AppendResult>) { moves_when_answered = moves.count; })
      .wait(io.waitScope);
  for (size_t i = 1; i < w.results.size(); ++i) EXPECT_TRUE(w.results[i].wait(io.waitScope)->ok());
  moved.wait(io.waitScope);
  EXPECT_EQ(moves_when_answered, 0) << "the appends are answered before the move is told";
  EXPECT_EQ(moves.count, 1);
  EXPECT_EQ(completions.wakeups(), 1u);
}

TEST(AppendCompletions, AMoveNobodyAskedForCostsTheLoopNoWakeUp) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  Moves moves;
  MoveFromWriter(completions, 1);
  auto e = completions.Expect();
  kj::evalLast([] {}).wait(io.waitScope);  // the loop turns while the append waits
  std::thread([&] { e.done(Appended(1)); }).join();
  EXPECT_TRUE(e.result.wait(io.waitScope)->ok());
  EXPECT_EQ(completions.wakeups(), 1u) << "the move nobody asked for woke the loop";
  auto later = moves.Next(completions);
  EXPECT_FALSE(later.poll(io.waitScope)) << "the move nobody asked for is not a later asker's";
  EXPECT_EQ(moves.count, 0);
}

TEST(AppendCompletions, AMoveToldBeforeItWasAskedForIsNotTheOneAskedFor) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  Moves moves;
  MoveFromWriter(completions, 1);
  auto next = moves.Next(completions);  // the caller looks at the durable position after this
  EXPECT_FALSE(next.poll(io.waitScope));  // every turn the loop has queued
  EXPECT_EQ(moves.count, 0);
  MoveFromWriter(completions, 2);
  next.wait(io.waitScope);
  EXPECT_EQ(moves.count, 1);
}

TEST(AppendCompletions, AMoveAskedForIsStillAwaitedAfterResultsWithoutOne) {
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  Moves moves;
  auto next = moves.Next(completions);
  // A rejected append: its result comes with no durable move.
  auto e = completions.Expect();
  std::thread([&] { e.done(storage::Status::InvalidArgument("rejected")); }).join();
  EXPECT_FALSE(e.result.wait(io.waitScope)->ok());
  EXPECT_EQ(moves.count, 0);
  MoveFromWriter(completions, 1);
  next.wait(io.waitScope);
  EXPECT_EQ(moves.count, 1);
}

}  // namespace
}  // namespace esd::server
