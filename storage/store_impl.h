// Store::Impl: the state shared by recovery (recovery.cc), the writer thread (writer.cc)
// and readers (store.cc). Internal to storage/.
//
// Locking. `mu_` (shared_mutex) guards segments_, streams_ and the active segment's
// MemIndex. Readers take it shared; the writer takes it exclusively once per group, to
// publish what the group made durable, and the index job once per sealed segment. Bytes
// below a segment's published end_offset never change, so readers may use them unlocked.
// Nothing may hold `mu_` for O(streams): every append waits for the next publish. Listing
// and counting streams go through `directory_`, which has locks of its own (lock order:
// directory_, then mu_, then the directory's pending list, which the writer adds to while
// it publishes).
//
// Invariant: durable_ <= what the writer has written <= what it has encoded. Readers
// see nothing at or past durable_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/background.h"
#include "storage/file.h"
#include "storage/index_file.h"
#include "storage/mem_index.h"
#include "storage/segment.h"
#include "storage/store.h"
#include "storage/stream_directory.h"

namespace esd::storage {

struct SegmentSlot {
  std::unique_ptr<Segment> segment;
  // Lookups go to `idx` when it is loaded, else to `mem` (the active segment, or a sealed
  // one whose index file is not written yet).
  std::shared_ptr<MemIndex> mem;
  // Set once (at open or by the index job, under mu_) and then kept, unchanged, until the
  // store is destroyed: directory_ holds views of its names.
  std::unique_ptr<IndexFile> idx;
  uint64_t end_offset = 0;      // first byte past the last published batch
  GlobalPosition end_position;  // one past the last published event
  bool sealed = false;
};

// A metadata change (storage/lifecycle.h) that the writer turns into the event it appends to
// "$$target": it is decided against the target's tip and metadata as the writer sees them.
struct LifecycleOp {
  enum class Kind : uint8_t { kSetMetadata, kDelete, kTruncate };
  Kind kind = Kind::kSetMetadata;
  std::string target;
  ExpectedVersion expected = ExpectedVersion::Any();  // kSetMetadata: of "$$target"; kDelete: of target
  StreamMetadata metadata;                           // kSetMetadata
  bool hard = false;                                 // kDelete
  StreamVersion before;                              // kTruncate
};

struct AppendRequest {
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  // Views into `owned` or `packed`, whichever the caller gave (Store::Append's two forms),
  // or into what the writer made (`lifecycle`).
  std::vector<format::EventFields> events;
  std::vector<EventData> owned;
  std::unique_ptr<char[]> packed;
  AppendCallback done;
  uint64_t bytes = 0;  // encoded batch size
  bool sync_barrier = false;  // Store::Sync: no events; done once everything before is synced
  std::unique_ptr<LifecycleOp> lifecycle;  // set: stream, expected and events are made by the writer
  // Scavenge (storage/scavenge.h): no events; seal the active segment (a roll) if it holds
  // any batch, so that what it holds can be rewritten. Done once rolled.
  bool seal = false;
};

class Scavenger;

class Store::Impl {
 public:
  Impl(std::filesystem::path dir, Options options, DirectoryLock lock);
  ~Impl();

  // recovery.cc
  Status Recover();
  // writer.cc
  void StartThreads();
  void StopThreads();
  void Enqueue(std::unique_ptr<AppendRequest> request);

