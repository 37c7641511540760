#include "server/subscription.h"

#include <kj/debug.h>

#include <atomic>

#include "log/log.h"
#include "server/event_store_service.h"

namespace esd::server {

namespace {

class SubscriptionImpl final : public rpc::Subscription::Server, public LiveSubscription {
 public:
  SubscriptionImpl(ServerContext& ctx, EventFilter filter, rpc::Subscriber::Client subscriber, bool records)
      : ctx_(ctx), filter_(std::move(filter)), subscriber_(kj::mv(subscriber)), records_(records) {
    ++ctx_.counters.subscriptions;
    ctx_.subscriptions.insert(this);
  }
  ~SubscriptionImpl() noexcept(false) { Finish(); }

  kj::Promise<void> End(std::string reason) override {
    pump_ = nullptr;
    Finish();
    return Drop(std::move(reason)).catch_([](kj::Exception&&) {});  // a subscriber already gone is fine
  }

  void StartAtPosition(uint64_t position) {
    cursor_ = position;
    Start();
  }
  void StartAtStream(std::string stream, uint64_t version) {
    stream_ = std::move(stream);
    version_ = version;
    by_stream_ = true;
    Start();
  }

  kj::Promise<void> cancel(CancelContext) override {
    pump_ = nullptr;  // destroying the promise stops the loop wherever it waits
    Finish();
    return kj::READY_NOW;
  }

 private:
  // The subscription is no longer live: it stops counting (the client may hold its handle
  // for long after). Once only.
  void Finish() {
    if (!live_) return;
    live_ = false;
    ctx_.ops.subscriptions.Unregister(this);
    ctx_.subscriptions.erase(this);
    --ctx_.counters.subscriptions;
  }

  // Where the subscription is, for esd_subscription_lag_events (read on the HTTP thread).
  void Publish() { next_.store(by_stream_ ? version_ : cursor_, std::memory_order_relaxed); }

  void Start() {
    Publish();
    if (by_stream_) {
      ctx_.ops.subscriptions.Register(this, stream_, &next_);
    } else {
      ctx_.ops.subscriptions.Register(this, &next_);
    }
    // The loop ends on an error: the subscriber went away, or one of its calls failed (its
    // handler threw). The handler must not touch pump_, which is the promise it runs in.
    pump_ = Pump().eagerlyEvaluate([this](kj::Exception&& e) {
      Finish();
      if (e.getType() == kj::Exception::Type::DISCONNECTED) return;
      // Its `events` threw. capnp then fails every later call on that capability, `dropped`
      // too, so the subscriber cannot be told here; it knows what it threw (esd::client
      // tells its caller through on_dropped). The daemon counts it and says it in its log.
      ++ctx_.counters.subscribers_failed;
      if (const uint64_t n = ctx_.subscriber_failures_log.Failed()) {
        log::Warn("a subscriber failed to take a push, so its subscription ended: {} ({} such since the last such "
                  "line; esd_subscribers_failed_total counts them all)",
                  e.getDescription().cStr(), n);
      }
    });
  }

  kj::Promise<void> Pump() {
    Publish();
    const uint64_t durable = ctx_.store.DurablePosition().value;
    // Reused from push to push: growing a fresh vector to 2048 views copied it twice over.
    std::vector<storage::EventView>& batch = batch_;
    batch.clear();
    if (by_stream_) {
      auto events = ctx_.store.ReadStream(stream_, storage::StreamVersion(version_), kSubscriptionBatch);
      if (events.ok()) {
        uint64_t bytes = 0;
        for (const auto& e : *events) {
          if (!batch.empty() && bytes + WireSize(e) > kSubscriptionBatchBytes) break;  // next push
          bytes += WireSize(e);
          version_ = e.version.value + 1;
          if (filter_.Matches(e)) batch.push_back(e);
        }
        if (!events->empty()) return Send(batch);
      } else if (events.status().code() != storage::Status::Code::kNotFound) {
        return Stop(events.status());
      }
    } else if (cursor_ < durable && records_ && filter_.ByStreamOnly() && durable - cursor_ > kSubscriptionBatch) {
      // Catching up with records: whole runs as the log holds them (Store::ReadAllRecords),
      // with no view, visit or filter per event.
      runs_.Clear();
      auto take = [this](const storage::Store::RecordRun& run) { return runs_.Take(run); };
      storage::GlobalPosition skipped(cursor_);
      const auto scanned =
          ctx_.store.ReadAllRecords(storage::GlobalPosition(cursor_), kMaxScanPerRead, take, buffer_, &skipped);
      cursor_ = std::max(cursor_, skipped.value);
      if (!scanned.ok() && runs_.empty()) return Stop(scanned.status());
      return SendRuns();  // after damage, what verified before it; the next turn stops there
    } else if (cursor_ < durable) {
      uint64_t bytes = 0;
      auto visit = [&](const storage::EventView& e) {
        if (filter_.Matches(e)) {
          if (!batch.empty() && bytes + WireSize(e) > kSubscriptionBatchBytes) return false;  // next push
          batch.push_back(e);
          bytes += WireSize(e);
        }
        cursor_ = e.position.value + 1;
        return batch.size() < kSubscriptionBatch;
      };
      // Catching up, the log is read through buffer_ (pread; storage/store.h says why), whose
      // views stay valid until the next ReadAll, after Send built the push. A live
      // subscription reads the little that is new in place: it was just written, so it is
      // in the cache, and a buffer would cost an allocation per wake-up.
      // Removed events (deleted, truncated, expired) are not visited: past them, the cursor
      // moves on to where the scan skipped to, or it would scan them again on every turn.
      storage::GlobalPosition skipped(cursor_);
      const auto scanned =
          durable - cursor_ > kSubscriptionBatch
              ? ctx_.store.ReadAll(storage::GlobalPosition(cursor_), kMaxScanPerRead, visit, buffer_, &skipped)
              : ctx_.store.ReadAll(storage::GlobalPosition(cursor_), kMaxScanPerRead, visit, &skipped);
      cursor_ = std::max(cursor_, skipped.value);
      if (!scanned.ok()) {
        // What was visited before the damage verified: deliver it first. The next turn starts
        // at the damage and meets it again (a segment remembers its damage), then stops.
        if (!batch.empty()) return Send(batch);
        return Stop(scanned.status());
      }
      return Send(batch);
    }
    // Nothing durable is left to send. A live subscription holds no read buffer while it
    // waits (thousands may wait at once); it takes one again for what is new.
    buffer_.Release();
    batch_ = {};
    runs_.Release();
    kj::Promise<void> said = kj::READY_NOW;
    if (!caught_up_) {
      caught_up_ = true;
      auto request = subscriber_.caughtUpRequest();
      request.setPosition(by_stream_ ? durable : cursor_);
      said = request.send().ignoreResult();
    }
    const uint64_t seen = by_stream_ ? durable : cursor_;
    return said.then([this, seen] { return ctx_.notifier.WaitBeyond(seen); }).then([this] { return Pump(); });
  }

