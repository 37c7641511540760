// The writer thread: group commit. It takes every queued append (up to max_group_bytes),
// decides each in order (expected version, idempotent retry), encodes the accepted ones
// into one buffer, writes it with one pwrite, calls fdatasync once, publishes the new
// durable position to readers, and only then runs the callbacks.
#include <cassert>
#include <future>
#include <optional>
#include <utility>

#include "storage/store_impl.h"

namespace esd::storage {

void Store::Impl::StartThreads() {
  preallocator_ = std::make_unique<Preallocator>(segments_dir_, options_.segment_size, options_.fill_ahead);
  const Segment& active = *segments_.back()->segment;
  preallocator_->Follow(active.path(), active.size(), active_filled_, write_offset_);
  index_jobs_ = std::make_unique<TaskQueue>("esd-index");
  if (!unindexed_at_open_.empty()) {
    index_jobs_->Post([this, k = unindexed_at_open_.back()] { WriteIndexFor(k); });
  }
  last_sync_ = std::chrono::steady_clock::now();
  group_.reserve(options_.max_group_bytes);
  writer_ = std::thread([this] { WriterLoop(); });
  NameThread(writer_, "esd-writer");
}

void Store::Impl::StopThreads() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  index_jobs_.reset();  // finishes an index file in progress
  preallocator_.reset();
}

void Store::Impl::Enqueue(std::unique_ptr<AppendRequest> request) {
  Status refused;
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) {
      refused = Status::Closed("the store is closed");
    } else if (request->bytes > 0 && queued_bytes_ > 0 && queued_bytes_ + request->bytes > options_.max_queued_bytes) {
      refused = Status::Overloaded("the writer has " + std::to_string(queued_bytes_) +
                                   " bytes of appends queued, its limit; nothing was written, retry shortly");
    } else {
      queued_bytes_ += request->bytes;
      queue_.push_back(std::move(request));
    }
  }
  if (!refused.ok()) {
    request->done(std::move(refused));
    return;
  }
  queue_cv_.notify_one();
}

