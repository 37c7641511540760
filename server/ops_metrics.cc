#include "server/ops_metrics.h"

namespace esd::server {

std::string AppendOutcome(const storage::Status& s) {
  using Code = storage::Status::Code;
  switch (s.code()) {
    case Code::kOk: return "ok";
    case Code::kWrongExpectedVersion: return "wrong_expected_version";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kIdempotencyConflict: return "idempotency_conflict";
    case Code::kOutOfSpace: return "out_of_space";
    case Code::kOverloaded: return "overloaded";
    case Code::kStreamDeleted: return "stream_deleted";
    case Code::kNotFound: return "not_found";  // the lifecycle calls only
    default: return "unavailable";  // as EventStore.append answers the rest
  }
}

void LastRun::Record(bool success, std::chrono::system_clock::time_point at) {
  success_.store(success);
  micros_.store(std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count());
}

void SubscriptionCursors::Register(const void* who, const std::atomic<uint64_t>* next_position) {
  std::lock_guard lock(mu_);
  cursors_[who] = Cursor{"", next_position};
}

void SubscriptionCursors::Register(const void* who, std::string stream, const std::atomic<uint64_t>* next_version) {
  std::lock_guard lock(mu_);
  cursors_[who] = Cursor{std::move(stream), next_version};
}

void SubscriptionCursors::Unregister(const void* who) {
  std::lock_guard lock(mu_);
  cursors_.erase(who);
}

uint64_t SubscriptionCursors::MaxLag(const storage::Store& store) const {
  const uint64_t durable = store.DurablePosition().value;
  std::lock_guard lock(mu_);
  uint64_t lag = 0;
  for (const auto& [who, c] : cursors_) {
    const uint64_t next = c.next->load(std::memory_order_relaxed);
    uint64_t end = durable;  // one past what it may be sent
    if (!c.stream.empty()) {
      const auto info = store.GetStreamInfo(c.stream);
      end = info ? info->last_version.value + 1 : 0;
    }
    if (end > next) lag = std::max(lag, end - next);
  }
  return lag;
}

}  // namespace esd::server
