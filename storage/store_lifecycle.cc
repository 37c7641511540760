// The store's side of stream lifecycle (storage/lifecycle.h): the writer turning metadata
// changes into "$$S" events, the rule of what is removed, the filtered stream read, and the
// metadata rebuilt at open.
#include <algorithm>
#include <future>
#include <set>

#include "storage/store_impl.h"
#include "storage/validate.h"

namespace esd::storage {

// ---- what is removed ----

const StreamMetadata* Store::Impl::MetadataLocked(std::string_view stream) const {
  if (metadata_count_.load(std::memory_order_acquire) == 0) return nullptr;
  auto it = metadata_.find(stream);
  return it == metadata_.end() ? nullptr : it->second.get();
}

Removal Store::Impl::RemovalOfLocked(std::string_view stream, const StreamTip& tip, TimestampMicros now) const {
  if (IsMetadataStream(stream)) {
    // Each event of "$$S" holds all of S's metadata: only the last one means anything.
    Removal r;
    r.first_kept = tip.last_version;
    r.now = now;
    return r;
  }
  const StreamMetadata* meta = MetadataLocked(stream);
  if (meta == nullptr) return Removal::None();
  Removal r;
  r.first_kept = FirstKeptVersion(*meta, tip.last_version);
  r.max_age_micros = meta->max_age_micros;
  r.now = now;
  r.hard_deleted = meta->hard_deleted;
  return r;
}

Removal Store::Impl::RemovalOf(std::string_view stream, TimestampMicros now) const {
  std::shared_lock lock(mu_);
  const auto tip = TipLocked(stream);
  if (!tip) return Removal::None();
  return RemovalOfLocked(stream, *tip, now);
}

namespace {

// The first version in [lo, tip.last_version] that `removal` keeps by age (events' times
// never decrease along a stream, so the expired ones are a prefix); last + 1 if none.
// `read(v)` is the first event at or after version v.
template <typename Read>
Result<StreamVersion> FirstUnexpired(StreamVersion lo, StreamVersion last, const Removal& removal, Read&& read) {
  if (!removal.max_age_micros) return lo;
  StreamVersion hi = last + 1;  // answer in [lo, hi]
  while (lo < hi) {
    const StreamVersion mid = lo + (hi - lo) / 2;
    auto e = read(mid);
    if (!e.ok()) return e.status();
    if (!e->has_value()) {
      // Nothing at or after mid is in the log any more: a scavenge deleted it, and it deletes
      // only removed events, and removal is a prefix: nothing of the stream is kept.
      return last + 1;
    }
    const EventView& v = **e;
    if (removal.Removes(v.version, v.timestamp)) {
      lo = std::min(hi, v.version + 1);
    } else {
      hi = mid;  // versions from mid up to v are kept or gone (scavenged): none is served below v
    }
  }
  return lo;
}

// The first event of `stream` at or after version `v` still in the log (none: nullopt).
// The store's lock held.
Result<std::optional<EventView>> EventAtOrAfter(const Store::Impl& impl, std::string_view stream,
                                                const StreamTip& tip, StreamVersion v) {
  auto e = impl.ReadStreamRaw(stream, tip, v, 1, Direction::kForward);
  if (!e.ok()) return e.status();
  if (e->empty()) return std::optional<EventView>();
  return std::optional<EventView>(e->front());
}

}  // namespace

Result<std::vector<EventView>> Store::Impl::ReadStream(std::string_view stream, StreamVersion from, size_t max_count,
                                                       Direction direction) const {
  std::shared_lock lock(mu_);
  auto tip = TipLocked(stream);
  if (!tip) return Status::NotFound("stream '" + std::string(stream) + "' does not exist");
  if (metadata_count_.load(std::memory_order_acquire) == 0) return ReadStreamRaw(stream, *tip, from, max_count, direction);
  const Removal removal = RemovalOfLocked(stream, *tip, NowMicros());
  if (removal.hard_deleted) return Status::StreamDeleted(stream);
  auto first = FirstUnexpired(removal.first_kept, tip->last_version, removal,
                              [&](StreamVersion v) { return EventAtOrAfter(*this, stream, *tip, v); });
  if (!first.ok()) return first.status();
  if (*first > tip->last_version) {
    return Status::NotFound("stream '" + std::string(stream) +
                            "' has no events left (deleted, truncated or expired); its last version was " +
                            std::to_string(tip->last_version.value));
  }
  if (direction == Direction::kForward) return ReadStreamRaw(stream, *tip, std::max(from, *first), max_count, direction);
  if (from < *first) return std::vector<EventView>();
  const StreamVersion top = std::min(from, tip->last_version);
  return ReadStreamRaw(stream, *tip, top, std::min<uint64_t>(max_count, top - *first + 1), direction);
}

// ---- the writer's side ----

std::optional<StreamVersion> Store::Impl::ExpiredThrough(std::string_view stream, const StreamTip& tip,
                                                         const StreamMetadata& meta, TimestampMicros now) {
  Removal age;  // the age rule alone
  age.max_age_micros = meta.max_age_micros;
  age.now = now;
  std::shared_lock lock(mu_);  // the index job may swap a sealed slot's index
  auto first = FirstUnexpired(FirstKeptVersion(meta, tip.last_version), tip.last_version, age,
                              [&](StreamVersion v) { return EventAtOrAfter(*this, stream, tip, v); });
  // A read that fails here (damage) folds nothing by age: the other rules still hold.
  if (!first.ok() || first->value == 0) return std::nullopt;
  return *first - 1;
}

namespace {

bool ExpectedHolds(const ExpectedVersion& expected, const StreamTip& tip, bool gone) {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::kAny: return true;
    case ExpectedVersion::Kind::kNoStream: return gone;
    case ExpectedVersion::Kind::kStreamExists: return !gone;
    case ExpectedVersion::Kind::kExact: return tip.last_version == expected.version();
  }
  return false;
}

}  // namespace

