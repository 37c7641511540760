// Store: opening, the public API, and the read paths.
#include "storage/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstring>
#include <future>

#include <fcntl.h>
#include <unistd.h>

#include "storage/scavenge.h"
#include "storage/store_impl.h"
#include "storage/validate.h"

namespace esd::storage {

Result<DurabilityMode> DurabilityMode::Parse(std::string_view text) {
  if (text == "always") return DurabilityMode{Durability::kAlways, {}};
  if (text == "never") return DurabilityMode{Durability::kNever, {}};
  constexpr std::string_view kInterval = "interval=";
  if (text.substr(0, kInterval.size()) == kInterval) {
    auto digits = text.substr(kInterval.size());
    uint64_t ms = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
    if (ec == std::errc() && p == digits.data() + digits.size() && ms > 0 && ms <= 60'000) {
      return DurabilityMode{Durability::kInterval, std::chrono::milliseconds(ms)};
    }
  }
  return Status::InvalidArgument("durability must be 'always', 'never' or 'interval=MS' (1..60000), got '" +
                                 std::string(text) + "'");
}

std::string DurabilityMode::ToString() const {
  switch (mode) {
    case Durability::kAlways: return "always";
    case Durability::kNever: return "never";
    case Durability::kInterval: return "interval=" + std::to_string(interval.count());
  }
  return "?";
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  if (!impl_) return;
  {
    // A scavenge in progress stops after its segment: it uses the writer and the index job.
    std::lock_guard lock(impl_->scavenger_mu_);
    impl_->scavenger_.reset();
  }
  impl_->StopThreads();
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& dir, const Options& options) {
  if (options.segment_size < format::kMinSegmentSize || options.segment_size > format::kMaxSegmentSize ||
      options.segment_size % 4096 != 0) {
    return Status::InvalidArgument("segment size must be a multiple of 4096 between " +
                                   std::to_string(format::kMinSegmentSize) + " and " +
                                   std::to_string(format::kMaxSegmentSize) + " bytes");
  }
  if (options.max_event_size < format::kEventHeaderSize + 2 || options.max_event_size > kMaxEventSizeLimit) {
    return Status::InvalidArgument("max event size must be at most " + std::to_string(kMaxEventSizeLimit) + " bytes");
  }
  if (options.max_event_size > options.segment_size / 2) {
    return Status::InvalidArgument("max event size must be at most half the segment size");
  }
  if (options.max_events_per_append == 0) return Status::InvalidArgument("max events per append must be > 0");
  std::error_code ec;
  if (std::filesystem::exists(dir / kBackupInProgressFile, ec)) {
    return Status::InvalidArgument(dir.string() + " holds an unfinished backup (" + kBackupInProgressFile +
                                   "): it may lack the end of the log. Take the backup again");
  }
  // Each directory made durable as it is made (and its name in its parent): a power loss
  // must not lose a directory that files were already synced into.
  for (const auto& d : {dir, dir / "segments", dir / "snapshots"}) {
    if (Status s = CreateDirectoriesDurably(d); !s.ok()) return s;
  }
  auto lock = DirectoryLock::Acquire(dir);
  if (!lock.ok()) return lock.status();
  auto impl = std::make_unique<Impl>(dir, options, std::move(lock).value());
  Status s = impl->Recover();
  if (s.ok()) s = impl->LoadMetadata();
  if (!s.ok()) return s;
  impl->StartThreads();
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

static void AppendChecked(Store::Impl& impl, std::unique_ptr<AppendRequest> r, AppendCallback done, bool system);

static std::unique_ptr<AppendRequest> OwningRequest(std::vector<EventData> events) {
  auto r = std::make_unique<AppendRequest>();
  r->owned = std::move(events);  // the strings stay where they are: the views below hold
  r->events.reserve(r->owned.size());
  for (const EventData& e : r->owned) r->events.push_back({e.id, e.type, e.content_type, e.metadata, e.data});
  return r;
}

void Store::Append(std::string stream, ExpectedVersion expected, std::vector<EventData> events,
                   AppendCallback done) {
  auto r = OwningRequest(std::move(events));
  r->stream = std::move(stream);
  r->expected = expected;
  AppendChecked(*impl_, std::move(r), std::move(done), false);
}

void Store::Append(std::string stream, ExpectedVersion expected, PackedEvents events, AppendCallback done) {
  auto r = std::make_unique<AppendRequest>();
  r->stream = std::move(stream);
  r->expected = expected;
  r->packed = std::move(events.bytes);
  r->events = std::move(events.events);
  AppendChecked(*impl_, std::move(r), std::move(done), false);
}

void Store::AppendSystem(std::string stream, ExpectedVersion expected, std::vector<EventData> events,
                         AppendCallback done) {
  auto r = OwningRequest(std::move(events));
  r->stream = std::move(stream);
  r->expected = expected;
  AppendChecked(*impl_, std::move(r), std::move(done), true);
}

static void AppendChecked(Store::Impl& impl, std::unique_ptr<AppendRequest> r, AppendCallback done, bool system) {
  const uint64_t max_batch = std::min<uint64_t>(impl.options_.segment_size - format::kSegmentHeaderSize,
                                                std::numeric_limits<uint32_t>::max() & ~uint64_t{7});
  Status s = ValidateAppend(r->stream, r->events, impl.options_, max_batch, system);
  if (!s.ok()) {
    done(std::move(s));
    return;
  }
  r->bytes = format::kBatchHeaderSize;
  for (const format::EventFields& e : r->events) r->bytes += format::EventRecordSize(r->stream, e);
  r->done = std::move(done);
  impl.Enqueue(std::move(r));
}

AppendResult Store::AppendSync(std::string stream, ExpectedVersion expected, std::vector<EventData> events) {
  std::promise<AppendResult> promise;
  auto future = promise.get_future();
  Append(std::move(stream), expected, std::move(events), [&promise](AppendResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

GlobalPosition Store::DurablePosition() const {
  return GlobalPosition(impl_->durable_.load(std::memory_order_acquire));
}

GlobalPosition Store::SyncedPosition() const {
  return GlobalPosition(impl_->synced_.load(std::memory_order_acquire));
}

Status Store::Sync() {
  if (impl_->synced_.load(std::memory_order_acquire) >= impl_->durable_.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  std::promise<Status> promise;
  auto future = promise.get_future();
  auto r = std::make_unique<AppendRequest>();
  r->sync_barrier = true;
  r->done = [&promise](AppendResult result) { promise.set_value(result.status()); };
  impl_->Enqueue(std::move(r));
  return future.get();
}

uint64_t Store::AddDurableObserver(std::function<void(GlobalPosition)> observer) {
  std::lock_guard lock(impl_->observers_mu_);
  const uint64_t id = impl_->next_observer_++;
  impl_->observers_.emplace(id, std::move(observer));
  return id;
}

void Store::RemoveDurableObserver(uint64_t handle) {
  std::lock_guard lock(impl_->observers_mu_);
  impl_->observers_.erase(handle);
}

Result<GlobalPosition> Store::Backup(const std::filesystem::path& dest,
                                     const std::function<void(uint64_t, uint64_t)>& progress) const {
  std::error_code ec;
  if (std::filesystem::exists(dest / "segments", ec) && !std::filesystem::is_empty(dest / "segments", ec)) {
    return Status::InvalidArgument(dest.string() + " already holds a store: back up into a new directory");
  }
  struct Piece {
    std::filesystem::path seg, idx;  // idx empty: none to copy (rebuilt at open)
    uint64_t bytes;                  // of the segment to copy
    const Segment* segment;
    uint64_t log_end;                // its published end: what must verify before the copy
  };
  std::vector<Piece> pieces;
  GlobalPosition upto;
  // Files are copied by name: no scavenge may replace one meanwhile.
  std::lock_guard files_lock(impl_->files_mu_);
  {
    // What is published now is the backup: sealed segments never change, and bytes below
    // the active segment's published end do not either.
    std::shared_lock lock(impl_->mu_);
    upto = GlobalPosition(impl_->durable_.load(std::memory_order_acquire));
    for (const auto& slot : impl_->segments_) {
      const auto& seg = *slot->segment;
      Piece p{seg.path(), {}, slot->sealed ? seg.size() : slot->end_offset, &seg, slot->end_offset};
      if (slot->idx) p.idx = IndexPath(impl_->segments_dir_, seg.first_position());
      pieces.push_back(std::move(p));
    }
  }
  // A backup copies only what verifies: damage is reported, never copied as good data.
  for (const auto& p : pieces) {
    if (Status s = p.segment->VerifyAll(p.log_end, &impl_->stat_corruption_); !s.ok()) return s;
  }
  for (const auto& d : {dest, dest / "segments", dest / "snapshots"}) {
    if (Status s = CreateDirectoriesDurably(d); !s.ok()) return s;
  }
  const bool own_marker = !std::filesystem::exists(dest / kBackupInProgressFile, ec);
  if (own_marker) {
    if (Status s = MarkBackupInProgress(dest); !s.ok()) return s;
  }
  uint64_t total = 0, done = 0;
  for (const auto& p : pieces) total += p.bytes + (p.idx.empty() ? 0 : std::filesystem::file_size(p.idx, ec));
  // Each file whole and synced; progress counts over all of them.
  auto copy = [&](const std::filesystem::path& from, uint64_t bytes) -> Status {
    const uint64_t before = done;
    Status s = CopyFileDurably(
        from, dest / "segments" / from.filename(),
        [&](uint64_t d, uint64_t) {
          done = before + d;
          if (progress) progress(done, total);
        },
        bytes);
    done = before + bytes;
    return s;
  };
  for (const auto& p : pieces) {
    Status s = copy(p.seg, p.bytes);
    if (s.ok() && !p.idx.empty()) s = copy(p.idx, std::filesystem::file_size(p.idx, ec));
    if (!s.ok()) return s;
  }
  Status s = SyncDirectory(dest / "segments");
  if (s.ok() && own_marker) s = SyncDirectory(dest);
  if (s.ok() && own_marker) s = FinishBackup(dest);
  if (!s.ok()) return s;
  if (progress) progress(total, total);
  return upto;
}

const RecoveryReport& Store::recovery() const { return impl_->recovery_; }
const Options& Store::options() const { return impl_->options_; }
const std::filesystem::path& Store::directory() const { return impl_->dir_; }

StoreStats Store::stats() const {
  const Impl& i = *impl_;
  return {i.fsync_micros_.Read(),        i.group_appends_.Read(),  i.stat_appends_.load(),
          i.stat_events_.load(),         i.stat_bytes_.load(),     i.stat_groups_.load(),
          i.stat_fsyncs_.load(),         i.stat_sealed_.load(),    i.stat_index_files_.load(),
          i.stat_corruption_.load(),     i.LogBytes(),             StoreAllocatedBytes(i.dir_),
          i.stat_fill_waits_.load()};
}

WriteState Store::write_state() const {
  std::lock_guard lock(impl_->write_state_mu_);
  return impl_->write_state_;
}

namespace {

StreamInfo InfoOf(const StreamTip& tip) {
  StreamInfo info;
  info.last_version = tip.last_version;
  info.event_count = tip.last_version.value + 1;
  info.last_position = tip.last_position;
  info.last_write = tip.last_timestamp;
  return info;
}

// Tip lookups a page makes per hold of the store's lock, so that the writer, which needs it
// exclusively to publish, waits for a few of them at most, never for a whole page.
constexpr size_t kTipsPerLock = 64;

}  // namespace

std::optional<StreamInfo> Store::GetStreamInfo(std::string_view stream) const {
  std::shared_lock lock(impl_->mu_);
  auto tip = impl_->TipLocked(stream);
  if (!tip) return std::nullopt;
  StreamInfo info = InfoOf(*tip);
  if (const StreamMetadata* meta = impl_->MetadataLocked(stream)) {
    info.first_kept = FirstKeptVersion(*meta, tip->last_version);
    info.hard_deleted = meta->hard_deleted;
    info.has_metadata = true;
  }
  return info;
}

StreamListPage Store::ListStreams(std::string_view prefix, std::string_view after, size_t limit) const {
  const StreamDirectory::Listing names = impl_->directory_.Page(prefix, after, limit);
  std::vector<std::optional<StreamTip>> tips(names.names.size());
  for (size_t i = 0; i < tips.size();) {
    std::shared_lock lock(impl_->mu_);
    for (const size_t end = std::min(tips.size(), i + kTipsPerLock); i < end; ++i) {
      tips[i] = impl_->ListedTipLocked(names.names[i]);
    }
  }
  StreamListPage page;
  page.more = names.more;
  page.streams.reserve(tips.size());
  for (size_t i = 0; i < tips.size(); ++i) {
    // Every name in the directory was published with its tip, so each has one.
    assert(tips[i].has_value());
    if (tips[i]) page.streams.emplace_back(std::string(names.names[i].name), InfoOf(*tips[i]));
  }
  return page;
}

size_t Store::StreamCount() const { return impl_->directory_.Count(); }

std::vector<std::string_view> Store::Impl::NewestIndexNames() const {
  const IndexFile* newest = nullptr;
  size_t slot = segments_.size();
  {
    // Index files are immutable and kept while the store is open: only finding the newest
    // needs the lock (the index job publishes them under it).
    std::shared_lock lock(mu_);
    while (newest == nullptr && slot > 0) newest = segments_[--slot]->idx.get();
  }
  std::vector<std::string_view> names;
  if (newest == nullptr) return names;
  names.reserve(newest->tip_count());
  newest->ForEachTip([&](std::string_view name, const StreamTip&) { names.push_back(name); });
  // A stream not in streams_ has had no event since open, nor in the segment active then:
  // its tip is the one as of the last segment sealed before open, and the same in any index
  // file from that segment on. An older newest file (later ones could not be written at
  // open) may hold an older tip: then the tip is searched for, as any other.
  listed_base_current_.store(slot + 1 >= sealed_at_open_, std::memory_order_relaxed);
  listed_base_.store(newest, std::memory_order_release);
  return names;
}

std::optional<StreamTip> Store::Impl::ListedTipLocked(const StreamDirectory::Entry& entry) const {
  if (const StreamTip* tip = streams_.Find(entry.name)) return *tip;
  const IndexFile* base = listed_base_.load(std::memory_order_acquire);
  if (base != nullptr && entry.base_index != StreamDirectory::kNotInBase &&
      listed_base_current_.load(std::memory_order_relaxed)) {
    return base->TipAt(entry.base_index);
  }
  if (segments_.size() < 2) return std::nullopt;
  return SealedTipLocked(segments_.size() - 2, entry.name);
}

Status MarkBackupInProgress(const std::filesystem::path& dest) {
  auto f = File::Open(dest / kBackupInProgressFile, O_WRONLY | O_CREAT | O_TRUNC);
  if (!f.ok()) return f.status();
  return SyncDirectory(dest);
}

Status FinishBackup(const std::filesystem::path& dest) {
  if (::unlink((dest / kBackupInProgressFile).c_str()) != 0) {
    return Status::IOError("remove " + (dest / kBackupInProgressFile).string(), errno);
  }
  return SyncDirectory(dest);
}

uint64_t StoreFileBytes(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir / "segments", ec)) {
    const auto ext = f.path().extension();
    if (ext == ".seg" || ext == ".idx") bytes += f.file_size(ec);
  }
  return bytes;
}

uint64_t StoreAllocatedBytes(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir / "segments", ec)) {
    const std::string name = f.path().filename().string();
    if (f.path().extension() != ".seg" && name.rfind("spare-", 0) != 0) continue;
    struct stat st;
    if (::stat(f.path().c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return bytes;
}

uint64_t Store::Impl::LogBytes() const {
  std::shared_lock lock(mu_);
  uint64_t bytes = 0;
  for (const auto& slot : segments_) bytes += slot->end_offset;
  return bytes;
}

Result<std::vector<EventView>> Store::ReadStream(std::string_view stream, StreamVersion from, size_t max_count,
                                                 Direction direction) const {
  return impl_->ReadStream(stream, from, max_count, direction);
}

Result<size_t> Store::ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                              GlobalPosition* skipped_to) const {
  return impl_->ReadAll(from, max_count, visit, {.skipped_to = skipped_to});
}

Result<size_t> Store::ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                              ReadBuffer& copy, GlobalPosition* skipped_to) const {
  return impl_->ReadAll(from, max_count, visit, {.copy = &copy, .skipped_to = skipped_to});
}

Result<size_t> Store::ReadAllRecords(GlobalPosition from, size_t max_count,
                                     const std::function<uint32_t(const RecordRun&)>& take, ReadBuffer& copy,
                                     GlobalPosition* skipped_to) const {
  return impl_->ReadAll(from, max_count, nullptr, {.copy = &copy, .skipped_to = skipped_to, .take_run = &take});
}

Result<size_t> Store::ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                              const std::function<bool(std::string_view stream)>& wants, Passed* passed,
                              ReadBuffer* copy) const {
  return impl_->ReadAll(from, max_count, visit, {.copy = copy, .wants = &wants, .passed = passed});
}

Store::RecordRun Store::RecordRun::Front(uint64_t max_count, uint64_t max_bytes) const {
  if (count <= max_count && records.size() <= max_bytes) return *this;
  RecordRun front{records.first(0), first, 0, stream};
  size_t bytes = 0;
  while (front.count < std::min<uint64_t>(count, max_count)) {
    format::EventHeader h;
    std::memcpy(&h, records.data() + bytes, sizeof(h));  // the run was checked: each header fits
    if (bytes + h.record_size > max_bytes) break;
    bytes += h.record_size;
    ++front.count;
  }
  front.records = records.first(bytes);
  return front;
}

uint8_t* ReadBuffer::Take(size_t bytes) {
  taken_ += bytes;
  if (used_ == chunks_.size()) chunks_.emplace_back();
  Chunk& c = chunks_[used_++];
  if (c.size < bytes) {
    c.size = std::max(bytes, kChunkBytes);
    c.data.reset(new uint8_t[c.size]);  // not zeroed: every byte handed out is read into first
  }
  return c.data.get();
}

size_t ReadBuffer::held_bytes() const {
  size_t n = 0;
  for (const Chunk& c : chunks_) n += c.size;
  return n;
}

Result<std::vector<EventView>> Store::ReadAll(GlobalPosition from, size_t max_count) const {
  std::vector<EventView> out;
  auto n = impl_->ReadAll(from, max_count, [&](const EventView& e) {
    out.push_back(e);
    return true;
  });
  if (!n.ok()) return n.status();
  return out;
}

// ---- reads ----

std::optional<StreamTip> Store::Impl::SealedTipLocked(size_t slot, std::string_view stream) const {
  // A sealed slot without its index file yet answers from its MemIndex, else from the
  // slot before: tips are cumulative.
  for (size_t k = slot + 1; k-- > 0;) {
    const SegmentSlot& s = *segments_[k];
    if (s.idx) return s.idx->Tip(stream);
    if (auto run = s.mem->Find(stream)) return StreamTip{run->last_version(), run->last_position, run->last_timestamp};
  }
  return std::nullopt;
}

std::optional<StreamTip> Store::Impl::TipLocked(std::string_view stream) const {
  if (const StreamTip* tip = streams_.Find(stream)) return *tip;
  if (segments_.size() < 2) return std::nullopt;
  return SealedTipLocked(segments_.size() - 2, stream);
}

std::optional<StreamRun> Store::Impl::RunLocked(size_t slot, std::string_view stream) const {
  const SegmentSlot& s = *segments_[slot];
  return s.idx ? s.idx->Find(stream) : s.mem->Find(stream);
}

std::optional<size_t> Store::Impl::SlotOfVersionLocked(std::string_view stream, StreamVersion version,
                                                       size_t from_slot) const {
  // The first sealed slot whose cumulative tip reaches `version` holds it (tips only grow
  // along the log); if none does, it is in the active segment.
  const size_t sealed = segments_.size() - 1;
  size_t lo = from_slot, hi = sealed;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    auto tip = SealedTipLocked(mid, stream);
    if (tip && tip->last_version >= version) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  auto run = RunLocked(lo, stream);
  if (!run || version < run->first_version || version > run->last_version()) return std::nullopt;
  return lo;
}

bool Store::Impl::RemovedThroughLocked(std::string_view stream, const StreamTip& tip, StreamVersion version) const {
  const Removal r = RemovalOfLocked(stream, tip, NowMicros());
  // max_age removes a prefix too, but by commit time, which a deleted event no longer has:
  // a missing version below one still in the log that max_age could have removed is taken
  // as removed.
  return r.hard_deleted || version < r.first_kept || r.max_age_micros.has_value();
}

std::optional<StreamVersion> Store::Impl::NextVersionInLogLocked(std::string_view stream, const StreamTip& tip,
                                                                 StreamVersion v, Direction direction) const {
  // The nearest run of the stream, past `v` going forward, before it going back.
  std::optional<StreamVersion> next;
  if (direction == Direction::kForward) {
    for (size_t k = 0; k < segments_.size() && !next; ++k) {
      if (auto run = RunLocked(k, stream); run && run->last_version() >= v) next = std::max(v, run->first_version);
    }
    if (!next || *next == v || !RemovedThroughLocked(stream, tip, *next - 1)) return std::nullopt;
  } else {
    for (size_t k = segments_.size(); k-- > 0 && !next;) {
      if (auto run = RunLocked(k, stream); run && run->first_version <= v) next = std::min(v, run->last_version());
    }
    if (!next || *next == v || !RemovedThroughLocked(stream, tip, v)) return std::nullopt;
  }
  return next;
}

Result<std::vector<EventView>> Store::Impl::ReadStreamRaw(std::string_view stream, const StreamTip& tip_value,
                                                          StreamVersion from, size_t max_count,
                                                          Direction direction) const {
  std::vector<EventView> out;
  const StreamTip* tip = &tip_value;
  const bool forward = direction == Direction::kForward;
  if (forward && from > tip->last_version) return out;
  StreamVersion v = forward ? from : std::min(from, tip->last_version);
  out.reserve(std::min<uint64_t>(max_count, tip->last_version.value + 1));
  size_t slot = 0;
  while (out.size() < max_count) {
    auto found = SlotOfVersionLocked(stream, v, forward ? slot : 0);
    if (!found) {
      // A scavenge deleted the versions that were removed: go on at the next one still in
      // the log, if every version skipped is one that RemovalOf says is removed.
      if (auto next = NextVersionInLogLocked(stream, *tip, v, direction)) {
        v = *next;
        found = SlotOfVersionLocked(stream, v, forward ? slot : 0);
      } else if (forward && RemovedThroughLocked(stream, *tip, tip->last_version)) {
        break;  // nothing left going forward
      } else if (!forward && RemovedThroughLocked(stream, *tip, v)) {
        break;  // nothing left going back
      }
    }
    if (!found) {
      return Status::Corruption("stream '" + std::string(stream) + "': version " + std::to_string(v.value) +
                                " is missing from the index");
    }
    slot = *found;
    const auto run = *RunLocked(slot, stream);
    const SegmentSlot& where = *segments_[slot];
    const auto bytes = where.segment->bytes().subspan(0, where.end_offset);
    size_t i = v - run.first_version;
    while (out.size() < max_count) {
      EventView e;
      uint32_t size;
      // The batch that holds the event must have verified before the event leaves the store.
      if (Status s = where.segment->Verify(run.offsets[i], where.end_offset, &stat_corruption_); !s.ok()) {
        return s;
      }
      if (!format::ParseEvent(bytes.subspan(run.offsets[i]), &e, &size) || e.stream != stream ||
          e.version != run.first_version + i) {
        return Status::Corruption("stream '" + std::string(stream) + "' version " +
                                  std::to_string(run.first_version.value + i) + ": record at " +
                                  segments_[slot]->segment->path().filename().string() + " offset " +
                                  std::to_string(run.offsets[i]) + " does not match the index");
      }
      out.push_back(e);
      if (forward) {
        if (++i == run.offsets.size()) break;
      } else {
        if (i-- == 0) break;
      }
    }
    if (forward) {
      v = run.last_version() + 1;
      if (v > tip->last_version) break;
    } else {
      if (run.first_version.value == 0) break;
      v = run.first_version - 1;
    }
  }
  return out;
}

namespace {

// The bytes of one segment a scan reads: its mapping, or (with a ReadBuffer) a window of
// its file read into memory, a whole number of batches from a batch boundary on. Offsets
// are the file's either way.
class ScanBytes {
 public:
  ScanBytes(const Segment& segment, ReadBuffer* copy) : segment_(segment), copy_(copy) {
    if (copy_ == nullptr) UseMapping();
  }

  // [off, end) of the file; with a copy, within what Load read last.
  std::span<const uint8_t> Range(uint64_t off, uint64_t end) const {
    return window_.subspan(off - begin_, std::min(end, end_) - off);
  }
  // Whether the bytes [off, off + length) can be looked at.
  bool Holds(uint64_t off, uint64_t length) const { return off >= begin_ && off + length <= end_; }
  bool copying() const { return copy_ != nullptr; }
  // Whether the window is a copy (not the mapping), and where it lies in the file.
  bool HoldsCopy() const { return copy_ != nullptr && !mapped_; }
  std::span<const uint8_t> window() const { return window_; }
  uint64_t window_offset() const { return begin_; }
  // Whether the buffer has taken as much as it should in one call.
  bool Full() const { return copy_ != nullptr && copy_->taken_bytes() >= copy_->max_bytes(); }

  // The window becomes the mapping up to `end` (without a copy, all of it; with one, a batch
  // too large to be worth reading whole).
  void UseMapping(uint64_t end = UINT64_MAX) {
    window_ = segment_.bytes().subspan(0, std::min<uint64_t>(end, segment_.bytes().size()));
    mapped_ = true;
    begin_ = 0;
    end_ = window_.size();
  }

  // Reads [off, off + length) of the file into the buffer: the new window.
  Status Load(uint64_t off, uint64_t length) {
    // A window that starts at `off` was read for this batch, which did not fit: nothing of
    // it was visited, so its memory is taken again rather than kept beside the new one.
    if (!mapped_ && begin_ == off && end_ > begin_) copy_->GiveBackLast(end_ - begin_);
    end_ = begin_;  // no window until the read below succeeds
    uint8_t* to = copy_->Take(length);
    auto n = segment_.file().ReadAt(off, std::span(to, length));
    if (!n.ok()) return n.status();
    if (*n != length) {
      return Status::IOError(segment_.path().string() + " ends at " + std::to_string(off + *n) +
                             " where the log says it goes on to " + std::to_string(off + length));
    }
    window_ = std::span<const uint8_t>(to, length);
    mapped_ = false;
    begin_ = off;
    end_ = off + length;
    return Status::Ok();
  }

 private:
  const Segment& segment_;
  ReadBuffer* copy_;
  std::span<const uint8_t> window_;
  bool mapped_ = false;
  uint64_t begin_ = 0, end_ = 0;
};

}  // namespace

Result<size_t> Store::Impl::ReadAll(GlobalPosition from, size_t max_count,
                                    const std::function<bool(const EventView&)>& visit,
                                    const ScanOptions& options) const {
  constexpr uint64_t kPrefetchAhead = 1024;
  ReadBuffer* const copy = options.copy;
  GlobalPosition* const skipped_to = options.skipped_to;
  const auto* const wants = options.wants;
  Store::Passed* const passed = options.passed;
  const auto* const take_run = options.take_run;
  struct Span {
    const Segment* segment;
    uint64_t begin, end;
  };
  std::vector<Span> spans;
  const uint64_t durable = durable_.load(std::memory_order_acquire);
  if (from.value >= durable || max_count == 0) return size_t{0};
  {
    // Take what the scan needs under the lock, then read without it: bytes below a
    // published end_offset never change, and the visitor may call back into the store.
    std::shared_lock lock(mu_);
    auto it = std::upper_bound(segments_.begin(), segments_.end(), from, [](GlobalPosition p, const auto& s) {
      return p < s->segment->first_position();
    });
    for (size_t k = static_cast<size_t>(it - segments_.begin()) - 1; k < segments_.size(); ++k) {
      const SegmentSlot& s = *segments_[k];
      uint64_t begin = format::kSegmentHeaderSize;
      if (spans.empty()) {
        auto floor = s.idx ? s.idx->SparseFloor(from) : s.mem->SparseFloor(from);
        if (floor && floor->position <= from.value) begin = floor->offset;
      }
      spans.push_back({s.segment.get(), begin, s.end_offset});
    }
  }
  size_t visited = 0;
  uint64_t passed_over = 0;  // events of batches `wants` refused: they count towards max_count
  auto pass = [&](GlobalPosition end, TimestampMicros timestamp) {
    if (skipped_to != nullptr) *skipped_to = end;
    if (passed != nullptr) *passed = {end, timestamp};
  };
  if (copy != nullptr) copy->Reset();
  // Removed events (storage/lifecycle.h) are skipped: what is removed is decided once per
  // batch (one stream, one commit time), and not at all in a store without metadata.
  const bool filtering = options.lifecycle_filter && metadata_count_.load(std::memory_order_acquire) > 0;
  const TimestampMicros now = filtering ? NowMicros() : 0;
  // A view of the last event's name: views stay valid for the whole call (the visitor may
  // hold them too), so comparing costs no copy.
  std::string_view removal_stream;
  Removal removal = Removal::None();
  auto removal_of = [&](std::string_view stream) -> const Removal& {
    if (stream != removal_stream) {  // the same for every event of a batch, often of the next
      removal_stream = stream;
      removal = RemovalOf(stream, now);
    }
    return removal;
  };
  for (const Span& span : spans) {
    // Damage found past verification (a batch or record whose checksum holds but which does
    // not parse) at `offset` of this segment.
    auto corruption = [&span](uint64_t offset, const char* what) {
      return Status::Corruption(span.segment->path().filename().string() + " offset " + std::to_string(offset) +
                                ": " + what);
    };
    ScanBytes bytes(*span.segment, copy);
    uint64_t off = span.begin;
    while (off < span.end) {
      // Each copied batch may hold views the visitor kept: a filtered scan stops once the
      // copy is this large, and the caller goes on from the last event visited.
      if (visited > 0 && bytes.Full()) return visited;
      format::BatchHeader h;
      if (bytes.copying()) {
        // Not yet trusted: this only decides what to read. A header that does not verify
        // is found below, by the mapping, as without a copy.
        if (!bytes.Holds(off, format::kBatchHeaderSize)) {
          // Read ahead from this batch on, a chunk at most.
          if (Status s = bytes.Load(off, std::min<uint64_t>(span.end - off, ReadBuffer::kChunkBytes)); !s.ok()) return s;
        }
        if (const auto head = bytes.Range(off, std::min<uint64_t>(span.end, off + sizeof(h))); head.size() == sizeof(h)) {
          std::memcpy(&h, head.data(), sizeof(h));
        } else {
          h.batch_size = 0;  // CheckBatch says what is wrong
        }
        if (!bytes.Holds(off, h.batch_size) && h.batch_size <= span.end - off) {
          if (h.batch_size > ReadBuffer::kLargestCopiedBatch) {
            bytes.UseMapping(off + h.batch_size);  // a reader may want a few of its events only
          } else {
            // The batch goes on past what was read: read it whole, and what follows, up to a chunk.
            const uint64_t length =
                std::min<uint64_t>(span.end - off, std::max<uint64_t>(h.batch_size, ReadBuffer::kChunkBytes));
            if (Status s = bytes.Load(off, length); !s.ok()) return s;
          }
        }
      }
      // Nothing unverified is served: the batch at `off` (and those before it) verified once,
      // in the copy that is served when there is one.
      const Status verified = bytes.HoldsCopy()
                                  ? span.segment->VerifyCopy(off, span.end, bytes.window(), bytes.window_offset(),
                                                             &stat_corruption_)
                                  : span.segment->Verify(off, span.end, &stat_corruption_);
      if (!verified.ok()) {
        // Damage wholly before `from` is not what this read serves: go on after it.
        auto resume = span.segment->ResumeAfterDamage(off);
        if (!resume || resume->second > from) return verified;
        off = resume->first;
        continue;
      }
      auto check = format::CheckBatch(bytes.Range(off, span.end), false, &h);
      if (check != format::BatchCheck::kOk) {
        return corruption(off, format::BatchCheckName(check));
      }
      const uint64_t batch_end = off + h.batch_size;
      if ((h.kind & format::kKindSafeToIgnore) != 0 && h.kind != format::kBatchKindEvents) {
        off = batch_end;
        continue;
      }
      if (h.first_position + h.event_count <= from.value) {
        off = batch_end;
        continue;
      }
      const auto batch = bytes.Range(off, batch_end);
      uint64_t at = format::kBatchHeaderSize;  // in `batch`
      if (wants != nullptr) {
        if (h.first_position >= durable) return visited;
        EventView first;
        uint32_t size;
        if (h.event_count > 0 && format::ParseEvent(batch.subspan(at), &first, &size) && !(*wants)(first.stream)) {
          // Positions in a batch are consecutive: those at or past `from` are passed.
          const uint64_t begin = std::max(h.first_position, from.value), end = h.first_position + h.event_count;
          pass(GlobalPosition(end), first.timestamp);  // one commit time per batch
          passed_over += end - begin;
          if (visited + passed_over >= max_count) return visited;
          off = batch_end;
          continue;
        }
      }
      if (take_run != nullptr && h.first_position + h.event_count <= durable) {
        // The batch from `from` on is one run, unless some of its events are removed: one
        // stream, consecutive versions, one commit time, so if the first is kept, all are.
        EventView first;
        uint32_t size = 0;
        uint64_t position = h.first_position;
        bool parsed = format::ParseEvent(batch.subspan(at), &first, &size);
        while (parsed && position < from.value) {
          at += size;
          ++position;
          parsed = format::ParseEvent(batch.subspan(at), &first, &size);
        }
        if (!parsed) return corruption(off + at, "event record does not parse");
        if (!filtering || !removal_of(first.stream).Removes(first.version, first.timestamp)) {
          const RecordRun run{batch.subspan(at), GlobalPosition(position),
                              static_cast<uint32_t>(h.first_position + h.event_count - position), first.stream};
          if (!format::CheckEventRecords(run.records, position, run.count)) {
            return corruption(off + at, "event records do not parse");
          }
          const uint32_t taken = (*take_run)(run);
          visited += taken;
          if (taken < run.count || visited + passed_over >= max_count) return visited;
          off = batch_end;
          continue;
        }
        at = format::kBatchHeaderSize;  // some are removed: event by event, below
      }
      for (uint32_t i = 0; i < h.event_count; ++i) {
        // A scan of the mapping missed the cache once per record header (80% of its time in
        // perf); the hardware prefetcher does not run ahead across ~300-byte strides, so ask
        // for the line a few records ahead. Measured: 512 B ahead 23M events/s, 1 KiB
        // 24-25M, 4 KiB 15M (further than a page is worse than nothing), none 17.5M. A copy
        // was just written by the kernel: it is in the cache already.
        if (!bytes.copying() && off + at + kPrefetchAhead < span.end) {
          __builtin_prefetch(batch.data() + at + kPrefetchAhead);  // may lie past the batch: still in the mapping
        }
        EventView e;
        uint32_t size;
        if (!format::ParseEvent(batch.subspan(at), &e, &size)) return corruption(off + at, "event record does not parse");
        at += size;
        if (e.position < from) continue;
        if (e.position.value >= durable) return visited;
        if (filtering && removal_of(e.stream).Removes(e.version, e.timestamp)) {
          pass(e.position + 1, e.timestamp);
          continue;
        }
        if (take_run != nullptr) {
          if ((*take_run)(RecordRun{format::RecordOf(e), e.position, 1, e.stream}) == 0) return visited;
          ++visited;
          if (visited + passed_over >= max_count) return visited;
          continue;
        }
        ++visited;
        if (!visit(e) || visited + passed_over >= max_count) return visited;
      }
      off = batch_end;
    }
  }
  return visited;
}

}  // namespace esd::storage
