#include "storage/background.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "storage/segment.h"

// Threads: Run() is the filler; Take, Follow, WriterAt and WaitFilled are called by the
// writer thread.

namespace esd::storage {

Preallocator::Preallocator(std::filesystem::path segments_dir, uint64_t segment_size, uint64_t fill_ahead)
    : dir_(std::move(segments_dir)),
      segment_size_(segment_size),
      fill_ahead_(std::max<uint64_t>(fill_ahead, 8192)),
      fill_step_(fill_ahead_ / 2) {
  AdoptLeftovers();
  thread_ = std::thread([this] { Run(); });
  NameThread(thread_, "esd-prealloc");
}

std::filesystem::path Preallocator::SparePath(uint64_t n, const char* suffix) const {
  return dir_ / ("spare-" + std::to_string(n) + suffix);
}

void Preallocator::AdoptLeftovers() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("spare-", 0) != 0) continue;
    const bool ready = entry.path().extension() == ".ready";
    uint64_t n = std::strtoull(name.c_str() + 6, nullptr, 10);
    next_spare_ = std::max(next_spare_, n + 1);
    if (ready && !ready_ && entry.file_size(ec) == segment_size_) {
      ready_ = true;
      adopted_ = n;
      continue;
    }
    std::filesystem::remove(entry.path(), ec);
  }
  if (ready_) {  // hand out the adopted one first: Take() opens SparePath(next_spare_)
    std::filesystem::rename(SparePath(adopted_, ".ready"), SparePath(next_spare_, ".ready"), ec);
    if (ec) ready_ = false;
  }
}

Preallocator::~Preallocator() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Preallocator::FillWanted() const {
  const uint64_t filled = filled_.load(std::memory_order_relaxed);
  if (active_size_ == 0 || fill_failed_.has_value() || filled >= active_size_) return false;
  return need_ > filled || writer_end_.load(std::memory_order_relaxed) + fill_ahead_ >= filled + fill_step_;
}

bool Preallocator::SpareWanted() const {
  if (ready_ || making_) return false;
  if (want_spare_) return true;
  return !failed_.has_value() && !spare_for_active_ && active_size_ > 0 &&
         writer_end_.load(std::memory_order_relaxed) * 2 >= active_size_;
}

void Preallocator::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || FillWanted() || SpareWanted(); });
    if (stop_) return;
    if (FillWanted()) {  // first: the writer needs these bytes before it needs a spare
      lock.unlock();
      FillStep();
      lock.lock();
      continue;
    }
    making_ = true;
    want_spare_ = false;
    spare_for_active_ = true;
    lock.unlock();
    MakeSpare();
    lock.lock();
  }
}

void Preallocator::FillStep() {
  std::filesystem::path path;
  uint64_t generation, from, target;
  {
    std::lock_guard lock(mu_);
    path = active_path_;
    generation = active_generation_;
    from = filled_.load(std::memory_order_relaxed);
    const uint64_t wanted = std::max(writer_end_.load(std::memory_order_relaxed), need_) + fill_ahead_;
    target = std::min({active_size_, wanted, from + fill_step_});
  }
  // Only bytes at or past filled_ are written, and the writer writes only below it (or
  // waits): the two never touch the same bytes.
  Status s;
  if (active_file_generation_ != generation || !active_file_.valid()) {
    auto f = File::Open(path, O_RDWR);
    if (f.ok()) {
      active_file_ = std::move(f).value();
      active_file_generation_ = generation;
    } else {
      s = f.status();
    }
  }
  // Each chunk is written back before the next is written: the writer's fdatasync on this
  // file flushes every dirty page of it, so zeros left dirty here would be flushed (and
  // waited for) by an append. The closing fdatasync then commits only the allocation.
  //
  // The zeros go in 128 KiB writes: a write holds the file's inode lock, which the writer's
  // own pwrite needs, and in the VM this was measured on, a write into fresh page-cache pages
  // costs ~1.3 ns per byte (the host backs the memory on first touch): a 1 MiB write held the
  // writer back up to ~1.4 ms. Written back per 1 MiB still: per 128 KiB, the filler fell
  // behind the writer under W3 (docs/performance.md).
  constexpr uint64_t kChunk = 1 << 20;  // also: checks for stop between chunks
  constexpr uint64_t kWrite = 128 << 10;
  for (uint64_t off = from; s.ok() && off < target; off += kChunk) {
    if (stop_.load(std::memory_order_relaxed)) return;
    const uint64_t n = std::min(kChunk, target - off);
    for (uint64_t w = 0; s.ok() && w < n; w += kWrite) s = active_file_.WriteZeros(off + w, std::min(kWrite, n - w));
    if (s.ok()) s = active_file_.WriteBack(off, n);
  }
  if (s.ok()) s = active_file_.DataSync();
  {
    std::lock_guard lock(mu_);
    if (generation == active_generation_) {
      if (s.ok()) {
        filled_.store(target, std::memory_order_release);
        fill_failed_.reset();
      } else {
        fill_failed_ = s;
      }
    }
  }
  cv_.notify_all();
}

void Preallocator::MakeSpare() {
  const auto path = SparePath(next_spare_, ".tmp");
  const auto ready = SparePath(next_spare_, ".ready");
  Status s = CreateSegmentFile(path, segment_size_, std::min(fill_ahead_, segment_size_), &stop_);
  if (s.ok()) s = RenameFile(path, ready);
  if (s.ok()) s = SyncDirectory(dir_);
  {
    std::lock_guard lock(mu_);
    making_ = false;
    if (s.ok()) {
      ready_ = true;
      ready_is_whole_ = false;
      failed_.reset();
    } else {
      failed_ = s;
    }
  }
  cv_.notify_all();
}

