// esd::storage::Store, the public API of the log.
//
// A Store owns one data directory (see docs/storage.md for the layout):
//
//   auto store = Store::Open("data", Options{});          // recovers, takes DATA/LOCK
//   store.value()->Append("order-1", ExpectedVersion::NoStream(), events,
//                         [](AppendResult r) { ... });     // runs once durable
//   auto events = store.value()->ReadStream("order-1", StreamVersion(0), 100);
//
// Threads. Append, the reads and GetStreamInfo may be called from any thread, at the same
// time. One writer thread owns the tail of the log and does group commit: it takes every
// queued append, checks expected versions in order, writes the batches with one pwrite,
// calls fdatasync once, publishes the durable position, then runs the durable observers and
// the append callbacks, in commit order, on the writer thread. Callbacks must be quick (the
// next group waits for them) and must not call AppendSync (it would wait for the thread it
// runs on); calling Append from a callback is fine and is the fast way to keep appending.
// AppendSync from many threads works but pays a thread wake-up per append.
//
// Durable. With Durability::kAlways (the default) an append's callback runs only after the
// bytes are on disk (fdatasync), and readers see an event only once it is durable. With
// kInterval and kNever appends are acknowledged and visible once written to the page cache;
// a machine crash (not a process crash) may lose the last interval of acknowledged appends.
//
// Lifetimes. EventView fields point into memory-mapped segments and stay valid until the
// Store is destroyed, or, for a segment that a scavenge rewrote, for at least
// Options::scavenge_retire_after (5 s) after the rewrite, when the old mapping goes: a
// caller that keeps events longer copies them (the daemon copies them out at once; views
// from ReadAll with a ReadBuffer live in the buffer and are not affected). Destroying the Store finishes every queued append (each callback runs)
// and releases the directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "storage/format.h"
#include "storage/histogram.h"
#include "storage/lifecycle.h"
#include "storage/status.h"
#include "storage/types.h"