void Store::Impl::WriterLoop() {
  std::vector<std::unique_ptr<AppendRequest>> group;
  while (true) {
    {
      std::unique_lock lock(queue_mu_);
      if (options_.durability.mode == Durability::kInterval && unsynced_ > 0) {
        queue_cv_.wait_until(lock, last_sync_ + options_.durability.interval,
                             [&] { return stopping_ || !queue_.empty(); });
      } else {
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      }
      if (queue_.empty() && stopping_) break;
      uint64_t bytes = 0;
      while (!queue_.empty() && (group.empty() || bytes + queue_.front()->bytes <= options_.max_group_bytes)) {
        bytes += queue_.front()->bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_bytes_ -= bytes;
    }
    if (!group.empty()) ProcessGroup(group);
    group.clear();
    SyncIfDue(false);
    PublishWriteState();
  }
  SyncIfDue(true);
}

void Store::Impl::SyncIfDue(bool force) {
  if (unsynced_ == 0 || !failed_.ok()) return;
  const auto now = std::chrono::steady_clock::now();
  const bool due = options_.durability.mode == Durability::kInterval &&
                   now >= last_sync_ + options_.durability.interval;
  if (!force && !due) return;
  Status s = segments_.back()->segment->file().DataSync();
  ++stat_fsyncs_;
  if (!s.ok()) {
    failed_ = Status::IOError("fdatasync failed, the store no longer accepts writes: " + s.message());
    return;
  }
  unsynced_ = 0;
  sync_mark_ = write_offset_;
  last_sync_ = now;
  synced_.store(durable_.load(std::memory_order_acquire), std::memory_order_release);
}

// Readers (write_state()) and the listener learn of the same changes, here: out of space
// entered or left, writes stopped; and the listener of a slow sync.
void Store::Impl::PublishWriteState() {
  EventListener* listener = options_.listener;
  if (const auto slow = std::exchange(slow_sync_micros_, std::nullopt); slow && listener != nullptr) {
    listener->OnSlowSync(*slow);
  }
  const bool out_of_space = group_outcome_ && group_outcome_->code() == Status::Code::kOutOfSpace;
  const bool space_changed = group_outcome_ && out_of_space != out_of_space_published_;
  const bool failed_changed = failed_.ok() == failed_published_;
  if (!space_changed && !failed_changed) {
    group_outcome_.reset();
    return;
  }
  {
    std::lock_guard lock(write_state_mu_);
    if (space_changed) write_state_.out_of_space = out_of_space ? *group_outcome_ : Status::Ok();
    write_state_.failed = failed_;
  }
  out_of_space_published_ = space_changed ? out_of_space : out_of_space_published_;
  failed_published_ = !failed_.ok();
  if (listener != nullptr) {
    if (space_changed && out_of_space) listener->OnOutOfSpace(*group_outcome_);
    if (space_changed && !out_of_space) listener->OnSpaceAgain();
    if (failed_changed && !failed_.ok()) listener->OnWritesStopped(failed_);
  }
  group_outcome_.reset();
}

std::optional<StreamTip> Store::Impl::WriterTip(std::string_view stream) const {
  // The writer is the only thread that changes streams_, so it may read it unlocked.
  if (auto it = overlay_.find(stream); it != overlay_.end()) return it->second;
  if (const StreamTip* tip = streams_.Find(stream)) return *tip;
  if (segments_.size() < 2) return std::nullopt;
  std::shared_lock lock(mu_);  // the index job may swap a sealed slot's index
  return SealedTipLocked(segments_.size() - 2, stream);
}

const StreamMetadata* Store::Impl::WriterMetadata(std::string_view stream) const {
  if (!metadata_overlay_.empty()) {  // every append asks: a group without metadata hashes nothing
    if (auto it = metadata_overlay_.find(stream); it != metadata_overlay_.end()) return it->second.get();
  }
  if (metadata_count_.load(std::memory_order_relaxed) == 0) return nullptr;
  // The writer is the only thread that changes metadata_, so it may read it unlocked.
  auto it = metadata_.find(stream);
  return it == metadata_.end() ? nullptr : it->second.get();
}

const Store::Impl::BatchRef* Store::Impl::FindBatchByFirstId(const EventId& id) const {
  if (auto it = ids_.find(id); it != ids_.end()) return &it->second;
  if (auto it = old_ids_.find(id); it != old_ids_.end()) return &it->second;
  return nullptr;
}

void Store::Impl::RememberBatch(const EventId& first_id, GlobalPosition position, uint32_t count) {
  if (ids_.size() >= kIdWindow) {
    // The oldest generation goes. Freeing its 2^20 nodes took ~180-350 ms, which every
    // append in flight waited for: it is freed on the index job thread instead, and the new
    // generation gets its buckets at once rather than in rehashes as it grows.
    auto retired = std::make_shared<IdWindow>(std::exchange(old_ids_, std::exchange(ids_, {})));
    ids_.reserve(kIdWindow);
    if (index_jobs_ != nullptr) index_jobs_->Post([retired = std::move(retired)]() mutable { retired.reset(); });
  }
  ids_[first_id] = BatchRef{position, count};
}

namespace {

bool SameEvent(const format::EventFields& e, const EventView& v) {
  return e.id == v.id && e.type == v.type && e.content_type == v.content_type && e.metadata == v.metadata &&
         e.data == v.data;
}

bool ExpectationHeld(const ExpectedVersion& expected, StreamVersion first_version) {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::kAny: return true;
    case ExpectedVersion::Kind::kNoStream: return first_version.value == 0;
    case ExpectedVersion::Kind::kStreamExists: return first_version.value > 0;
    case ExpectedVersion::Kind::kExact: return first_version.value == expected.version().value + 1;
  }
  return false;
}

}  // namespace

