// The store's two helper threads, both off the append path:
//  - Preallocator keeps one zero-filled spare segment ready (DATA/segments/spare-N.tmp), so
//    the writer never grows a file (fdatasync of a growing file also commits the journal).
//  - TaskQueue runs jobs in order on its own thread: writing the index file of a segment
//    that was just sealed.
#pragma once

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

  std::filesystem::path SparePath(uint64_t n) const;

  const std::filesystem::path dir_;
  const uint64_t segment_size_;
  uint64_t next_spare_ = 0;  // names spare-N.tmp; a taken spare is never touched again
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
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