namespace esd::storage {

using EventView = format::EventView;

enum class Durability : uint8_t { kAlways, kInterval, kNever };

struct DurabilityMode {
  Durability mode = Durability::kAlways;
  std::chrono::milliseconds interval{0};  // kInterval only
  // Parses "always", "never" or "interval=MS" (the daemon's --fsync flag).
  static Result<DurabilityMode> Parse(std::string_view text);
  std::string ToString() const;
};

// What the store tells its owner as it runs, for the owner's log: storage itself never
// prints (docs/storage.md, "Events for the log"). The writer thread calls these after it
// has answered the group's appends, so they are off the appends' path, and only on the
// rare events below; an implementation must be quick and must not call into the Store.
// Damage met by a read is no event here: the reader gets it as a typed kCorruption with
// its position, and says it (the daemon's DamageLog).
struct ScavengeStatus;

class EventListener {
 public:
  virtual ~EventListener() = default;
  // Appends began to fail with kOutOfSpace; `why` is the first such error. Once until
  // OnSpaceAgain.
  virtual void OnOutOfSpace(const Status& why) { (void)why; }
  // An append was written again after OnOutOfSpace.
  virtual void OnSpaceAgain() {}
  // The fdatasync of a group took `micros`, at least Options::slow_sync_micros.
  virtual void OnSlowSync(uint64_t micros) { (void)micros; }
  // The store takes no more writes (an I/O error; a restart recovers). Once.
  virtual void OnWritesStopped(const Status& why) { (void)why; }
  // A scavenge began, and ended (finished, stopped or failed: status.state says which).
  // Called on the scavenge's own thread, not the writer's.
  virtual void OnScavengeStarted(const ScavengeStatus& status) { (void)status; }
  virtual void OnScavengeFinished(const ScavengeStatus& status) { (void)status; }
};

struct Options {
  // Told of disk full, slow syncs and a stop of writes; must outlive the Store. None: nullptr.
  EventListener* listener = nullptr;
  // A group's fdatasync that takes this long or longer is told to the listener (100 ms: a
  // thousand times what a sync of a preallocated segment takes on an idle disk).
  uint64_t slow_sync_micros = 100'000;
  // Size of each new segment file; existing segments keep the size they were created with.
  uint64_t segment_size = 256ull << 20;
  DurabilityMode durability;
  // Largest encoded event (header, names, metadata and data). At most kMaxEventSizeLimit.
  uint32_t max_event_size = 1u << 20;
  uint32_t max_events_per_append = 10'000;
  // Most bytes one group commit writes before it syncs; bounds latency under load.
  uint32_t max_group_bytes = 8u << 20;
  // Most bytes (encoded) of appends waiting for the writer. An append that would queue past
  // it is refused at once with kOverloaded (retryable), so that callers producing faster
  // than the disk takes cannot grow the queue without bound. One append is always taken into
  // an empty queue, whatever its size.
  uint64_t max_queued_bytes = 256ull << 20;
  // Bytes of the active segment kept zero-filled (written and synced) ahead of the writer,
  // topped up in steps of half this (storage/background.h; docs/storage.md, "Preallocation").
  // Tests make it small so that every part of the filling meets their faults and crashes.
  uint64_t fill_ahead = 16ull << 20;
  // How long a segment that scavenge replaced stays mapped after the swap: EventViews into
  // it (from ReadStream, or ReadAll without a ReadBuffer) stay valid this long, then the
  // mapping goes and the old file's blocks are freed (storage/scavenge.h). A scavenge says
  // finished only after that, so it takes at least this long. The daemon's readers copy
  // events out within one turn of its event loop.
  std::chrono::milliseconds scavenge_retire_after{5'000};
  // Most bytes per second a scavenge reads (0: no cap). Its I/O also runs at the lowest
  // best-effort priority; docs/storage.md ("Scavenge") says what that left appends.
  uint64_t scavenge_read_bytes_per_second = 0;
  // Damage before the tail of the log stops Open with kCorruption; the way past it is
  // `esctl salvage --data-dir DIR` (storage/salvage.h), which moves the damaged part aside.
};

inline constexpr uint32_t kMaxEventSizeLimit = 16u << 20;

// One event to append. Owned bytes, so a request can cross to the writer thread.
struct EventData {
  EventId id;                 // not nil; unique within the store
  std::string type;           // 1..255 bytes of UTF-8
  std::string content_type;   // 0..255 bytes, e.g. "application/json"
  std::string metadata;
  std::string data;
};

// An append's events with all their bytes in one buffer: what the daemon makes of an RPC
// request. One allocation per append instead of one per field (2-3 per event), and the
// writer thread frees one block: under W3 the per-field strings, allocated on the event loop
// and freed on the writer, were the event loop's costliest call (docs/performance.md).
struct PackedEvents {
  std::unique_ptr<char[]> bytes;
  std::vector<format::EventFields> events;  // views into `bytes`
};

struct AppendOk {
  StreamVersion first_version;
  StreamVersion last_version;
  GlobalPosition first_position;
  GlobalPosition last_position;  // inclusive
  TimestampMicros timestamp = 0;
  // True when these exact events had been written before (an idempotent retry): the
  // positions are the original ones and nothing new was written.
  bool already_written = false;
};

using AppendResult = Result<AppendOk>;
using AppendCallback = std::function<void(AppendResult)>;

struct StreamInfo {
  StreamVersion last_version;
  uint64_t event_count = 0;  // versions 0..last: removed events included
  GlobalPosition last_position;
  TimestampMicros last_write = 0;
  // The first version a read returns (storage/lifecycle.h): last_version + 1 when nothing
  // remains (a soft-deleted or wholly truncated stream), by truncate_before and max_count; an
  // event max_age removed may still lie at or after it.
  StreamVersion first_kept;
  bool hard_deleted = false;
  // The stream has metadata ("$$stream" has an event).
  bool has_metadata = false;
};

// A stream's metadata (storage/lifecycle.h) and the version of "$$stream" it was written at;
// nullopt when "$$stream" has no event (the defaults: nothing removed).
struct StreamMetadataRead {
  StreamMetadata metadata;
  std::optional<StreamVersion> metadata_version;
};

// One page of Store::ListStreams.
struct StreamListPage {
  std::vector<std::pair<std::string, StreamInfo>> streams;  // in name order
  bool more = false;  // another stream with the prefix sorts after the last one here
};

enum class Direction : uint8_t { kForward, kBackward };

// What Open found and did. Nothing here is an error; a daemon logs it.
struct RecoveryReport {
  uint64_t segments = 0;
  GlobalPosition end_position;        // = number of events in the store
  uint64_t tail_bytes_scanned = 0;    // bytes of the active segment checked at open
  uint64_t index_files_rebuilt = 0;   // sealed segments whose .idx was missing or damaged
  // Bytes cut from the end of the log: from the first batch that does not verify to the
  // last non-zero byte, when no later intact batch vouches that it had been durable.
  uint64_t torn_bytes_discarded = 0;
  FileOffset torn_at;
  // One line for each thing Open repaired (a tail cut, an index rebuilt), in the words
  // VerifyStore uses for the same finding (storage/verify.h).
  std::vector<std::string> notes;
};

struct StoreStats {
  Histogram::Snapshot fsync_micros;   // latency of each fdatasync of a group
  Histogram::Snapshot group_appends;  // appends per group commit
  uint64_t appends = 0;          // acknowledged appends (not counting idempotent retries)
  uint64_t events_written = 0;
  uint64_t bytes_written = 0;
  uint64_t groups = 0;           // group commits
  uint64_t fsyncs = 0;
  uint64_t segments_sealed = 0;
  uint64_t index_files_written = 0;
  // Batches found damaged since open (each counted once), by reads, backups and the
  // background check of sealed segments. Each was refused to its caller with kCorruption.
  uint64_t corruption_found = 0;
  // Bytes of log in the segment files: from each segment's start (its header) to the end of
  // its last batch. What a backup copies; preallocated zeros are not counted.
  uint64_t log_bytes = 0;
  // Disk blocks the segment and spare files hold (st_blocks * 512): the log plus the zeros
  // kept ahead of the writer (docs/storage.md, "Preallocation"). Index files not included.
  uint64_t allocated_bytes = 0;
  // Appends that waited for the zero-filling to catch up (the writer outran it).
  uint64_t fill_waits = 0;
};

// What the writer last learned about writing, for a readiness check (GET /ready). Read
// from any thread; it lags the writer by at most the group in progress.
struct WriteState {
  // Set for good after an I/O error (EIO, a failed fdatasync ...): the store accepts no more
  // writes until it is reopened. The message says what failed.
  Status failed;
  // The last write that failed for lack of space (kOutOfSpace), until a later group is
  // written: writes resume by themselves once space is freed, so this clears on the first
  // append that then succeeds, not before.
  Status out_of_space;
};

// What the background scavenge (Store::StartScavenge) is doing or last did.
struct ScavengeStatus {
  enum class State : uint8_t { kIdle, kRunning, kStopping, kFinished, kStopped, kFailed };
  State state = State::kIdle;      // kIdle: none since open
  TimestampMicros started_micros = 0;
  // 0 while running; when the last segment was done. The state changes up to
  // Options::scavenge_retire_after later, once the replaced files are released.
  TimestampMicros finished_micros = 0;
  uint64_t segments_total = 0;     // sealed segments it will look at
  uint64_t segments_done = 0;
  uint64_t segments_rewritten = 0;
  uint64_t bytes_total = 0;        // bytes of those segments (log bytes)
  uint64_t bytes_read = 0;
  uint64_t bytes_reclaimed = 0;    // disk blocks freed so far
  uint64_t events_removed = 0;     // removed events whose bytes are gone
  // Bytes per second the run reads at most: Options::scavenge_read_bytes_per_second as it
  // began (0: no cap). Says why a slow run is slow.
  uint64_t read_rate_cap = 0;
  Status error;                    // kFailed: why
  static const char* StateName(State s);
};

// A backup's directory holds this file from the start of the copy until everything in it is
// on disk. Open refuses a directory that holds it, and verify names it: an interrupted copy
// holds a prefix of the log that would otherwise look like a whole store.
inline constexpr char kBackupInProgressFile[] = "BACKUP-IN-PROGRESS";

// Creates the marker in `dest` (durably), and removes it (durably) once all of the backup
// is on disk.
Status MarkBackupInProgress(const std::filesystem::path& dest);
Status FinishBackup(const std::filesystem::path& dest);

// Bytes of the segment and index files of the store in `dir` (its disk use, snapshots aside).
uint64_t StoreFileBytes(const std::filesystem::path& dir);
// Disk blocks (st_blocks * 512) of the segment files and spares of the store in `dir`:
// StoreStats::allocated_bytes, for a store that is not open.
uint64_t StoreAllocatedBytes(const std::filesystem::path& dir);

// Memory that ReadAll copies log bytes into (see ReadAll). Reused from call to call, so a
// scan does not fault in fresh pages each time; Release() gives it back (a subscription
// that has caught up holds none). Not thread-safe: one reader at a time.
class ReadBuffer {
 public:
  // Bytes read ahead per pread: a batch is never split, so one larger than this gets a
  // read of its own size.
  static constexpr size_t kChunkBytes = 256u << 10;
  // A larger batch is read from the mapping, in place: its reader may want a few events only.
  static constexpr size_t kLargestCopiedBatch = 4u << 20;

