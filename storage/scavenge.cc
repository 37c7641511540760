// Scavenge: the background rewrite of sealed segments without their removed events
// (storage/scavenge.h, docs/storage.md "Scavenge").
#include "storage/scavenge.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <string>
#include <unordered_map>

#include "storage/store_impl.h"

namespace esd::storage {

const char* ScavengeStatus::StateName(State s) {
  switch (s) {
    case State::kIdle: return "idle";
    case State::kRunning: return "running";
    case State::kStopping: return "stopping";
    case State::kFinished: return "finished";
    case State::kStopped: return "stopped";
    case State::kFailed: return "failed";
  }
  return "?";
}


Status Store::StartScavenge() {
  std::lock_guard lock(impl_->scavenger_mu_);
  if (!impl_->scavenger_) impl_->scavenger_ = std::make_unique<Scavenger>(*impl_);
  return impl_->scavenger_->Start();
}

void Store::StopScavenge() {
  std::lock_guard lock(impl_->scavenger_mu_);
  if (impl_->scavenger_) impl_->scavenger_->Stop();
}

ScavengeStatus Store::GetScavengeStatus() const {
  std::lock_guard lock(impl_->scavenger_mu_);
  return impl_->scavenger_ ? impl_->scavenger_->status() : ScavengeStatus{};
}

namespace {

// Reads and writes go in chunks this large: few syscalls, and the disk sees long runs.
constexpr uint64_t kChunkBytes = 8u << 20;

// The calling thread's I/O at the lowest best-effort priority (ioprio_set(2); glibc has no
// wrapper). Only schedulers that honour priorities (bfq, and cfq before it) act on it; it is
// advice, so a failure is ignored.
void LowerIoPriority() {
  constexpr int kWhoProcess = 1;  // with id 0: the calling thread
  constexpr int kClassBestEffort = 2;
  constexpr int kClassShift = 13;
  constexpr int kLowestLevel = 7;
  (void)::syscall(SYS_ioprio_set, kWhoProcess, 0, (kClassBestEffort << kClassShift) | kLowestLevel);
}

uint64_t AllocatedBytes(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

std::filesystem::path WithSuffix(std::filesystem::path p, const char* suffix) {
  p += suffix;
  return p;
}

// Whether `run` (a stream's events in one segment) begins with a removed event: then,
// removal being a prefix, something of the segment goes. `first_timestamp` is its first
// event's commit time.
bool RunLosesEvents(const Removal& r, const StreamRun& run, TimestampMicros first_timestamp) {
  return r.Removes(run.first_version, first_timestamp);
}

// The sequential reader of one segment file: pread in large chunks into a buffer that holds
// [begin_, begin_ + size) of the file.
class ChunkReader {
 public:
  ChunkReader(const File& file, uint64_t end) : file_(file), end_(end) {}
  // The bytes [off, off + n) of the file (n <= end - off), reading on as needed.
  Result<std::span<const uint8_t>> Get(uint64_t off, uint64_t n) {
    if (off < begin_ || off + n > begin_ + buf_.size()) {
      const uint64_t length = std::min(end_ - off, std::max<uint64_t>(n, kChunkBytes));
      buf_.resize(length);
      auto got = file_.ReadAt(off, buf_);
      if (!got.ok()) return got.status();
      if (*got != length) {
        return Status::IOError(file_.path().string() + " ends at " + std::to_string(off + *got) +
                               " where its log goes on to " + std::to_string(off + length));
      }
      begin_ = off;
      read_ += length;
    }
    return std::span<const uint8_t>(buf_.data() + (off - begin_), n);
  }
  uint64_t bytes_read() const { return read_; }

 private:
  const File& file_;
  const uint64_t end_;
  std::vector<uint8_t> buf_;
  uint64_t begin_ = 0;
  uint64_t read_ = 0;
};

// The rewritten segment as it is written: its bytes after the header go out in large
// chunks; the header is written last, once the length is known.
class ChunkWriter {
 public:
  explicit ChunkWriter(File file) : file_(std::move(file)) { buf_.reserve(kChunkBytes + (1u << 20)); }
  uint64_t offset() const { return flushed_ + buf_.size(); }
  uint8_t* Extend(size_t n) {
    buf_.resize(buf_.size() + n);
    return buf_.data() + buf_.size() - n;
  }
  Status MaybeFlush() { return buf_.size() >= kChunkBytes ? Flush() : Status::Ok(); }
  Status Flush() {
    if (buf_.empty()) return Status::Ok();
    Status s = file_.WriteAt(flushed_, buf_);
    // Written back while the next chunk is read and copied: the closing fdatasync then has
    // little left to wait for.
    if (s.ok()) s = file_.StartWriteBack(flushed_, buf_.size());
    flushed_ += buf_.size();
    buf_.clear();
    return s;
  }
  const File& file() const { return file_; }

 private:
  File file_;
  std::vector<uint8_t> buf_;
  uint64_t flushed_ = format::kSegmentHeaderSize;
};

}  // namespace

Scavenger::~Scavenger() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The store is closing: nobody reads the old segments any more, and no spare is wanted.
  for (Retired& r : retired_) {
    r.segment.reset();
    if (!r.retired_path.empty()) (void)RemoveFile(r.retired_path);
  }
}

Status Scavenger::Start() {
  {
    std::lock_guard lock(mu_);
    if (status_.state == ScavengeStatus::State::kRunning || status_.state == ScavengeStatus::State::kStopping) {
      return Status::InvalidArgument("a scavenge is running already (esctl scavenge status shows its progress)");
    }
    stop_ = true;  // the last run's thread may still wait to release retired segments
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  stop_ = false;
  status_ = ScavengeStatus{};
  status_.state = ScavengeStatus::State::kRunning;
  status_.started_micros = NowMicros();
  status_.read_rate_cap = store_.options_.scavenge_read_bytes_per_second;
  thread_ = std::thread([this] { Run(); });
  NameThread(thread_, "esd-scavenge");
  return Status::Ok();
}

void Scavenger::Stop() {
  {
    std::lock_guard lock(mu_);
    if (status_.state != ScavengeStatus::State::kRunning) return;
    status_.state = ScavengeStatus::State::kStopping;
    stop_ = true;
  }
  cv_.notify_all();
}

ScavengeStatus Scavenger::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void Scavenger::Update(const std::function<void(ScavengeStatus&)>& f) {
  std::lock_guard lock(mu_);
  f(status_);
}

void Scavenger::Run() {
  LowerIoPriority();
  // Everything removed as of this moment is what this scavenge frees.
  const TimestampMicros now = NowMicros();
  if (EventListener* l = store_.options_.listener) l->OnScavengeStarted(status());
  Status s = SealActiveIfNeeded(now);
  size_t sealed = 0;
  if (s.ok()) {
    // The index job writes a sealed segment's index file: wait for those queued so far (a
    // job posted now runs after them), since decisions are made from the index.
    std::promise<void> indexed;
    store_.index_jobs_->Post([&indexed] { indexed.set_value(); });
    indexed.get_future().wait();
    std::shared_lock lock(store_.mu_);
    sealed = store_.segments_.size() - 1;
    uint64_t bytes = 0;
    for (size_t k = 0; k < sealed; ++k) bytes += store_.segments_[k]->end_offset;
    Update([&](ScavengeStatus& st) {
      st.segments_total = sealed;
      st.bytes_total = bytes;
    });
  }
  bool stopped = false;
  for (size_t k = 0; s.ok() && k < sealed; ++k) {
    if (stop_.load()) {
      stopped = true;
      break;
    }
    s = ScavengeSlot(k, now);
    Update([](ScavengeStatus& st) { ++st.segments_done; });
    ReleaseRetired(false);
  }
  const TimestampMicros work_done = NowMicros();  // the rate is of the work, not of the wait below
  // It says finished (or stopped) only once the segments it replaced are gone: unmapped
  // after their grace period, and recycled (zeroed in full) or removed, so that a finished
  // scavenge has given back the space it reports and no file in the directory holds a
  // removed byte any more (the forget-customer promise: docs/domain.md).
  {
    std::unique_lock lock(mu_);
    while (!closing_.load() && !retired_.empty()) {
      const auto due = retired_.back().at + store_.options_.scavenge_retire_after;
      cv_.wait_until(lock, due, [&] { return closing_.load(); });
      lock.unlock();
      ReleaseRetired(false);
      lock.lock();
    }
  }
  Update([&](ScavengeStatus& st) {
    st.finished_micros = work_done;
    if (!s.ok()) {
      st.state = ScavengeStatus::State::kFailed;
      st.error = s;
    } else {
      st.state = stopped ? ScavengeStatus::State::kStopped : ScavengeStatus::State::kFinished;
    }
  });
  if (EventListener* l = store_.options_.listener) l->OnScavengeFinished(status());
  // The segments replaced stay mapped for the grace period, then go (their blocks with them).
  std::unique_lock lock(mu_);
  while (!stop_.load() && !retired_.empty()) {
    const auto due = retired_.front().at + store_.options_.scavenge_retire_after;
    cv_.wait_until(lock, due, [&] { return stop_.load(); });
    lock.unlock();
    ReleaseRetired(false);
    lock.lock();
  }
}

void Scavenger::ReleaseRetired(bool all) {
  std::vector<Retired> due;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    auto it = retired_.begin();
    while (it != retired_.end() && (all || it->at + store_.options_.scavenge_retire_after <= now)) ++it;
    due.assign(std::make_move_iterator(retired_.begin()), std::make_move_iterator(it));
    retired_.erase(retired_.begin(), it);
  }
  // Unmapped and closed here. The old file becomes the next spare if none is ready (zeroed
  // in full first), else it goes, and its blocks with it.
  for (Retired& r : due) {
    r.segment.reset();
    if (r.retired_path.empty()) continue;
    if (!store_.preallocator_->Offer(r.retired_path)) (void)RemoveFile(r.retired_path);
  }
}

Status Scavenger::SealActiveIfNeeded(TimestampMicros now) {
  struct Candidate {
    std::string stream;
    StreamVersion first_version;
    uint32_t first_offset;
  };
  std::vector<Candidate> streams;
  const Segment* segment;
  {
    std::shared_lock lock(store_.mu_);
    const SegmentSlot& active = *store_.segments_.back();
    if (active.end_offset <= format::kSegmentHeaderSize) return Status::Ok();
    segment = active.segment.get();
    active.mem->ForEachStream([&](std::string_view name, const StreamRun& run) {
      streams.push_back({std::string(name), run.first_version, run.offsets[0]});
    });
  }
  bool any = false;
  for (const Candidate& c : streams) {
    const Removal r = store_.RemovalOf(c.stream, now);
    if (r.RemovesNothing()) continue;
    format::EventView first;
    uint32_t size;
    // The active segment is never swapped, and bytes below its published end never change.
    if (!format::ParseEvent(segment->bytes().subspan(c.first_offset), &first, &size)) continue;
    if (r.Removes(c.first_version, first.timestamp)) {
      any = true;
      break;
    }
  }
  if (!any) return Status::Ok();
  std::promise<Status> sealed;
  auto request = std::make_unique<AppendRequest>();
  request->seal = true;
  request->done = [&sealed](AppendResult r) { sealed.set_value(r.status()); };
  store_.Enqueue(std::move(request));
  return sealed.get_future().get();
}

Status Scavenger::ScavengeSlot(size_t k, TimestampMicros now) {
  const Segment* seg;
  const IndexFile* idx;
  uint64_t end_offset;
  GlobalPosition end_position;
  {
    std::shared_lock lock(store_.mu_);
    const SegmentSlot& slot = *store_.segments_[k];
    // Without its index file (a full disk when it was sealed) a segment is left as it is:
    // decisions are made from the index, and the next open writes it.
    if (!slot.sealed || !slot.idx) return Status::Ok();
    seg = slot.segment.get();
    idx = slot.idx.get();
    end_offset = slot.end_offset;
    end_position = slot.end_position;
  }
  // What each stream of this segment loses. Index files and segments stay alive while the
  // store is open (retired ones too), so neither needs the lock to be read.
  std::unordered_map<std::string, Removal, StringHash, std::equal_to<>> removals;
  std::vector<std::pair<std::string_view, StreamRun>> runs;
  idx->ForEachRun([&](std::string_view name, const StreamRun& run) { runs.emplace_back(name, run); });
  bool any = false;
  for (const auto& [name, run] : runs) {
    Removal r = store_.RemovalOf(name, now);
    if (r.RemovesNothing()) continue;
    format::EventView first;
    uint32_t size;
    if (format::ParseEvent(seg->bytes().subspan(run.offsets[0]), &first, &size) && RunLosesEvents(r, run, first.timestamp)) {
      any = true;
    }
    removals.emplace(std::string(name), r);
  }
  if (!any) return Status::Ok();

  const auto seg_path = seg->path();
  const auto idx_path = IndexPath(store_.segments_dir_, seg->first_position());
  const auto seg_scav = WithSuffix(seg_path, ".scav");
  const auto idx_scav = WithSuffix(idx_path, ".scav");
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove(seg_scav, ec);
    std::filesystem::remove(idx_scav, ec);
  };
  auto out_file = File::Open(seg_scav, O_RDWR | O_CREAT | O_TRUNC);
  if (!out_file.ok()) return out_file.status();
  ChunkWriter out(std::move(out_file).value());
  ChunkReader in(seg->file(), end_offset);
  MemIndex mem;
  // An earlier scavenge's tips record, by name; each entry's view points at its key (node
  // keys stay put), not into the read buffer, which the next read overwrites.
  std::unordered_map<std::string, format::TipsEntry, StringHash, std::equal_to<>> carried_tips;
  TimestampMicros last_timestamp = 0;
  uint64_t events_removed = 0;
  std::vector<uint32_t> offsets;
  const uint64_t cap = store_.options_.scavenge_read_bytes_per_second;
  const auto started = std::chrono::steady_clock::now();
  uint64_t reported = 0;  // of in.bytes_read(), added to status_.bytes_read
  auto where = [&](uint64_t off) { return SegmentFileName(seg_path) + " offset " + std::to_string(off) + ": "; };
  Status s;
  for (uint64_t off = format::kSegmentHeaderSize; off < end_offset && s.ok();) {
    auto head = in.Get(off, std::min<uint64_t>(format::kBatchHeaderSize, end_offset - off));
    if (!head.ok()) {
      s = head.status();
      break;
    }
    format::BatchHeader h;
    if (head->size() < sizeof(h)) {
      s = Status::Corruption(where(off) + "the log ends inside a batch header");
      break;
    }
    std::memcpy(&h, head->data(), sizeof(h));
    if (h.batch_size < format::kBatchHeaderSize || h.batch_size > end_offset - off) {
      s = Status::Corruption(where(off) + "bad batch header");
      break;
    }
    auto batch = in.Get(off, h.batch_size);
    if (!batch.ok()) {
      s = batch.status();
      break;
    }
    // Nothing unverified is copied: a damaged segment is left as it is, for verify and salvage.
    if (auto c = format::CheckBatch(*batch, true, &h); c != format::BatchCheck::kOk || h.segment_id != seg->id().value) {
      s = Status::Corruption(where(off) + (c != format::BatchCheck::kOk ? format::BatchCheckName(c) : "wrong segment id") +
                             "; the segment was not scavenged (esctl verify says more)");
      break;
    }
    last_timestamp = std::max(last_timestamp, h.timestamp_micros);
    const uint64_t next = off + h.batch_size;
    if (h.kind == format::kBatchKindTips) {  // from an earlier scavenge: carried into the new one
      (void)format::ForEachTipsEntry(*batch, [&](const format::TipsEntry& e) {
        auto [it, added] = carried_tips.insert_or_assign(std::string(e.stream), e);
        it->second.stream = it->first;
      });
      off = next;
      continue;
    }
    if (h.kind != format::kBatchKindEvents) {  // a kind this version does not know: kept as it is
      std::memcpy(out.Extend(h.batch_size), batch->data(), h.batch_size);
      off = next;
      s = out.MaybeFlush();
      continue;
    }
    // The first event that is kept; removal is a prefix, so every later one is kept too.
    uint64_t rec = format::kBatchHeaderSize;
    uint32_t first_kept = h.event_count;
    uint64_t kept_from = h.batch_size;
    format::EventView first_event, kept_event;
    offsets.clear();
    for (uint32_t i = 0; i < h.event_count; ++i) {
      format::EventView e;
      uint32_t size;
      if (!format::ParseEvent(batch->subspan(rec), &e, &size)) {
        s = Status::Corruption(where(off + rec) + "event record does not parse");
        break;
      }
      if (i == 0) first_event = e;
      auto r = removals.find(e.stream);
      if (first_kept == h.event_count && (r == removals.end() || !r->second.Removes(e.version, e.timestamp))) {
        first_kept = i;
        kept_from = rec;
        kept_event = e;
      }
      rec += size;
    }
    if (!s.ok()) break;
    events_removed += first_kept;
    off = next;
    if (first_kept == h.event_count) continue;  // nothing of this batch remains
    // The kept records, byte for byte, under a new header.
    const uint64_t new_off = out.offset();
    const uint64_t new_size = format::kBatchHeaderSize + (h.batch_size - kept_from);
    uint8_t* dst = out.Extend(new_size);
    std::memcpy(dst + format::kBatchHeaderSize, batch->data() + kept_from, h.batch_size - kept_from);
    format::BatchHeader nh = h;
    nh.batch_size = static_cast<uint32_t>(new_size);
    nh.event_count = h.event_count - first_kept;
    nh.first_position = kept_event.position.value;
    nh.sync_mark = new_off;
    std::memcpy(dst, &nh, sizeof(nh));
    nh.checksum = format::Checksum(dst + 8, new_size - 8);
    std::memcpy(dst, &nh.checksum, sizeof(nh.checksum));
    for (uint64_t at = format::kBatchHeaderSize; at < new_size;) {
      offsets.push_back(static_cast<uint32_t>(new_off + at));
      format::EventView e;
      uint32_t size;
      (void)format::ParseEvent(std::span<const uint8_t>(dst + at, new_size - at), &e, &size);
      at += size;
    }
    mem.AddBatch(kept_event.stream, kept_event.version, kept_event.position, h.timestamp_micros, new_off, new_size,
                 offsets);
    s = out.MaybeFlush();
    if (in.bytes_read() != reported) {  // a new chunk was read: progress, and the cap
      Update([&](ScavengeStatus& st) { st.bytes_read += in.bytes_read() - reported; });
      reported = in.bytes_read();
      if (cap > 0) {
        // No faster than the cap: wait until the bytes read so far are due (a stop ends the wait).
        const auto due = started + std::chrono::microseconds(in.bytes_read() * 1'000'000 / cap);
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, due, [&] { return stop_.load(); });
      }
    }
  }
  Update([&](ScavengeStatus& st) { st.bytes_read += in.bytes_read() - reported; });
  if (!s.ok()) {
    cleanup();
    return s;
  }
  // The tips record: every stream this segment held an event of and holds none now, plus
  // what an earlier scavenge's record listed. Where they stood at its end: the old runs' ends.
  std::vector<format::TipsEntry> tips;
  for (const auto& [name, run] : runs) {
    if (!mem.Find(name)) tips.push_back({name, run.last_version(), run.last_position, run.last_timestamp});
  }
  for (const auto& [name, e] : carried_tips) {
    if (!mem.Find(name) && !idx->Find(name)) tips.push_back(e);
  }
  const uint64_t tips_off = out.offset();
  const size_t tips_size = format::TipsRecordSize(tips);
  format::EncodeTipsRecord(std::span(out.Extend(tips_size), tips_size), tips,
                           {seg->id(), end_position, StreamVersion(0), last_timestamp, FileOffset(tips_off)});
  const uint64_t new_end = out.offset();
  s = out.Flush();
  // The header last, now that the length is known; it declares the file compact.
  uint8_t old_raw[format::kSegmentHeaderSize];
  format::SegmentHeader old_header{};
  if (s.ok()) {
    auto n = seg->file().ReadAt(0, old_raw);
    if (!n.ok()) s = n.status();
    else if (format::DecodeSegmentHeader(std::span<const uint8_t>(old_raw, *n), &old_header) != format::HeaderCheck::kOk) {
      s = Status::Corruption(where(0) + "bad segment header");
    }
  }
  if (s.ok()) {
    uint8_t raw[format::kSegmentHeaderSize];
    format::EncodeSegmentHeader(std::span<uint8_t, format::kSegmentHeaderSize>(raw), seg->id(), seg->first_position(),
                                new_end, old_header.created_micros, end_position);
    s = out.file().WriteAt(0, raw);
  }
  if (s.ok()) s = out.file().DataSync();
  // Its index, with the old index's tips (IndexFile::Write), durable under a temporary name.
  if (s.ok()) {
    s = IndexFile::Write(idx_scav, seg->id(), seg->first_position(), end_position, new_end, mem, idx, tips);
  }
  std::unique_ptr<IndexFile> new_idx;
  if (s.ok()) {
    auto loaded = IndexFile::Load(idx_scav, seg->id(), seg->first_position(), new_end);
    if (loaded.ok()) new_idx = std::move(loaded).value();
    else s = loaded.status();
  }
  if (!s.ok()) {
    cleanup();
    return s;
  }

  // The swap, each step durable before the next, so that a crash anywhere leaves either the
  // old segment or the new one in place, with its own index or none (rebuilt at open):
  //   1. the old index goes (never to be taken for the new segment: same id and range);
  //   2. the new segment replaces the old one (rename);
  //   3. the new index takes its name.
  // Open removes a leftover *.scav. A backup copies files by name: none runs meanwhile.
  std::lock_guard files(store_.files_mu_);
  const uint64_t old_blocks = AllocatedBytes(seg->file().fd());
  s = RemoveFile(idx_path);
  if (s.ok()) s = SyncDirectory(store_.segments_dir_);
  if (!s.ok()) {
    cleanup();
    return s;
  }
  // A second name for the old file, so that it can be recycled as a spare once nobody maps
  // it (open removes a leftover one). Without it the old file just goes.
  std::filesystem::path retired_path = WithSuffix(seg_path, ".retired");
  if (!LinkFile(seg_path, retired_path).ok()) retired_path.clear();
  s = RenameFile(seg_scav, seg_path);
  if (s.ok()) s = SyncDirectory(store_.segments_dir_);
  if (!s.ok()) {
    if (!retired_path.empty()) (void)RemoveFile(retired_path);
    // The old segment is in place without its index: open rebuilds it. Until then reads go
    // on from the index in memory.
    cleanup();
    return s;
  }
  // From here the new segment is the one on disk: whatever fails, memory must follow it.
  Status idx_renamed = RenameFile(idx_scav, idx_path);
  if (idx_renamed.ok()) idx_renamed = SyncDirectory(store_.segments_dir_);
  auto opened = Segment::Open(seg_path);
  if (!opened.ok()) {
    // Reads go on from the old mapping; a restart takes the new file.
    if (!retired_path.empty()) (void)RemoveFile(retired_path);
    return opened.status();
  }
  std::unique_ptr<Segment> fresh = std::move(opened).value();
  fresh->MarkVerified(new_end, end_position, last_timestamp);
  const uint64_t new_blocks = AllocatedBytes(fresh->file().fd());
  std::unique_ptr<Segment> old;
  {
    std::unique_lock lock(store_.mu_);
    SegmentSlot& slot = *store_.segments_[k];
    old = std::move(slot.segment);
    slot.segment = std::move(fresh);
    store_.retired_indexes_.push_back(std::move(slot.idx));
    slot.idx = std::move(new_idx);
    slot.end_offset = new_end;
  }
  {
    std::lock_guard lock(mu_);
    retired_.push_back({std::move(old), std::chrono::steady_clock::now(), retired_path});
    status_.segments_rewritten++;
    status_.events_removed += events_removed;
    status_.bytes_reclaimed += old_blocks > new_blocks ? old_blocks - new_blocks : 0;
  }
  return idx_renamed;
}

}  // namespace esd::storage
