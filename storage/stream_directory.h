// StreamDirectory: every stream's name in name order, so that streams are listed a page at a
// time and counted without the store's lock (Store::Impl::mu_), which the writer needs
// exclusively to publish each group commit.
//
// Shape. The names are a sorted vector (`sorted_`) plus a sorted set of names added since it
// was made (`recent_`); the two never share a name, and a page merges them. The vector starts
// as the base: the names of the newest index file's tips (every stream up to the end of that
// segment), read by the first reader that needs the directory, not at open, so that open
// stays bounded by the unsealed tail. Everything else arrives through Add: the streams of the
// active segment and of sealed segments left without an index file at open, and each stream
// the writer creates. Added names wait in `pending_` until the next reader merges them.
// When `recent_` grows past a quarter of the vector it is merged into it, which costs
// O(names) once per that many additions, O(1) amortised each.
//
// Each name of the base keeps its place in what the base source returned, so that the store
// finds its tip without searching for it (Store::ListStreams).
//
// Costs. Add: O(1) under `pending_mu_` alone. Page: O(limit + log names) plus merging what
// was added since the last reader (O(log names) each). Count: O(1) plus that merge. The first
// reader reads and sorts the base: O(base log base), once, under the directory's own lock.
//
// Threads. Add and AddCopy from any thread (the writer, recovery); Page and Count from any
// thread. Add never waits for a reader: readers hold `pending_mu_` only to take the pending
// list. Lock order: `mu_`, then whatever the base source takes (the store's mu_, shared),
// then `pending_mu_`; Add may be called under the store's mu_.
//
// Lifetimes. The directory holds views: a name given to Add, and every name the base source
// returns, must stay valid and unchanged as long as the directory (the store keeps them in
// index file mappings and in the keys of `streams_`, neither of which is ever freed while it
// is open). AddCopy is for names whose storage does not last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace esd::storage {

class StreamDirectory {
 public:
  // The names of the base, in any order; called once, by the first reader.
  using BaseSource = std::function<std::vector<std::string_view>()>;

  static constexpr uint32_t kNotInBase = UINT32_MAX;
  struct Entry {
    std::string_view name;  // valid as long as the directory
    // Where the base source returned `name`; kNotInBase for a name that only Add gave.
    uint32_t base_index = kNotInBase;
  };

  explicit StreamDirectory(BaseSource base);
  StreamDirectory(const StreamDirectory&) = delete;
  StreamDirectory& operator=(const StreamDirectory&) = delete;

  // A stream that may not be in the base (adding one that is, or adding twice, is harmless).
  void Add(std::string_view name);
  void AddCopy(std::string_view name);

  struct Listing {
    std::vector<Entry> names;
    bool more = false;  // another name with the prefix follows the last one
  };
  // Up to `limit` names that start with `prefix` and sort after `after`, in name order.
  Listing Page(std::string_view prefix, std::string_view after, size_t limit);
  // The number of names: what listing every page would return.
  size_t Count();

 private:
  // Builds the base on first use and merges what was added since the last reader. `mu_` held.
  void CatchUpLocked();

  BaseSource base_;

  std::mutex pending_mu_;
  std::vector<std::string_view> pending_;  // guarded by pending_mu_
  std::deque<std::string> copies_;         // AddCopy's names; guarded by pending_mu_; never moved

  std::mutex mu_;
  bool built_ = false;                              // guarded by mu_, as are the two below
  std::vector<Entry> sorted_;                       // by name, no repeats
  std::set<std::string_view, std::less<>> recent_;  // none of them in sorted_
};

}  // namespace esd::storage