  // Builds the push from `batch` before it returns: the views may then go.
  kj::Promise<void> Send(const std::vector<storage::EventView>& batch) {
    Publish();
    if (batch.empty()) return kj::evalLater([this] { return Pump(); });  // all filtered out
    // One segment: a receiver looks up every blob outside the first segment under a mutex
    // (35% of a subscriber's CPU in perf before this; W4 went from 3.4M to 5.2M events/s).
    const size_t record_bytes = records_ ? RecordBytes(batch) : 0;
    capnp::MessageSize size{16 + record_bytes / 8, 0};
    if (!records_) {
      uint64_t bytes = 0;
      for (const auto& e : batch) bytes += WireSize(e);
      size = OneSegment(bytes, batch.size());
    }
    auto request = subscriber_.eventsRequest(size);
    FillEvents(request, batch, records_, record_bytes);
    // evalLater: do not recurse; the daemon's busy-poll interval lets incoming messages (a
    // cancel, a disconnect) in between batches even while the flow-control window is open.
    return request.send().then([this] { return kj::evalLater([this] { return Pump(); }); });
  }

  // Sends runs_ as one push of records.
  kj::Promise<void> SendRuns() {
    Publish();
    if (runs_.empty()) return kj::evalLater([this] { return Pump(); });  // all filtered out
    auto request = subscriber_.eventsRequest(capnp::MessageSize{16 + runs_.bytes() / 8, 0});
    runs_.CopyTo(request.initRecords(runs_.bytes()).begin());
    return request.send().then([this] { return kj::evalLater([this] { return Pump(); }); });
  }

  // The log cannot be read on: the subscription ends, never as if the log had ended there.
  kj::Promise<void> Stop(const storage::Status& s) {
    Finish();
    // A subscriber that cannot take the `dropped` either is gone already: not a failed push.
    if (!s.IsDataLoss()) return Drop(s.ToString()).catch_([](kj::Exception&&) {});
    ctx_.damage_log.Report(s, "a subscription");
    return Drop("the log is damaged at " + s.message() + "; the subscription cannot go past it", &s)
        .catch_([](kj::Exception&&) {});
  }

  kj::Promise<void> Drop(std::string reason, const storage::Status* damage = nullptr) {
    auto request = subscriber_.droppedRequest();
    request.setReason(reason);
    if (damage != nullptr) FillDamage(request.initDamage(), *damage);
    return request.send().ignoreResult();
  }

  ServerContext& ctx_;
  const EventFilter filter_;
  rpc::Subscriber::Client subscriber_;
  const bool records_;  // the subscriber takes records (protocol/esd.capnp)
  kj::Promise<void> pump_ = nullptr;
  bool live_ = true;                    // counted in ctx_.subscriptions until Finish()
  bool by_stream_ = false;
  std::string stream_;
  uint64_t version_ = 0;
  uint64_t cursor_ = 0;
  storage::ReadBuffer buffer_;  // what the last ReadAll read, for its views
  std::vector<storage::EventView> batch_;  // Pump's, for the next push
  RecordPage runs_{filter_, cursor_, kSubscriptionBatch, kSubscriptionBatchBytes};  // the same, as runs of records
  std::atomic<uint64_t> next_{0};  // version_ or cursor_, as Publish() last saw it
  bool caught_up_ = false;
};

}  // namespace

rpc::Subscription::Client StartSubscription(ServerContext& ctx, rpc::SubscribeFrom::Reader from, EventFilter filter,
                                            rpc::Subscriber::Client subscriber, bool records) {
  auto sub = kj::heap<SubscriptionImpl>(ctx, std::move(filter), kj::mv(subscriber), records);
  switch (from.which()) {
    case rpc::SubscribeFrom::POSITION: sub->StartAtPosition(from.getPosition()); break;
    case rpc::SubscribeFrom::START: sub->StartAtPosition(0); break;
    case rpc::SubscribeFrom::END: sub->StartAtPosition(ctx.store.DurablePosition().value); break;
    case rpc::SubscribeFrom::STREAM: {
      auto s = from.getStream();
      sub->StartAtStream(std::string(s.getName().cStr(), s.getName().size()), s.getFromVersion());
      break;
    }
    default: KJ_FAIL_REQUIRE("unknown subscription start", static_cast<uint>(from.which()));
  }
  return kj::mv(sub);
}

}  // namespace esd::server