// `r` may be a retry of the batch that starts at `at`. Compares it with what was written.
std::optional<AppendResult> Store::Impl::CheckRetry(const AppendRequest& r, GlobalPosition at,
                                                    std::optional<StreamTip>* current) {
  if (at.value >= durable_.load(std::memory_order_acquire)) {
    FlushGroup();  // it is in this group
    // The flush failed: the batch it would repeat never landed, and the group's ids and
    // versions are forgotten. After a full disk, decide again against what is on disk;
    // after an I/O error the store writes nothing more.
    if (at.value >= durable_.load(std::memory_order_acquire)) {
      if (!failed_.ok()) return AppendResult(failed_);
      return Decide(r, current);
    }
  }
  std::vector<EventView> events;
  (void)ReadAll(
      at, r.events.size(),
      [&](const EventView& v) {
        events.push_back(v);
        return true;
      },
      {.lifecycle_filter = false});
  const std::string id = r.events.front().id.ToString();
  if (events.size() != r.events.size()) {
    return AppendResult(Status::IdempotencyConflict("event id " + id + " was already written at position " +
                                                    std::to_string(at.value) + " in an append of another size"));
  }
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].stream != r.stream || !SameEvent(r.events[i], events[i]) ||
        (i > 0 && events[i].version != events[0].version + i)) {
      return AppendResult(Status::IdempotencyConflict(
          "event id " + id + " was already written at position " + std::to_string(at.value) +
          " with other content (stream '" + std::string(events[i].stream) + "', event " + std::to_string(i) + ")"));
    }
  }
  const StreamMetadata* meta = WriterMetadata(r.stream);
  const bool recreated = r.expected.kind() == ExpectedVersion::Kind::kNoStream && meta != nullptr &&
                         events.front().version == meta->truncate_before;
  if (!recreated && !ExpectationHeld(r.expected, events.front().version)) {
    return AppendResult(Status::IdempotencyConflict("event id " + id + " was already written at position " +
                                                    std::to_string(at.value) + " under another expected version"));
  }
  return AppendResult(AppendOk{events.front().version, events.back().version, events.front().position,
                               events.back().position, events.front().timestamp, true});
}

std::optional<AppendResult> Store::Impl::Decide(const AppendRequest& r, std::optional<StreamTip>* current) {
  const StreamMetadata* meta = WriterMetadata(r.stream);
  if (meta != nullptr && meta->hard_deleted) return AppendResult(Status::StreamDeleted(r.stream));
  if (const BatchRef* ref = FindBatchByFirstId(r.events.front().id)) return CheckRetry(r, ref->position, current);

  const std::optional<StreamTip>& tip = *current = WriterTip(r.stream);
  const std::optional<StreamVersion> actual = tip ? std::optional(tip->last_version) : std::nullopt;
  // Soft-deleted (or truncated to its end): it reads as not found, so no-stream recreates it,
  // and its versions go on after the last one (storage/lifecycle.h).
  const bool gone = tip && meta != nullptr && meta->truncate_before > tip->last_version;
  auto wrong = [&] { return AppendResult(Status::WrongExpectedVersion(r.stream, r.expected, actual)); };
  switch (r.expected.kind()) {
    case ExpectedVersion::Kind::kAny: return std::nullopt;
    case ExpectedVersion::Kind::kStreamExists: return tip && !gone ? std::nullopt : std::optional(wrong());
    case ExpectedVersion::Kind::kNoStream:
    case ExpectedVersion::Kind::kExact: {
      const bool no_stream = r.expected.kind() == ExpectedVersion::Kind::kNoStream;
      if (no_stream ? !tip || gone : tip && tip->last_version == r.expected.version()) return std::nullopt;
      if (!tip || (!no_stream && tip->last_version < r.expected.version())) return wrong();
      // The stream has moved past the expected version: this may be a retry of an append
      // older than the id window. Look at what sits at the version it expected to write.
      const StreamVersion next = no_stream ? StreamVersion(0) : r.expected.version() + 1;
      auto at = [&] {
        std::shared_lock lock(mu_);  // the index job may swap a sealed slot's index
        return ReadStreamRaw(r.stream, *tip, next, 1, Direction::kForward);
      }();
      if (at.ok() && !at->empty() && (*at)[0].id == r.events.front().id) {
        return CheckRetry(r, (*at)[0].position, current);
      }
      return wrong();
    }
  }
  return wrong();
}

