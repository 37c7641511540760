#include "storage/background.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "storage/segment.h"

namespace esd::storage {

Preallocator::Preallocator(std::filesystem::path segments_dir, uint64_t segment_size)
    : dir_(std::move(segments_dir)), segment_size_(segment_size) {
  AdoptLeftovers();
  thread_ = std::thread([this] { Run(); });
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
      want_spare_ = false;
      adopted_ = n;
      continue;
    }
    std::filesystem::remove(entry.path(), ec);
  }
  if (ready_) {  // hand out the adopted one first: Take() opens SparePath(next_spare_)
    std::filesystem::rename(SparePath(adopted_, ".ready"), SparePath(next_spare_, ".ready"), ec);
    if (ec) {
      ready_ = false;
      want_spare_ = true;
    }
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

void Preallocator::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || want_spare_; });
    if (stop_) return;
    want_spare_ = false;
    const auto path = SparePath(next_spare_, ".tmp");
    const auto ready = SparePath(next_spare_, ".ready");
    lock.unlock();
    Status s = CreateZeroFilledFile(path, segment_size_, &stop_);
    if (s.ok()) s = RenameFile(path, ready);
    if (s.ok()) s = SyncDirectory(dir_);
    lock.lock();
    if (s.ok()) {
      ready_ = true;
      failed_.reset();
    } else {
      failed_ = s;
    }
    cv_.notify_all();
  }
}

Result<Preallocator::Spare> Preallocator::Take() {
  std::unique_lock lock(mu_);
  if (!ready_ && failed_.has_value() && !want_spare_) {
    failed_.reset();  // try again now: space may have been freed since
    want_spare_ = true;
    cv_.notify_all();
  }
  cv_.wait(lock, [&] { return stop_ || ready_ || failed_.has_value(); });
  if (!ready_) {
    if (failed_.has_value()) return *failed_;
    return Status::Closed("store is closing");
  }
  Spare spare{File(), SparePath(next_spare_, ".ready")};
  auto f = File::Open(spare.path, O_RDWR);
  if (!f.ok()) return f.status();
  spare.file = std::move(f).value();
  ready_ = false;
  ++next_spare_;
  want_spare_ = true;
  cv_.notify_all();
  return spare;
}

TaskQueue::TaskQueue()
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
      }) {}

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
