// The store's two helper threads, both off the append path:
//  - Preallocator keeps one zero-filled spare segment ready, so the writer never grows a
//    file (fdatasync of a growing file also commits the journal). A spare is made as
//    DATA/segments/spare-N.tmp and renamed to spare-N.ready once zero-filled and synced; a
//    ready spare of the right size survives restarts, anything else is removed.
//  - TaskQueue runs jobs in order on its own thread: writing the index file of a segment
//    that was just sealed.
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
  Preallocator(std::filesystem::path segments_dir, uint64_t segment_size);
  ~Preallocator();
  Preallocator(const Preallocator&) = delete;
  Preallocator& operator=(const Preallocator&) = delete;

  // Hands over the spare file, waiting while one is being made. If the last attempt failed
  // (a full disk), tries once more before giving up, so a write resumes as soon as space
  // returns. The caller renames the file; the next spare (under another name) starts at once.
  struct Spare {
    File file;
    std::filesystem::path path;
  };
  Result<Spare> Take();

 private:
  void Run();

  std::filesystem::path SparePath(uint64_t n, const char* suffix) const;
  // Adopts a ready spare of the right size left by an earlier run; removes the others.
  void AdoptLeftovers();

  const std::filesystem::path dir_;
  const uint64_t segment_size_;
  uint64_t next_spare_ = 0;  // names spare-N; a taken spare is never touched again
  uint64_t adopted_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};  // also read by a zero-fill in progress, unlocked
  bool want_spare_ = true;  // the thread should make one
  bool ready_ = false;
  std::optional<Status> failed_;  // the last attempt's error
  std::thread thread_;
};

class TaskQueue {
 public:
  TaskQueue();
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
