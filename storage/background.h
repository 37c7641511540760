// The store's two helper threads, both off the append path:
//  - Preallocator zero-fills ahead of the writer and prepares the next segment:
//     * the active segment is a file of its full length whose first bytes are real, synced
//       zeros; the thread keeps fill_ahead bytes past the writer's end filled, in steps of at
//       most fill_ahead / 2, each synced, so the writer overwrites written blocks (fdatasync then
//       commits no metadata) without 256 MiB of zeros on disk from the start. Each 1 MiB of
//       zeros is written back before the next is written, so the writer's fdatasync (which
//       flushes every dirty page of the file) never has the filler's zeros to flush: without
//       that, W3's p99 rose from 16 to 21 ms (esbench, 16 clients x 100 events);
//     * the spare (the next segment) is made only once the writer is past half of the active
//       segment (or when a roll needs it): DATA/segments/spare-N.tmp, full length, its first
//       fill_ahead bytes zero-filled and synced, renamed to spare-N.ready. A ready spare of
//       the right size survives restarts, anything else is removed.
//    docs/storage.md ("Preallocation") says why the file has its full length from the start.
//  - TaskQueue runs jobs in order on its own thread: writing the index file of a segment
//    that was just sealed.
//
// Every thread of the daemon has a name (`top -H`, `ps -L -o tid,comm`, perf, gdb): the
// event loop keeps the process's, "esd"; the others are esd-writer, esd-prealloc,
// esd-index, esd-scavenge, esd-http, esd-jobs (OffLoopJobs) and the order service's
// esd-ord-snap and esd-proj-snap (snapshot writers).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "storage/file.h"
#include "storage/status.h"

namespace esd::storage {


class Preallocator {
 public:
  // `fill_ahead` (Options::fill_ahead): bytes kept zero-filled past the writer's end, and
  // the zero-filled start of each spare. The filler tops up once the writer is within half
  // of it, so it writes and syncs at most fill_ahead / 2 at a time.
  Preallocator(std::filesystem::path segments_dir, uint64_t segment_size, uint64_t fill_ahead);
  ~Preallocator();
  Preallocator(const Preallocator&) = delete;
  Preallocator& operator=(const Preallocator&) = delete;

  // Hands over the spare file, waiting while one is being made (and asking for one if none
  // was wanted yet). If the last attempt failed (a full disk), tries once more before giving
  // up, so a write resumes as soon as space returns. The caller renames the file; the next
  // spare (under another name) is made once the new segment is half full. Its first
  // min(fill_ahead, size) bytes are zero-filled and synced.
  struct Spare {
    File file;
    std::filesystem::path path;
    uint64_t zero_filled = 0;  // bytes from its start known to be written zeros, synced
  };
  Result<Spare> Take();

  // Segment recycling: a segment file that scavenge retired (nobody maps it any more) becomes
  // the next spare when one is wanted now (the writer is past half of the active segment, or
  // a roll waits for one) and none is ready or being made, and the file has this store's
  // segment size: it is zero-filled in full (overwrites of blocks it already has, so no old
  // byte stays on disk and the writer never allocates in it), synced and renamed to the
  // spare's name. Otherwise nothing is done. Returns whether it was taken; the caller removes
  // it if not. Blocks for the zero-fill; called by the scavenge thread.
  bool Offer(const std::filesystem::path& retired);

  // The active segment, at its final name, `size` bytes long, zero-filled and synced below
  // `filled`. The filler opens its own descriptor on it and keeps it filled ahead of the
  // end the writer reports.
  // `writer_end`: where the log ends in it. Writer thread.
  void Follow(std::filesystem::path path, uint64_t size, uint64_t filled, uint64_t writer_end);
  // Writer thread, after each write: the log in the active segment now ends at `end`.
  // Cheap (atomics) unless the filler should top up, then one lock to wake it.
  void WriterAt(uint64_t end);
  // Synced zeros end here in the active segment: the writer may write below it without
  // allocating a block.
  uint64_t filled() const { return filled_.load(std::memory_order_acquire); }
  // Writer thread, when a write would end past filled(): waits until the filler has filled
  // up to `end`. When the filler failed (a full disk), it tries again once; its error is
  // returned when that fails too (kOutOfSpace: nothing was written, retry later).
  Status WaitFilled(uint64_t end);

 private:
  void Run();
  bool FillWanted() const;   // mu_ held
  bool SpareWanted() const;  // mu_ held
  void FillStep();           // one step of at most fill_ahead / 2, synced
  void MakeSpare();

  std::filesystem::path SparePath(uint64_t n, const char* suffix) const;
  // Adopts a ready spare of the right size left by an earlier run; removes the others.
  void AdoptLeftovers();

  const std::filesystem::path dir_;
  const uint64_t segment_size_;
  const uint64_t fill_ahead_;
  const uint64_t fill_step_;
  uint64_t next_spare_ = 0;  // names spare-N; a taken spare is never touched again
  uint64_t adopted_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};  // also read by a zero-fill in progress, unlocked
  bool want_spare_ = false;  // Take() waits for one
  bool ready_ = false;
  bool making_ = false;      // the thread is making one
  bool spare_for_active_ = false;  // a spare was made (or taken) since Follow: no second one
  bool ready_is_whole_ = false;    // the ready spare is zero-filled in full (recycled)
  std::optional<Status> failed_;  // the last spare attempt's error

  // The active segment (mu_), and the filler's own descriptor of it (filler thread only).
  std::filesystem::path active_path_;
  uint64_t active_size_ = 0;
  uint64_t active_generation_ = 0;  // bumped by Follow
  File active_file_;
  uint64_t active_file_generation_ = 0;
  std::atomic<uint64_t> filled_{0};
  std::atomic<uint64_t> writer_end_{0};
  uint64_t need_ = 0;                  // mu_: an end the writer waits for
  std::optional<Status> fill_failed_;  // mu_: the last fill step's error
  std::atomic<uint64_t> active_size_seen_{0};  // active_size_, for WriterAt
  bool spare_asked_ = false;                    // writer thread: WriterAt woke the thread for a spare
  std::thread thread_;
};

// Names `thread`, as the threads above are named: called by whoever starts it, right after,
// so that the name is there once the starting call returns. Names longer than 15 characters
// are cut (the kernel's limit). Best effort: a failure leaves the name as it was.
void NameThread(std::thread& thread, const char* name);

class TaskQueue {
 public:
  explicit TaskQueue(const char* thread_name);
  ~TaskQueue();  // runs the jobs already queued, then stops
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;
  void Post(std::function<void()> job);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace esd::storage