  // A ReadAll with this buffer stops (at a batch boundary, once it has visited an event)
  // when it has read `max_bytes` into it: a filtered scan keeps every batch it read, since
  // the visitor may hold views into any of them. It holds at most `max_bytes` plus one
  // batch (of at most kLargestCopiedBatch) or one chunk.
  explicit ReadBuffer(size_t max_bytes = 4u << 20) : max_bytes_(max_bytes) {}

  // Drops what the last call read; keeps the memory for the next.
  void Reset() {
    used_ = 0;
    taken_ = 0;
  }
  // Frees the memory.
  void Release() {
    chunks_.clear();
    Reset();
  }
  // Room for `bytes` that stays put until Reset: the next unused chunk, grown if too small.
  uint8_t* Take(size_t bytes);
  // Gives back what the last Take handed out (nothing may point into it any more).
  void GiveBackLast(size_t bytes) {
    --used_;
    taken_ -= bytes;
  }
  size_t held_bytes() const;       // memory kept
  size_t taken_bytes() const { return taken_; }  // handed out since Reset
  size_t max_bytes() const { return max_bytes_; }

 private:
  struct Chunk {
    std::unique_ptr<uint8_t[]> data;
    size_t size = 0;
  };
  size_t max_bytes_;
  std::vector<Chunk> chunks_;
  size_t used_ = 0;   // chunks handed out since Reset
  size_t taken_ = 0;  // bytes handed out since Reset
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& dir,
                                             const Options& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends `events` to `stream` as one atomic batch if `expected` holds. `done` runs exactly
  // once: on the writer thread when the batch is durable (or failed there), or on the
  // calling thread before Append returns when the request is invalid (kInvalidArgument)
  // or the store is closed.
  void Append(std::string stream, ExpectedVersion expected, std::vector<EventData> events,
              AppendCallback done);
  // The same with the events packed in one buffer, which the request owns until `done`.
  void Append(std::string stream, ExpectedVersion expected, PackedEvents events, AppendCallback done);
  // Append to a system stream: the daemon's own records (an audit trail). `stream` must start
  // with '$' (reserved: Append refuses it) but not with "$$" (stream metadata, written only by
  // the lifecycle calls below); everything else is as Append.
  void AppendSystem(std::string stream, ExpectedVersion expected, std::vector<EventData> events,
                    AppendCallback done);
  // Append, then wait for the result. Not from an append callback.
  AppendResult AppendSync(std::string stream, ExpectedVersion expected,
                          std::vector<EventData> events);