void Store::Impl::ProcessGroup(std::vector<std::unique_ptr<AppendRequest>>& group) {
  const TimestampMicros now = NowMicros();
  last_timestamp_ = std::max(last_timestamp_, now);
  std::vector<size_t> barriers;  // completions of Store::Sync requests in this group
  for (auto& request : group) {
    AppendRequest& r = *request;
    if (r.sync_barrier) {
      barriers.push_back(completions_.size());
      completions_.emplace_back(std::move(request), AppendOk{});
      continue;
    }
    if (r.seal) {
      // Scavenge wants the active segment sealed: flush what this group holds so far (it
      // belongs in the segment being sealed), then roll if there is anything to seal.
      FlushGroup();
      Status s = failed_;
      if (s.ok() && write_offset_ > format::kSegmentHeaderSize) s = Roll();
      if (s.ok()) {
        completions_.emplace_back(std::move(request), AppendOk{});
      } else {
        completions_.emplace_back(std::move(request), s);
      }
      continue;
    }
    if (!failed_.ok()) {
      completions_.emplace_back(std::move(request), failed_);
      continue;
    }
    // A metadata change is decided against what is published, with the group so far
    // written: a flush that failed later could not leave it decided on a batch that is gone.
    std::shared_ptr<const StreamMetadata> lifecycle_metadata;
    if (r.lifecycle) {
      FlushGroup();
      if (!failed_.ok()) {
        completions_.emplace_back(std::move(request), failed_);
        continue;
      }
      if (auto refused = PrepareLifecycle(r, &lifecycle_metadata)) {
        completions_.emplace_back(std::move(request), std::move(*refused));
        continue;
      }
    }
    // Room first, decision second: a flush that fails here drops every batch of the group
    // so far, so `r` must not be decided against any of them.
    const Segment* seg = segments_.back()->segment.get();
    if (write_offset_ + group_.size() + r.bytes > seg->size()) {
      FlushGroup();
      Status s = failed_.ok() ? Roll() : failed_;
      if (s.code() == Status::Code::kOutOfSpace) group_outcome_ = s;
      if (!s.ok()) {
        completions_.emplace_back(std::move(request), s);
        continue;
      }
    }
    // Normally the filler is fill_ahead ahead; if the writer caught up, it waits for the
    // zeros rather than write into a hole, so that a full disk fails the append before any
    // of it is written (docs/storage.md, "Preallocation").
    if (const uint64_t end = write_offset_ + group_.size() + r.bytes; end > preallocator_->filled()) {
      ++stat_fill_waits_;
      if (Status s = preallocator_->WaitFilled(end); !s.ok()) {
        completions_.emplace_back(std::move(request), s.code() == Status::Code::kOutOfSpace
                                                          ? Status::OutOfSpace("no space to extend the active segment (" +
                                                                               s.message() + "); free disk space and retry")
                                                          : s);
        continue;
      }
    }
    std::optional<StreamTip> tip;
    if (auto decided = Decide(r, &tip)) {
      completions_.emplace_back(std::move(request), std::move(*decided));
      continue;
    }
    const StreamVersion first_version(tip ? tip->last_version.value + 1 : 0);
    Pending p{&r, completions_.size(), group_.size(), first_version, next_position_,
              std::vector<uint32_t>(r.events.size()), lifecycle_metadata};
    if (lifecycle_metadata) metadata_overlay_[r.lifecycle->target] = lifecycle_metadata;
    group_.resize(group_.size() + r.bytes);
    format::EncodeBatch(std::span(group_.data() + p.offset, r.bytes), r.stream, r.events,
                        {segments_.back()->segment->id(), next_position_, first_version, last_timestamp_,
                         FileOffset(sync_mark_)},
                        p.event_offsets);
    const uint32_t n = static_cast<uint32_t>(r.events.size());
    overlay_[r.stream] = StreamTip{first_version + (n - 1), next_position_ + (n - 1), last_timestamp_};
    RememberBatch(r.events.front().id, next_position_, n);
    group_ids_.push_back(r.events.front().id);
    next_position_ = next_position_ + n;
    pending_.push_back(std::move(p));
    completions_.emplace_back(std::move(request), AppendOk{});  // filled in at publish
  }
  FlushGroup();
  if (!barriers.empty()) {
    SyncIfDue(true);
    const bool synced = failed_.ok();
    for (size_t k : barriers) {
      if (!synced) completions_[k].second = failed_;
    }
  }
  PublishWriteState();  // before the callbacks: an appender told "out of space" finds it here
  Complete();
}

