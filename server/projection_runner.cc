#include "server/projection_runner.h"

#include <kj/debug.h>
#include <sys/resource.h>
#include <unistd.h>

#include <future>

#include "log/log.h"

namespace esd::server {

namespace {
constexpr uint64_t kSlice = 20'000;  // events per turn of the loop

// The calling thread's CPU priority below the event loop's (nice 10; Linux applies
// setpriority to one thread when given its id). For the snapshot writer: encoding ~400 k
// orders takes it ~1 s of CPU, and on 2 cores it took the loop's core for up to ~60 ms at a
// time. Advice: a failure is ignored.
void LowerCpuPriority() { (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10); }
}

ProjectionRunner::ProjectionRunner(storage::Store& store, DurableNotifier& notifier, kj::Timer& timer,
                                   DamageLog& damage_log, std::filesystem::path snapshot_path,
                                   uint64_t snapshot_every, kj::Duration snapshot_interval)
    : store_(store),
      notifier_(notifier),
      timer_(timer),
      damage_log_(damage_log),
      snapshot_path_(std::move(snapshot_path)),
      snapshot_every_(snapshot_every),
      snapshot_interval_(snapshot_interval),
      last_snapshot_(timer.now()),
      // A snapshot the log does not hold the end of (ahead of it, or of events it lost)
      // would skip or keep events: LoadSnapshot starts from nothing instead, and says why.
      projection_(domain::OrderProjection::LoadSnapshot(store_, snapshot_path_, &snapshot_ignored_)) {
  checkpoint_ = projection_.checkpoint();
  writer_.Post(LowerCpuPriority);
}

void ProjectionRunner::Start() {
  loop_ = Loop().eagerlyEvaluate([](kj::Exception&& e) { KJ_LOG(ERROR, "the order projection stopped", e); });
}

storage::Result<uint64_t> ProjectionRunner::Slice(uint64_t max_events) {
  const uint64_t before = projection_.checkpoint(), skipped_before = projection_.skipped_events();
  auto read = projection_.CatchUp(store_, max_events);
  CountSkipped(projection_, skipped_before);
  // What was applied before a failure was read from verified batches, and counts.
  applied_since_snapshot_ += projection_.checkpoint() - before;
  checkpoint_ = projection_.checkpoint();
  WakeWaiters();
  if (!read.ok()) {
    if (!read.status().IsDataLoss()) {
      KJ_FAIL_ASSERT("reading $all for the order projection failed", read.status().ToString());
    }
    StopAtDamage(read.status());
  }
  return read;
}

storage::Status ProjectionRunner::CatchUpNow() {
  if (damage_) return *damage_;
  while (true) {
    auto read = Slice(kSlice);
    if (!read.ok()) return read.status();
    if (*read < kSlice) return storage::Status::Ok();
  }
}

void ProjectionRunner::Drop(const std::vector<std::string>& order_ids) {
  for (const auto& id : order_ids) {
    projection_.Drop(id);
    if (rebuilding_.get() != nullptr) rebuilding_->Drop(id);
  }
}

kj::Promise<void> ProjectionRunner::Loop() {
  if (damage_) return kj::READY_NOW;  // CatchUpNow met it: the loop ends too
  auto read = Slice(kSlice);
  if (!read.ok()) return kj::READY_NOW;  // the loop ends here; queries go on from what was applied
  if (snapshot_every_ > 0 && applied_since_snapshot_ >= snapshot_every_ &&
      timer_.now() - last_snapshot_ >= snapshot_interval_) {
    SaveSnapshotInBackground();
  }
  if (*read >= kSlice) return kj::evalLater([this] { return Loop(); });  // more to do: yield first
  return notifier_.WaitBeyond(projection_.checkpoint()).then([this] { return Loop(); });
}

void ProjectionRunner::WakeWaiters() {
  const uint64_t applied_below = projection_.checkpoint();
  while (!waiters_->empty() && waiters_->begin()->first.first < applied_below) {
    waiters_->begin()->second->fulfill(Wait::kApplied);
    waiters_->erase(waiters_->begin());
  }
}

void ProjectionRunner::StopAtDamage(const storage::Status& damage) {
  damage_ = damage;
  {
    std::lock_guard lock(damage_text_mu_);
    damage_text_ = damage.message();
  }
  damage_log_.Report(damage, "the order projection");
  log::Error("the order projection stopped at position {}, where the log is damaged; it answers from the events "
             "before it, and queries for later positions are refused as damaged",
             projection_.checkpoint());
  for (auto& [key, fulfiller] : *waiters_) fulfiller->fulfill(Wait::kDamaged);
  waiters_->clear();
}

void ProjectionRunner::CountSkipped(const domain::OrderProjection& p, uint64_t before) {
  const uint64_t n = p.skipped_events() - before;
  if (n == 0 || skipped_.fetch_add(n, std::memory_order_relaxed) != 0 || !p.first_skipped()) return;
  // Once per process: a store from before the reservation may hold many, and a rebuild
  // meets them all again; the metric counts them.
  log::Warn("the order projection skipped an event that is not an order event: {} (appended directly, before "
            "order-<id> streams were reserved for the Order service). It is no part of any order; commands on "
            "that order are rejected (rule foreign-event). esd_projection_events_skipped_total counts such events; "
            "only this first one is logged",
            p.first_skipped()->Describe());
}

kj::Promise<ProjectionRunner::Wait> ProjectionRunner::WaitFor(uint64_t position, kj::Duration timeout) {
  if (position == 0 || position < projection_.checkpoint()) return Wait::kApplied;  // 0: no wait asked for
  if (damage_) return Wait::kDamaged;  // it will not get there
  return AddWaiter(position, timeout);
}

kj::Promise<ProjectionRunner::Wait> ProjectionRunner::CaughtUpTo(uint64_t end, kj::Duration timeout) {
  if (end <= projection_.checkpoint()) return Wait::kApplied;
  if (damage_) return Wait::kDamaged;
  return AddWaiter(end - 1, timeout);  // woken once the event at end - 1 is applied
}

kj::Promise<ProjectionRunner::Wait> ProjectionRunner::AddWaiter(uint64_t position, kj::Duration timeout) {
  auto paf = kj::newPromiseAndFulfiller<Wait>();
  const std::pair<uint64_t, uint64_t> key(position, next_waiter_++);
  waiters_->emplace(key, kj::mv(paf.fulfiller));
  // However the wait ends (applied, damaged, timed out) or is dropped, its entry goes: a
  // position that never comes (a client asking for 2^64-1) must not keep one forever.
  return paf.promise.exclusiveJoin(timer_.afterDelay(timeout).then([] { return Wait::kTimeout; }))
      .attach(kj::defer([waiters = waiters_, key] { waiters->erase(key); }));
}

kj::Promise<uint64_t> ProjectionRunner::Rebuild() {
  if (rebuild_ == nullptr) {
    rebuilding_ = kj::heap<domain::OrderProjection>();
    rebuild_ = RebuildLoop(0)
                   .then(
                       [this](uint64_t read) {
                         rebuild_ = nullptr;
                         return read;
                       },
                       [this](kj::Exception&& e) -> uint64_t {
                         // The live projection goes on; a later call starts a new rebuild.
                         rebuilding_ = nullptr;
                         rebuild_ = nullptr;
                         kj::throwFatalException(kj::mv(e));
                       })
                   .fork();
  }
  return KJ_ASSERT_NONNULL(rebuild_).addBranch();
}

kj::Promise<uint64_t> ProjectionRunner::RebuildLoop(uint64_t read) {
  const uint64_t skipped_before = rebuilding_->skipped_events();
  auto n = rebuilding_->CatchUp(store_, kSlice);
  CountSkipped(*rebuilding_, skipped_before);
  if (!n.ok()) {
    if (!n.status().IsDataLoss()) KJ_FAIL_ASSERT("reading $all for the rebuild failed", n.status().ToString());
    damage_log_.Report(n.status(), "the rebuild of the order projection");
    // A sentence for the operator, not an assertion: the caller asked for nothing wrong.
    kj::throwFatalException(KJ_EXCEPTION(
        FAILED, kj::str("the rebuild stopped at position ", rebuilding_->checkpoint(), ": the log is damaged at ",
                        n.status().message().c_str(), "; the running projection keeps answering")));
  }
  read += *n;
  if (rebuilding_->checkpoint() < projection_.checkpoint() || *n >= kSlice) {
    return kj::evalLater([this, read] { return RebuildLoop(read); });  // yield to queries and I/O
  }
  // Caught up with (or past) the live projection: take over.
  projection_ = kj::mv(*rebuilding_);
  rebuilding_ = nullptr;
  checkpoint_ = projection_.checkpoint();
  WakeWaiters();
  SaveSnapshotInBackground();
  return read;
}

storage::Status ProjectionRunner::SaveSnapshot() {
  applied_since_snapshot_ = 0;
  last_snapshot_ = timer_.now();
  std::promise<storage::Status> written;
  auto done = written.get_future();
  writer_.Post([this, captured = projection_.CaptureSnapshot(), &written] {
    written.set_value(domain::OrderProjection::WriteSnapshot(store_, snapshot_path_, captured));
  });
  return done.get();
}

void ProjectionRunner::SaveSnapshotInBackground() {
  if (writing_->exchange(true)) return;
  applied_since_snapshot_ = 0;
  last_snapshot_ = timer_.now();
  // Captured here, encoded on the writer's thread: encoding every order on the loop stalled
  // every client (domain/projections.h).
  writer_.Post([this, writing = writing_, captured = projection_.CaptureSnapshot()] {
    if (auto s = domain::OrderProjection::WriteSnapshot(store_, snapshot_path_, captured); !s.ok()) {
      log::Error("could not save the order projection's snapshot at position {} ({}); the next one is tried after "
                 "the next period",
                 captured.checkpoint, s.ToString());
    }
    writing->store(false);
  });
}

}  // namespace esd::server
