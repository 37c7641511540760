#include "storage/stream_directory.h"

#include <algorithm>

namespace esd::storage {

namespace {

// `recent_` is merged into `sorted_` once it holds more than a quarter as many names (and
// at least this many): each merge then pays for the additions since the last one.
constexpr size_t kMergeAtLeast = 1024;

bool ByName(const StreamDirectory::Entry& a, const StreamDirectory::Entry& b) { return a.name < b.name; }
bool SameName(const StreamDirectory::Entry& a, const StreamDirectory::Entry& b) { return a.name == b.name; }
bool NameBefore(const StreamDirectory::Entry& a, std::string_view name) { return a.name < name; }
bool NameAfter(std::string_view name, const StreamDirectory::Entry& a) { return name < a.name; }

}  // namespace

StreamDirectory::StreamDirectory(BaseSource base) : base_(std::move(base)) {}

void StreamDirectory::Add(std::string_view name) {
  std::lock_guard lock(pending_mu_);
  pending_.push_back(name);
}

void StreamDirectory::AddCopy(std::string_view name) {
  std::lock_guard lock(pending_mu_);
  pending_.push_back(copies_.emplace_back(name));
}

void StreamDirectory::CatchUpLocked() {
  if (!built_) {
    const std::vector<std::string_view> base = base_();
    sorted_.reserve(base.size());
    for (size_t i = 0; i < base.size(); ++i) sorted_.push_back({base[i], static_cast<uint32_t>(i)});
    std::sort(sorted_.begin(), sorted_.end(), ByName);
    sorted_.erase(std::unique(sorted_.begin(), sorted_.end(), SameName), sorted_.end());
    built_ = true;
  }
  std::vector<std::string_view> added;
  {
    std::lock_guard lock(pending_mu_);
    added.swap(pending_);
  }
  for (std::string_view name : added) {
    auto at = std::lower_bound(sorted_.begin(), sorted_.end(), name, NameBefore);
    if (at == sorted_.end() || at->name != name) recent_.insert(name);
  }
  if (recent_.size() > std::max(kMergeAtLeast, sorted_.size() / 4)) {
    std::vector<Entry> merged;
    merged.reserve(sorted_.size() + recent_.size());
    auto a = sorted_.begin();
    for (std::string_view name : recent_) {
      for (; a != sorted_.end() && a->name < name; ++a) merged.push_back(*a);
      merged.push_back({name, kNotInBase});
    }
    merged.insert(merged.end(), a, sorted_.end());
    sorted_ = std::move(merged);
    recent_.clear();
  }
}

StreamDirectory::Listing StreamDirectory::Page(std::string_view prefix, std::string_view after, size_t limit) {
  std::lock_guard lock(mu_);
  CatchUpLocked();
  // Names with a prefix are one run in name order, so the page starts at the prefix or just
  // past `after`, whichever is later, and ends at the first name without the prefix.
  const bool past_after = after >= prefix;
  auto a = past_after ? std::upper_bound(sorted_.begin(), sorted_.end(), after, NameAfter)
                      : std::lower_bound(sorted_.begin(), sorted_.end(), prefix, NameBefore);
  auto b = past_after ? recent_.upper_bound(after) : recent_.lower_bound(prefix);
  Listing out;
  out.names.reserve(std::min<size_t>(limit, 1024) + 1);
  // One name more than asked: whether another follows is then known.
  while (out.names.size() <= limit) {
    Entry next;
    if (a != sorted_.end() && (b == recent_.end() || a->name < *b)) {
      next = *a++;
    } else if (b != recent_.end()) {
      next = {*b++, kNotInBase};
    } else {
      break;
    }
    if (!next.name.starts_with(prefix)) break;
    out.names.push_back(next);
  }
  out.more = out.names.size() > limit;
  if (out.more) out.names.pop_back();
  return out;
}

size_t StreamDirectory::Count() {
  std::lock_guard lock(mu_);
  CatchUpLocked();
  return sorted_.size() + recent_.size();
}

}  // namespace esd::storage