void Store::Impl::FlushGroup() {
  if (group_.empty()) return;
  SegmentSlot& active = *segments_.back();
  const File& file = active.segment->file();
  Status s = file.WriteAt(write_offset_, group_);
  if (s.ok() && options_.durability.mode == Durability::kAlways) {
    const auto t0 = std::chrono::steady_clock::now();
    s = file.DataSync();
    // After a failed fdatasync the kernel may have dropped the dirty pages while reporting
    // them written: whatever its errno (ENOSPC too), retrying could not be trusted.
    if (!s.ok()) s = Status::IOError("fdatasync failed: " + s.message());
    const auto micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
    fsync_micros_.Record(micros);
    if (micros >= options_.slow_sync_micros) slow_sync_micros_ = micros;
    ++stat_fsyncs_;
  }
  if (!s.ok()) {
    // Nothing of this group is acknowledged. Zero what may have reached the file so the log
    // still ends at write_offset_, and forget the group's ids and versions. If even that
    // fails, what follows the log is unknown: stop writing (recovery sorts it out).
    if (Status z = file.WriteZeros(write_offset_, group_.size()); !z.ok() && failed_.ok()) {
      failed_ = Status::IOError("the store no longer accepts writes after an I/O error (restart to recover): " +
                                z.message());
    }
    for (const EventId& id : group_ids_) {
      ids_.erase(id);
      old_ids_.erase(id);  // in case the window turned over during the group
    }
    next_position_ = GlobalPosition(durable_.load());
    if (s.code() != Status::Code::kOutOfSpace && failed_.ok()) {
      failed_ = Status::IOError("the store no longer accepts writes after an I/O error (restart to recover): " +
                                s.message());
    }
    if (s.code() == Status::Code::kOutOfSpace) group_outcome_ = s;
    if (!failed_.ok()) s = failed_;
    for (const Pending& p : pending_) completions_[p.completion].second = s;
  } else {
    const uint64_t base = write_offset_;
    {
      std::unique_lock lock(mu_);
      for (Pending& p : pending_) {
        for (uint32_t& o : p.event_offsets) o += static_cast<uint32_t>(base + p.offset);  // batch -> segment
        const uint32_t n = static_cast<uint32_t>(p.event_offsets.size());
        active.mem->AddBatch(p.request->stream, p.first_version, p.first_position, last_timestamp_,
                             base + p.offset, p.request->bytes, p.event_offsets);
        auto [it, created] = streams_.InsertOrAssign(
            p.request->stream, StreamTip{p.first_version + (n - 1), p.first_position + (n - 1), last_timestamp_});
        if (created) directory_.Add(it->first);  // O(1): never waits for a listing
        if (p.metadata) {
          metadata_.insert_or_assign(p.request->lifecycle->target, p.metadata);
          metadata_count_.store(metadata_.size(), std::memory_order_release);
        }
      }
      active.end_offset = base + group_.size();
      active.end_position = next_position_;
      // The writer encoded these bytes and their checksums itself.
      active.segment->MarkVerified(active.end_offset, next_position_, last_timestamp_);
    }
    durable_.store(next_position_.value, std::memory_order_release);
    for (const Pending& p : pending_) {
      const uint64_t n = p.request->events.size();
      completions_[p.completion].second = AppendOk{p.first_version, p.first_version + (n - 1), p.first_position,
                                                   p.first_position + (n - 1), last_timestamp_, false};
      ++stat_appends_;
      stat_events_ += n;
    }
    stat_bytes_ += group_.size();
    ++stat_groups_;
    group_outcome_ = Status::Ok();
    group_appends_.Record(pending_.size());
    write_offset_ += group_.size();
    preallocator_->WriterAt(write_offset_);
    if (options_.durability.mode == Durability::kAlways) {
      sync_mark_ = write_offset_;
      synced_.store(next_position_.value, std::memory_order_release);
    } else {
      unsynced_ += group_.size();
    }
  }
  group_.clear();
  pending_.clear();
  overlay_.clear();
  metadata_overlay_.clear();
  group_ids_.clear();
}

// Observers first, then the callbacks. (The daemon hears of both on one wake-up of its event
// loop, answers the appends and tells its subscribers on the next turn:
// server/append_completions.h.)
// Callbacks run here, on the writer thread, so an appender that submits its next append
// from the callback gets into the very next group: measured with 64 appends in flight,
// every group carried all 64 (a completion thread halved that, as the next group started
// before the resubmissions arrived). Callbacks must therefore be quick.
void Store::Impl::Complete() {
  const GlobalPosition durable(durable_.load(std::memory_order_acquire));
  {
    std::lock_guard lock(observers_mu_);
    for (auto& [id, observer] : observers_) observer(durable);
  }
  for (auto& [request, result] : completions_) request->done(std::move(result));
  completions_.clear();
}