std::optional<AppendResult> Store::Impl::PrepareLifecycle(AppendRequest& r,
                                                          std::shared_ptr<const StreamMetadata>* written) {
  const LifecycleOp& op = *r.lifecycle;
  const std::optional<StreamTip> tip = WriterTip(op.target);
  const StreamMetadata* found = WriterMetadata(op.target);
  const StreamMetadata current = found != nullptr ? *found : StreamMetadata{};
  if (current.hard_deleted) return AppendResult(Status::StreamDeleted(op.target));
  const StreamVersion end = tip ? tip->last_version + 1 : StreamVersion(0);
  const bool gone = !tip || current.truncate_before >= end;

  StreamMetadata next = current;
  std::string_view type = kMetadataEventType;
  switch (op.kind) {
    case LifecycleOp::Kind::kSetMetadata:
      next = op.metadata;
      if (next.truncate_before > end) {
        return AppendResult(Status::InvalidArgument(
            "truncate before " + std::to_string(next.truncate_before.value) + " is past the end of stream '" +
            op.target + "' (" + (tip ? "last version " + std::to_string(tip->last_version.value) : "no events") + ")"));
      }
      break;
    case LifecycleOp::Kind::kDelete:
      if (!tip) return AppendResult(Status::NotFound("stream '" + op.target + "' does not exist"));
      if (!ExpectedHolds(op.expected, *tip, gone)) {
        return AppendResult(Status::WrongExpectedVersion(op.target, op.expected, tip->last_version));
      }
      next.truncate_before = end;
      next.hard_deleted = op.hard;
      type = kStreamDeletedEventType;
      break;
    case LifecycleOp::Kind::kTruncate:
      if (!tip) return AppendResult(Status::NotFound("stream '" + op.target + "' does not exist"));
      if (op.before > end) {
        return AppendResult(Status::InvalidArgument("cannot truncate stream '" + op.target + "' before version " +
                                                    std::to_string(op.before.value) + ": its last version is " +
                                                    std::to_string(tip->last_version.value)));
      }
      next.truncate_before = op.before;
      break;
  }
  std::optional<StreamVersion> expired;
  if (current.max_age_micros && tip) expired = ExpiredThrough(op.target, *tip, current, NowMicros());
  auto folded = NextMetadata(current, std::move(next), tip ? std::optional(tip->last_version) : std::nullopt, expired);
  if (!folded.ok()) return AppendResult(folded.status());
  auto meta = std::make_shared<const StreamMetadata>(std::move(folded).value());

  r.stream = MetadataStreamOf(op.target);
  r.expected = op.kind == LifecycleOp::Kind::kSetMetadata ? op.expected : ExpectedVersion::Any();
  r.owned.clear();
  r.owned.push_back(EventData{EventId::Random(), std::string(type), std::string(kMetadataContentType), {},
                              EncodeStreamMetadata(*meta)});
  const EventData& e = r.owned.back();
  r.events.assign(1, {e.id, e.type, e.content_type, e.metadata, e.data});
  r.bytes = format::kBatchHeaderSize + format::EventRecordSize(r.stream, r.events.back());
  if (r.bytes > segments_.back()->segment->declared_size() - format::kSegmentHeaderSize) {
    return AppendResult(Status::InvalidArgument("stream metadata of " + std::to_string(r.bytes) +
                                                " bytes does not fit in a segment"));
  }
  *written = std::move(meta);
  return std::nullopt;
}

// ---- open ----