  // Up to `max_count` durable events of `stream`, from version `from` on (kForward) or down
  // (kBackward), never one that was removed (storage/lifecycle.h): a forward read from below
  // the first kept version starts there. kNotFound if the stream has no event left (never
  // written, soft-deleted, truncated or expired to its end); kStreamDeleted if it was
  // hard-deleted; an empty vector if `from` is past the end going forward.
  // O(count + log(events in store)).
  Result<std::vector<EventView>> ReadStream(std::string_view stream, StreamVersion from,
                                            size_t max_count,
                                            Direction direction = Direction::kForward) const;

  // Durable events of $all with position >= `from`, in order, without the removed ones
  // (storage/lifecycle.h): positions stay as assigned, so a reader sees holes where events
  // were removed, and goes on from one past the last position it got. `visit` returns false
  // to stop. Returns the number of events visited. O(count + removed events skipped +
  // log(events in store)).
  //
  // `skipped_to`, when given, is set to one past each removed event the scan passes over
  // (left alone when it passes none): a reader that got nothing more, or whose last event
  // lies below it, goes on from there, rather than scanning the same removed events again.
  Result<size_t> ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                         GlobalPosition* skipped_to = nullptr) const;
  Result<std::vector<EventView>> ReadAll(GlobalPosition from, size_t max_count) const;
  // The same, but the visited events' bytes are first read (pread) into `copy`, and their
  // views point there: valid until the next ReadAll with `copy`, or its Release(). For long
  // sequential scans (a catch-up subscription, a page of $all): on the VM this was measured
  // on, touching a large mapped log cost ~170 ns per 300-byte event (~2 us per 4 KiB page,
  // even with the pages mapped already), reading it through pread into a reused buffer
  // ~23 ns. Each batch is verified before any of its events is visited, as above.
  Result<size_t> ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                         ReadBuffer& copy, GlobalPosition* skipped_to = nullptr) const;
  // Events as the log holds them: `count` event records (storage/format.h, EventHeader and
  // its fields, each padded to a multiple of 8) one after the other, at positions first,
  // first + 1, ..., all of `stream`.
  struct RecordRun {
    std::span<const uint8_t> records;
    GlobalPosition first;
    uint32_t count = 0;
    std::string_view stream;