void Preallocator::Follow(std::filesystem::path path, uint64_t size, uint64_t filled, uint64_t writer_end) {
  {
    std::lock_guard lock(mu_);
    active_path_ = std::move(path);
    active_size_ = size;
    ++active_generation_;
    filled_.store(std::min(filled, size), std::memory_order_release);
    writer_end_.store(writer_end, std::memory_order_relaxed);
    need_ = 0;
    fill_failed_.reset();
    spare_for_active_ = false;
  }
  active_size_seen_.store(size, std::memory_order_relaxed);
  spare_asked_ = false;
  cv_.notify_all();
}

void Preallocator::WriterAt(uint64_t end) {
  writer_end_.store(end, std::memory_order_relaxed);
  const uint64_t filled = filled_.load(std::memory_order_acquire);
  const bool top_up = end + fill_ahead_ >= filled + fill_step_ && filled < active_size_seen_.load(std::memory_order_relaxed);
  const bool spare = !spare_asked_ && end * 2 >= active_size_seen_.load(std::memory_order_relaxed);
  if (!top_up && !spare) return;
  if (spare) spare_asked_ = true;
  {
    std::lock_guard lock(mu_);  // so that the filler, between its check and its wait, misses nothing
  }
  cv_.notify_all();
}

Status Preallocator::WaitFilled(uint64_t end) {
  if (end <= filled()) return Status::Ok();
  std::unique_lock lock(mu_);
  need_ = std::max(need_, end);
  fill_failed_.reset();  // try again: space may have been freed since
  cv_.notify_all();
  cv_.wait(lock, [&] {
    return stop_ || filled_.load(std::memory_order_relaxed) >= end || fill_failed_.has_value();
  });
  need_ = 0;
  if (filled_.load(std::memory_order_relaxed) >= end) return Status::Ok();
  if (fill_failed_.has_value()) return *fill_failed_;
  return Status::Closed("store is closing");
}

Result<Preallocator::Spare> Preallocator::Take() {
  std::unique_lock lock(mu_);
  if (!ready_ && !making_) {
    failed_.reset();  // (again, after a failure: space may have been freed since)
    want_spare_ = true;
    cv_.notify_all();
  }
  cv_.wait(lock, [&] { return stop_ || ready_ || (failed_.has_value() && !want_spare_ && !making_); });
  if (!ready_) {
    if (failed_.has_value()) return *failed_;
    return Status::Closed("store is closing");
  }
  Spare spare{File(), SparePath(next_spare_, ".ready"),
              ready_is_whole_ ? segment_size_ : std::min(fill_ahead_, segment_size_)};
  auto f = File::Open(spare.path, O_RDWR);
  if (!f.ok()) return f.status();
  spare.file = std::move(f).value();
  ready_ = false;
  ++next_spare_;
  spare_for_active_ = true;  // the next one is made for the segment this one becomes
  return spare;
}

bool Preallocator::Offer(const std::filesystem::path& retired) {
  {
    std::lock_guard lock(mu_);
    // Only a spare that is wanted now (the writer is past half of the active segment, or a
    // roll waits): kept any earlier, a recycled spare would hold a whole segment of blocks
    // that the scavenge should have given back.
    if (ready_ || making_ || stop_ || !SpareWanted()) return false;
    making_ = true;  // the thread makes none meanwhile
  }
  const auto ready = SparePath(next_spare_, ".ready");  // only Take and MakeSpare move next_spare_
  Status s;
  auto f = File::Open(retired, O_RDWR);
  if (!f.ok()) s = f.status();
  if (s.ok()) {
    auto size = f->Size();
    if (!size.ok()) s = size.status();
    else if (*size != segment_size_) s = Status::InvalidArgument("not this store's segment size");
  }
  // Every byte overwritten, written back as it goes (as FillStep does, so an append's
  // fdatasync never has these pages to flush), then synced before the name says "spare".
  constexpr uint64_t kChunk = 1 << 20;
  for (uint64_t off = 0; s.ok() && off < segment_size_; off += kChunk) {
    if (stop_.load(std::memory_order_relaxed)) s = Status::Closed("store is closing");
    const uint64_t n = std::min(kChunk, segment_size_ - off);
    if (s.ok()) s = f->WriteZeros(off, n);
    if (s.ok()) s = f->WriteBack(off, n);
  }
  if (s.ok()) s = f->DataSync();
  if (s.ok()) s = RenameFile(retired, ready);
  if (s.ok()) s = SyncDirectory(dir_);
  {
    std::lock_guard lock(mu_);
    making_ = false;
    if (s.ok()) {
      ready_ = true;
      ready_is_whole_ = true;
      failed_.reset();
    } else {
      want_spare_ = true;  // a Take may have waited on this one: make one the usual way
    }
  }
  cv_.notify_all();
  return s.ok();
}

void NameThread(std::thread& thread, const char* name) {
  char cut[16] = {};
  std::strncpy(cut, name, sizeof(cut) - 1);
  (void)::pthread_setname_np(thread.native_handle(), cut);
}

TaskQueue::TaskQueue(const char* thread_name)
    : thread_([this] {
        std::unique_lock lock(mu_);
        while (true) {
          cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
          if (jobs_.empty()) return;  // stop_ and nothing left
          auto job = std::move(jobs_.front());
          jobs_.pop_front();
          lock.unlock();
          job();
          lock.lock();
        }
      }) {
  NameThread(thread_, thread_name);
}

TaskQueue::~TaskQueue() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TaskQueue::Post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
}

}  // namespace esd::storage