Status Store::Impl::LoadMetadata() {
  std::shared_lock lock(mu_);
  // Every "$$S" stream: the newest index file's tips are cumulative; sealed segments after it
  // (without an index yet) and the active one add theirs.
  std::set<std::string, std::less<>> names;
  auto note = [&](std::string_view name) {
    if (IsMetadataStream(name)) names.emplace(name);
  };
  for (size_t k = segments_.size(); k-- > 0;) {
    const SegmentSlot& s = *segments_[k];
    if (s.idx) {
      s.idx->ForEachTip([&](std::string_view name, const StreamTip&) { note(name); });
      break;
    }
    s.mem->ForEachStream([&](std::string_view name, const StreamRun&) { note(name); });
  }
  streams_.ForEach([&](const std::string& name, const StreamTip&) { note(name); });

  for (const std::string& name : names) {
    const auto tip = TipLocked(name);
    if (!tip) continue;
    auto last = ReadStreamRaw(name, *tip, tip->last_version, 1, Direction::kBackward);
    if (!last.ok()) return last.status();
    if (last->empty()) return Status::Corruption("stream '" + name + "': its last event cannot be read");
    auto meta = DecodeStreamMetadata(last->front().data);
    if (!meta.ok()) {
      return Status::Corruption("stream '" + name + "' version " + std::to_string(tip->last_version.value) + ": " +
                                meta.status().message());
    }
    std::string_view target;
    IsMetadataStream(name, &target);
    metadata_.insert_or_assign(std::string(target), std::make_shared<const StreamMetadata>(std::move(meta).value()));
  }
  metadata_count_.store(metadata_.size(), std::memory_order_release);
  return Status::Ok();
}

// ---- the public API ----

namespace {

void Enqueue(Store::Impl& impl, std::unique_ptr<LifecycleOp> op, AppendCallback done) {
  if (Status s = ValidateStreamName(op->target); !s.ok()) {
    done(std::move(s));
    return;
  }
  auto r = std::make_unique<AppendRequest>();
  r->bytes = format::kBatchHeaderSize + format::kEventHeaderSize + 2 * op->target.size() + 128 + op->metadata.custom.size();
  r->lifecycle = std::move(op);
  r->done = std::move(done);
  impl.Enqueue(std::move(r));
}

template <typename Start>
AppendResult Wait(Start&& start) {
  std::promise<AppendResult> promise;
  auto future = promise.get_future();
  start([&promise](AppendResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace

void Store::SetStreamMetadata(std::string stream, ExpectedVersion expected, StreamMetadata metadata,
                              AppendCallback done) {
  if (metadata.hard_deleted) {
    done(Status::InvalidArgument("metadata cannot hard-delete a stream: delete it (hard) instead"));
    return;
  }
  if (metadata.max_count && *metadata.max_count == 0) {
    done(Status::InvalidArgument("max count must be at least 1 (to remove every event, delete the stream)"));
    return;
  }
  if (metadata.custom.size() > impl_->options_.max_event_size) {
    done(Status::InvalidArgument("custom metadata of " + std::to_string(metadata.custom.size()) +
                                 " bytes is over the event size limit of " +
                                 std::to_string(impl_->options_.max_event_size) + " (esd --max-event-size)"));
    return;
  }
  auto op = std::make_unique<LifecycleOp>();
  op->kind = LifecycleOp::Kind::kSetMetadata;
  op->target = std::move(stream);
  op->expected = expected;
  op->metadata = std::move(metadata);
  Enqueue(*impl_, std::move(op), std::move(done));
}

void Store::DeleteStream(std::string stream, ExpectedVersion expected, bool hard, AppendCallback done) {
  auto op = std::make_unique<LifecycleOp>();
  op->kind = LifecycleOp::Kind::kDelete;
  op->target = std::move(stream);
  op->expected = expected;
  op->hard = hard;
  Enqueue(*impl_, std::move(op), std::move(done));
}

void Store::TruncateStream(std::string stream, StreamVersion before, AppendCallback done) {
  auto op = std::make_unique<LifecycleOp>();
  op->kind = LifecycleOp::Kind::kTruncate;
  op->target = std::move(stream);
  op->before = before;
  Enqueue(*impl_, std::move(op), std::move(done));
}

AppendResult Store::SetStreamMetadataSync(std::string stream, ExpectedVersion expected, StreamMetadata metadata) {
  return Wait([&](AppendCallback cb) { SetStreamMetadata(std::move(stream), expected, std::move(metadata), std::move(cb)); });
}

AppendResult Store::DeleteStreamSync(std::string stream, ExpectedVersion expected, bool hard) {
  return Wait([&](AppendCallback cb) { DeleteStream(std::move(stream), expected, hard, std::move(cb)); });
}

AppendResult Store::TruncateStreamSync(std::string stream, StreamVersion before) {
  return Wait([&](AppendCallback cb) { TruncateStream(std::move(stream), before, std::move(cb)); });
}

Result<StreamMetadataRead> Store::GetStreamMetadata(std::string_view stream) const {
  if (Status s = ValidateStreamName(stream); !s.ok()) return s;
  std::shared_lock lock(impl_->mu_);
  StreamMetadataRead out;
  if (const StreamMetadata* meta = impl_->MetadataLocked(stream)) out.metadata = *meta;
  if (auto tip = impl_->TipLocked(MetadataStreamOf(stream))) out.metadata_version = tip->last_version;
  return out;
}

}  // namespace esd::storage