    // The longest leading part of the run with at most `max_count` events in at most
    // `max_bytes` bytes: possibly none.
    RecordRun Front(uint64_t max_count, uint64_t max_bytes) const;
  };
  // The same scan through `copy`, for a reader that serves records as they lie (a
  // subscription or a page of $all that asked for records): what a batch holds from `from`
  // on is one run, verified as above and checked record by record (sizes, positions), with
  // no view built per event. A batch of which some events are removed gives a run per kept
  // event. `take` returns how many of the run's events it takes, from its first (see
  // RecordRun::Front): all of them to go on; fewer stop the scan there, for the caller to go
  // on from run.first plus that number later. Returns the number of events taken; a run
  // counts whole towards `max_count`, so the scan may take up to a batch more than it.
  Result<size_t> ReadAllRecords(GlobalPosition from, size_t max_count,
                                const std::function<uint32_t(const RecordRun&)>& take, ReadBuffer& copy,
                                GlobalPosition* skipped_to = nullptr) const;
  // The same for a reader that folds a few streams out of $all, such as the order
  // projection: a batch holds one stream, so a batch of a stream `wants` refuses is passed
  // whole without parsing its events (it is still verified: damage there stops the scan as
  // before). Passed events, like removed ones, are not visited and move `passed`; they count
  // towards `max_count`, so that one call's work stays bounded. Through `copy` when given,
  // as above, else through the mapping.
  struct Passed {
    GlobalPosition end;           // one past the last event passed over (removed or not wanted)
    TimestampMicros timestamp = 0;  // that event's commit time
  };
  Result<size_t> ReadAll(GlobalPosition from, size_t max_count, const std::function<bool(const EventView&)>& visit,
                         const std::function<bool(std::string_view stream)>& wants, Passed* passed,
                         ReadBuffer* copy = nullptr) const;

  // nullopt when the stream has no durable event. O(1) amortised. A deleted or truncated
  // stream has its info still (versions are never reused): see first_kept, hard_deleted.
  std::optional<StreamInfo> GetStreamInfo(std::string_view stream) const;

  // ---- Lifecycle: metadata, delete, truncate (storage/lifecycle.h, docs/storage.md) ----
  // Each writes one event to "$$stream" through the writer, like an append: `done` gets the
  // AppendOk of that event once it is durable, and from then on no read returns what it
  // removed. Typed outcomes: kInvalidArgument for a bad name (names starting with '$' are
  // reserved) or impossible metadata, kWrongExpectedVersion, kNotFound for deleting or
  // truncating a stream that has no event, kStreamDeleted for any of them on a hard-deleted
  // stream. Each changes nothing when it fails.