  // store.cc: reads. `mu_` must be held (shared) by the caller.
  std::optional<StreamTip> TipLocked(std::string_view stream) const;
  std::optional<StreamTip> SealedTipLocked(size_t slot, std::string_view stream) const;
  std::optional<StreamRun> RunLocked(size_t slot, std::string_view stream) const;
  // The slot whose run of `stream` holds `version`, searching slots >= `from_slot`.
  std::optional<size_t> SlotOfVersionLocked(std::string_view stream, StreamVersion version,
                                            size_t from_slot) const;
  Result<std::vector<EventView>> ReadStream(std::string_view stream, StreamVersion from, size_t max_count,
                                            Direction direction) const;
  // How ReadAll scans: each of Store's ReadAll forms sets some of these.
  struct ScanOptions {
    ReadBuffer* copy = nullptr;  // read through it (pread), else through the mapping
    bool lifecycle_filter = true;  // false: removed events too (the writer's retry check)
    GlobalPosition* skipped_to = nullptr;
    // Store::ReadAll's filtered form (`passed->end` takes skipped_to's part).
    const std::function<bool(std::string_view stream)>* wants = nullptr;
    Store::Passed* passed = nullptr;
    // Store::ReadAllRecords: runs go here, and `visit` is not called.
    const std::function<uint32_t(const Store::RecordRun&)>* take_run = nullptr;
  };
  Result<size_t> ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                         const ScanOptions& options) const;
  Result<size_t> ReadAll(GlobalPosition from, size_t max_count,
                         const std::function<bool(const EventView&)>& visit) const {
    return ReadAll(from, max_count, visit, ScanOptions{});
  }
  // The names of the newest index file's tips (none without one), in its order: views into
  // its mapping, valid while the store is open. Takes `mu_` only to find the file. Sets
  // listed_base_; called once, by directory_.
  std::vector<std::string_view> NewestIndexNames() const;
  // TipLocked for a name that directory_ listed: one of its base is not searched for when
  // the base holds its current tip.
  std::optional<StreamTip> ListedTipLocked(const StreamDirectory::Entry& entry) const;
  // StoreStats::log_bytes. Takes `mu_` shared.
  uint64_t LogBytes() const;

  // ---- lifecycle (store_lifecycle.cc) ----
  // What is removed of `stream` as of `now` (storage/lifecycle.h): the one rule that reads
  // and scavenge share. "$$S" keeps its last event only. Takes `mu_` shared; the Locked form
  // is for a caller that holds it (or the writer), with the stream's tip.
  Removal RemovalOf(std::string_view stream, TimestampMicros now) const;
  Removal RemovalOfLocked(std::string_view stream, const StreamTip& tip, TimestampMicros now) const;
  // The stream's metadata as published (nullptr: none). `mu_` held, or the writer.
  const StreamMetadata* MetadataLocked(std::string_view stream) const;
  // Recovery's last step: the metadata of every stream, from the last event of each "$$S".
  Status LoadMetadata();
  // ReadStream without the lifecycle filter: every event still in the log.
  Result<std::vector<EventView>> ReadStreamRaw(std::string_view stream, const StreamTip& tip, StreamVersion from,
                                               size_t max_count, Direction direction) const;

  // ---- scavenge (scavenge.cc) ----
  // Reads after a scavenge (store.cc). `mu_` held. Whether RemovalOf removes every version of
  // `stream` up to `version`; and where a read that found `v` missing goes on: the nearest
  // version still in the log past it (forward) or before it (back), if every version skipped
  // is removed, else nullopt (the read reports the missing version as damage).
  bool RemovedThroughLocked(std::string_view stream, const StreamTip& tip, StreamVersion version) const;
  std::optional<StreamVersion> NextVersionInLogLocked(std::string_view stream, const StreamTip& tip, StreamVersion v,
                                                      Direction direction) const;
  // Held by a backup for its whole copy and by a scavenge swap: a backup copies files by
  // name, and must not see a segment replaced under it.
  mutable std::mutex files_mu_;
  // IndexFiles a scavenge replaced: kept until the store is destroyed, since directory_ and
  // listed_base_ hold views and pointers into them. Under mu_.
  std::vector<std::unique_ptr<IndexFile>> retired_indexes_;
  std::unique_ptr<Scavenger> scavenger_;  // created by the first StartScavenge; under scavenger_mu_
  mutable std::mutex scavenger_mu_;
  // Sends `request` through the writer's queue (Enqueue is private to the writer's side).
  void EnqueueForScavenge(std::unique_ptr<AppendRequest> request) { Enqueue(std::move(request)); }

  const std::filesystem::path dir_;
  const std::filesystem::path segments_dir_;
  const Options options_;
  DirectoryLock lock_;
  RecoveryReport recovery_;