Status Store::Impl::Roll() {
  SegmentSlot& old = *segments_.back();
  // A sealed segment is durable whatever the durability mode.
  if (unsynced_ > 0) {
    Status s = old.segment->file().DataSync();
    ++stat_fsyncs_;
    if (!s.ok()) {
      failed_ = Status::IOError("fdatasync failed, the store no longer accepts writes: " + s.message());
      return failed_;
    }
    unsynced_ = 0;
    synced_.store(durable_.load(std::memory_order_acquire), std::memory_order_release);
  }
  auto spare = preallocator_->Take();
  if (!spare.ok()) {
    if (spare.status().code() == Status::Code::kOutOfSpace) {
      return Status::OutOfSpace("no space for a new segment (" + spare.status().message() +
                                "); free disk space and retry");
    }
    return spare.status();
  }
  const SegmentId id = old.segment->id() + 1;
  const uint64_t spare_filled = spare->zero_filled;  // a recycled spare is zero-filled in full
  auto seg = Segment::Activate(std::move(spare->file), spare->path, segments_dir_, id, next_position_,
                               options_.segment_size);
  if (!seg.ok()) {
    // Activate leaves no new segment behind when it fails, unless it could not undo its
    // rename: then a segment that starts at next_position_ is on disk, and writing on in the
    // old one would make the two disagree. Stop here; the log as it is opens cleanly.
    std::error_code ec;
    if (std::filesystem::exists(SegmentPath(segments_dir_, next_position_), ec)) {
      failed_ = Status::IOError("the store no longer accepts writes (restart to recover): " + seg.status().message());
      return failed_;
    }
    return seg.status();
  }
  auto slot = std::make_unique<SegmentSlot>();
  slot->segment = std::move(seg).value();
  slot->mem = std::make_shared<MemIndex>();
  slot->end_offset = format::kSegmentHeaderSize;
  slot->end_position = next_position_;
  size_t sealed_number;
  {
    std::unique_lock lock(mu_);
    old.sealed = true;
    segments_.push_back(std::move(slot));
    sealed_number = segments_.size() - 2;
  }
  write_offset_ = format::kSegmentHeaderSize;
  sync_mark_ = write_offset_;
  {
    const Segment& active = *segments_.back()->segment;
    preallocator_->Follow(active.path(), active.size(), std::min(spare_filled, active.size()), write_offset_);
  }
  ++stat_sealed_;
  index_jobs_->Post([this, sealed_number] { WriteIndexFor(sealed_number); });
  return Status::Ok();
}

// On the index job thread. Slots are never removed while the store is open.
void Store::Impl::WriteIndexFor(size_t slot_number) {
  // Tips are carried from the previous index, so an index whose write failed earlier (a
  // full disk) is written first: one failure must not leave every later segment without.
  size_t first_missing = slot_number;
  {
    std::shared_lock lock(mu_);
    while (first_missing > 0 && segments_[first_missing - 1]->idx == nullptr) --first_missing;
  }
  for (size_t k = first_missing; k <= slot_number; ++k) {
    if (!WriteOneIndex(k)) return;  // reads keep using the in-memory index; open rebuilds
  }
}

bool Store::Impl::WriteOneIndex(size_t slot_number) {
  SegmentSlot* slot;
  const IndexFile* previous = nullptr;
  {
    std::shared_lock lock(mu_);
    slot = segments_[slot_number].get();
    if (slot->idx) return true;
    if (slot_number > 0) previous = segments_[slot_number - 1]->idx.get();
  }
  const Segment& seg = *slot->segment;
  const auto path = IndexPath(segments_dir_, seg.first_position());
  Status s = IndexFile::Write(path, seg.id(), seg.first_position(), slot->end_position, slot->end_offset,
                              *slot->mem, previous);
  if (!s.ok()) return false;
  auto idx = IndexFile::Load(path, seg.id(), seg.first_position(), seg.size());
  if (!idx.ok()) return false;
  ++stat_index_files_;
  std::shared_ptr<MemIndex> retired;
  {
    std::unique_lock lock(mu_);
    slot->idx = std::move(idx).value();
    retired = std::move(slot->mem);
  }
  // Freed with mu_ released: a segment's index of every stream in it is O(streams) to free,
  // and every read waits while mu_ is held exclusively.
  retired.reset();
  return true;
}

}  // namespace esd::storage