  // `expected` is checked against "$$stream" (the metadata's own version).
  void SetStreamMetadata(std::string stream, ExpectedVersion expected, StreamMetadata metadata,
                         AppendCallback done);
  // `expected` is checked against the stream. Soft: the stream reads as not found until an
  // append recreates it; hard: never written or read again.
  void DeleteStream(std::string stream, ExpectedVersion expected, bool hard, AppendCallback done);
  // Removes the versions below `before` (at most last version + 1, else kInvalidArgument).
  void TruncateStream(std::string stream, StreamVersion before, AppendCallback done);
  AppendResult SetStreamMetadataSync(std::string stream, ExpectedVersion expected, StreamMetadata metadata);
  AppendResult DeleteStreamSync(std::string stream, ExpectedVersion expected, bool hard);
  AppendResult TruncateStreamSync(std::string stream, StreamVersion before);
  // kInvalidArgument for a bad name; the defaults when the stream never had metadata.
  Result<StreamMetadataRead> GetStreamMetadata(std::string_view stream) const;

  // Up to `limit` streams whose name starts with `prefix` and sorts after `after` ("" for the
  // first page), in name order, each with its info as it is at the call; `more` when another
  // such stream follows the page. The next page starts after the last name of this one, and
  // holds every stream created meanwhile that sorts there. O(limit + log streams) per page:
  // one tip read per stream listed (O(log streams) at worst, when a sealed segment had no
  // index file at open), plus O(log streams) for each stream created since the last page or
  // count. The first page or count after open also reads and sorts the newest index file's
  // names, once (storage/stream_directory.h). Never holds the lock that the writer publishes
  // under for more than 64 tip reads at a time, so a listing does not stall appends.
  StreamListPage ListStreams(std::string_view prefix, std::string_view after, size_t limit) const;

  // The number of streams: what paging through ListStreams("", ...) lists. O(1) amortised,
  // with the same first-call cost as ListStreams.
  size_t StreamCount() const;

  // One past the last durable event: the number of events readers can see.
  GlobalPosition DurablePosition() const;

  // One past the last event that is on disk (fdatasync'ed). With Durability::kAlways this is
  // DurablePosition(); with kInterval and kNever it may lag behind it. Anything derived from
  // the log and kept on disk (a snapshot) must cover nothing at or past this position.
  GlobalPosition SyncedPosition() const;

  // Makes every event written so far reach the disk (one fdatasync on the writer thread) and
  // returns once SyncedPosition() has reached what DurablePosition() was at the call. Blocks:
  // not from an append callback.
  Status Sync();

  // `observer` runs on the writer thread each time the durable position moves, with the
  // new value. Returns a handle for RemoveDurableObserver. Subscriptions build on this.
  uint64_t AddDurableObserver(std::function<void(GlobalPosition)> observer);
  void RemoveDurableObserver(uint64_t handle);

  // Copies a consistent prefix of the log into `dest` (created; it must not hold segments
  // yet): every event below the returned position, byte for byte, as segment and index
  // files that Open takes as they are. Appends may go on meanwhile; the copy holds what was
  // durable when it began. `progress(done, total)` in bytes. Blocks: not on an event loop.
  // `dest` carries kBackupInProgressFile until the copy is durable; a caller that put it
  // there first (to cover files of its own) removes it itself.
  Result<GlobalPosition> Backup(const std::filesystem::path& dest,
                                const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

  // ---- Scavenge (storage/scavenge.h, docs/storage.md "Scavenge") ----
  // Starts rewriting sealed segments without their removed events, on a thread of the
  // store, and returns at once. kInvalidArgument "a scavenge is running already" when one is.
  Status StartScavenge();
  // Asks a running scavenge to stop after the segment it is on; returns at once.
  void StopScavenge();
  ScavengeStatus GetScavengeStatus() const;

  const RecoveryReport& recovery() const;
  const Options& options() const;
  StoreStats stats() const;
  WriteState write_state() const;
  const std::filesystem::path& directory() const;

  class Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace esd::storage