  mutable std::shared_mutex mu_;
  std::vector<std::unique_ptr<SegmentSlot>> segments_;  // log order; back() is active
  // Every stream of the active segment at open, and every stream written since: the rest
  // are found in the sealed segments' tips. Entries are never erased, and their keys never
  // move, so directory_ holds views of them. Sharded: the writer grows it under mu_ held
  // exclusively, and one rehash of every stream there stalled all reads (sharded_map.h).
  ShardedStringMap<StreamTip> streams_;
  // Every stream's name, in name order (stream_directory.h). Its base is the newest index
  // file's tips; recovery adds what is not in it (streams_ at open, the streams of sealed
  // segments left without an index file), and the writer adds each stream it puts in
  // streams_ as it publishes it, so a stream is listed as soon as it can be read.
  mutable StreamDirectory directory_;
  // The index file that directory_'s base came from, and whether its tips are current for
  // every stream not in streams_: set by NewestIndexNames when the directory is built, read
  // after directory_ has answered (its lock orders the two).
  mutable std::atomic<const IndexFile*> listed_base_{nullptr};
  mutable std::atomic<bool> listed_base_current_{false};
  size_t sealed_at_open_ = 0;  // segments that were sealed when the store was opened
  std::atomic<uint64_t> durable_{0};
  // One past the last event on disk (fdatasync'ed): synced_ <= durable_.
  std::atomic<uint64_t> synced_{0};

  // Each stream's metadata, published by the writer under `mu_` (exclusive) as the event
  // that carries it becomes durable, read under `mu_` (shared). The writer reads it unlocked.
  // Values are shared so a reader copies a pointer, not the custom bytes.
  std::unordered_map<std::string, std::shared_ptr<const StreamMetadata>, StringHash, std::equal_to<>> metadata_;
  // metadata_.size(), read without the lock: a store without metadata filters nothing.
  std::atomic<size_t> metadata_count_{0};

  // Observers of the durable position.
  std::mutex observers_mu_;
  std::map<uint64_t, std::function<void(GlobalPosition)>> observers_;
  uint64_t next_observer_ = 1;

  // Counters, updated by the writer.
  std::atomic<uint64_t> stat_appends_{0}, stat_events_{0}, stat_bytes_{0}, stat_groups_{0},
      stat_fsyncs_{0}, stat_sealed_{0}, stat_index_files_{0}, stat_fill_waits_{0};
  mutable std::atomic<uint64_t> stat_corruption_{0};  // counted by readers, hence mutable
  Histogram fsync_micros_{50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000, 1000000};
  Histogram group_appends_{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};

  // Store::write_state's copy of failed_ and of the last out-of-space result, published by
  // the writer (PublishWriteState) after each group and each sync it does on its own.
  mutable std::mutex write_state_mu_;
  WriteState write_state_;

 private:
  friend class Store;
  friend class Scavenger;  // seals through the writer, waits for the index job
  // ---- writer thread (writer.cc) ----
  struct Pending {  // a batch encoded into group_ but not yet published
    AppendRequest* request;
    size_t completion;  // its entry in completions_
    uint64_t offset;    // in group_
    StreamVersion first_version;
    GlobalPosition first_position;
    std::vector<uint32_t> event_offsets;  // in the batch
    std::shared_ptr<const StreamMetadata> metadata;  // a lifecycle op's: published with the batch
  };
  struct BatchRef {  // where a batch starts, found by its first event id
    GlobalPosition position;
    uint32_t count;
  };
  void WriterLoop();
  void ProcessGroup(std::vector<std::unique_ptr<AppendRequest>>& group);
  // Checks expected version and idempotency. Returns nullopt to append (with the stream's
  // current tip in `tip`), or the result.
  std::optional<AppendResult> Decide(const AppendRequest& r, std::optional<StreamTip>* tip);
  std::optional<AppendResult> CheckRetry(const AppendRequest& r, GlobalPosition at, std::optional<StreamTip>* tip);
  std::optional<StreamTip> WriterTip(std::string_view stream) const;
  // The target's metadata as this group leaves it (overlay first). nullptr: none.
  const StreamMetadata* WriterMetadata(std::string_view stream) const;
  // Turns a lifecycle request into its "$$target" event (r.stream, r.expected, r.events,
  // r.bytes), deciding it against the writer's view of the target; `*metadata` gets what it
  // writes. A result when it is refused. Called with an empty group (store_lifecycle.cc).
  std::optional<AppendResult> PrepareLifecycle(AppendRequest& r, std::shared_ptr<const StreamMetadata>* metadata);
  // The last version of `stream` that max_age removes as of `now` (binary search on the
  // events' times); nullopt when none. Writer thread.
  std::optional<StreamVersion> ExpiredThrough(std::string_view stream, const StreamTip& tip,
                                              const StreamMetadata& meta, TimestampMicros now);
  void FlushGroup();
  Status Roll();
  void Complete();
  void SyncIfDue(bool force);
  // After a group or a sync of its own: copies failed_, and group_outcome_ into the
  // out-of-space state, for readers, and tells options_.listener the same changes (and a
  // slow sync). Locks only on a change.
  void PublishWriteState();
  void WriteIndexFor(size_t slot_number);
  bool WriteOneIndex(size_t slot_number);  // false: not written (the next open rebuilds it)
  const BatchRef* FindBatchByFirstId(const EventId& id) const;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<AppendRequest>> queue_;
  uint64_t queued_bytes_ = 0;  // of queue_; at most options_.max_queued_bytes, or one request
  bool stopping_ = false;
  std::thread writer_;

  // Owned by the writer thread.
  // Grows without zero-filling: EncodeBatch writes every byte of a batch, padding included,
  // and zeroing 30 KB before each 100-event batch was 10% of W3's instructions.
  template <typename T>
  struct UninitializedAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
      using other = UninitializedAllocator<U>;
    };
    template <typename U>
    void construct(U* p) noexcept {
      ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  };
  std::vector<uint8_t, UninitializedAllocator<uint8_t>> group_;
  std::vector<Pending> pending_;
  std::vector<std::pair<std::unique_ptr<AppendRequest>, AppendResult>> completions_;
  std::unordered_map<std::string, StreamTip, StringHash, std::equal_to<>> overlay_;  // this group
  // Metadata this group wrote, by target stream: later requests of the group are decided on it.
  std::unordered_map<std::string, std::shared_ptr<const StreamMetadata>, StringHash, std::equal_to<>>
      metadata_overlay_;
  uint64_t write_offset_ = 0;       // where group_ goes in the active segment
  uint64_t sync_mark_ = 0;          // active segment bytes below this are durable
  uint64_t unsynced_ = 0;           // bytes written but not synced (interval / never)
  std::chrono::steady_clock::time_point last_sync_;
  GlobalPosition next_position_;    // next position to assign
  TimestampMicros last_timestamp_ = 0;
  // First event id of recent batches -> where the batch is: two generations, each holding
  // up to kIdWindow batches or one segment, for retries of Any/StreamExists appends.
  using IdWindow = std::unordered_map<EventId, BatchRef, EventIdHash>;
  IdWindow ids_, old_ids_;
  std::vector<EventId> group_ids_;  // inserted by the current group, undone on failure
  Status failed_;                   // set after an I/O error: no more writes
  bool failed_published_ = false;   // write_state_.failed holds failed_
  bool out_of_space_published_ = false;
  // What the current group learned about space: Ok once it wrote, kOutOfSpace when a write
  // or a roll failed for lack of it, nullopt when it wrote nothing.
  std::optional<Status> group_outcome_;
  std::optional<uint64_t> slow_sync_micros_;  // this group's sync, when slow: for the listener

  uint64_t created_filled_ = 0;  // recovery: zero-filled bytes of a segment it created
  uint64_t active_filled_ = 0;   // recovery -> StartThreads: synced zeros end here in the active segment
  std::vector<size_t> unindexed_at_open_;  // sealed slots whose index could not be written at open
  std::unique_ptr<Preallocator> preallocator_;
  std::unique_ptr<TaskQueue> index_jobs_;

 public:
  static constexpr size_t kIdWindow = 1 << 20;
  // Records one scanned/written batch in the id window (recovery uses it too).
  void RememberBatch(const EventId& first_id, GlobalPosition position, uint32_t count);
};

}  // namespace esd::storage
