// A map from a name to V, split by the name's hash into kShards unordered_maps, for maps that
// grow large where a pause is felt: the maps that the writer grows while holding the Store's
// lock exclusively (the Store's stream tips, each segment's MemIndex), and the daemon's
// order projection, on its event loop. An unordered_map that grows rehashes every entry at
// once: with a stream per order, at ~400 k streams one such rehash held the Store's lock for
// ~70 ms, and every read, the daemon's event loop too, waited for it; the projection's own
// rehash took the loop ~50 ms (docs/performance.md, "Orders"). Split in 64, a rehash moves a
// 64th of the entries; the total work is the same.
//
// Like unordered_map, an entry's key and value never move once inserted (views of the key
// may be kept); iteration order is unspecified. Not synchronised.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace esd::storage {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
};

template <typename V>
class ShardedStringMap {
 public:
  static constexpr size_t kShards = 64;
  using Shard = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  V* Find(std::string_view key) { return Lookup(ShardOf(key), key); }
  const V* Find(std::string_view key) const { return Lookup(ShardOf(key), key); }

  // As unordered_map's: the entry, and whether it was added.
  template <typename... Args>
  std::pair<typename Shard::iterator, bool> TryEmplace(std::string key, Args&&... args) {
    Shard& shard = ShardOf(key);
    return shard.try_emplace(std::move(key), std::forward<Args>(args)...);
  }
  template <typename T>
  std::pair<typename Shard::iterator, bool> InsertOrAssign(std::string key, T&& value) {
    Shard& shard = ShardOf(key);
    return shard.insert_or_assign(std::move(key), std::forward<T>(value));
  }

  bool Erase(std::string_view key) {
    Shard& shard = ShardOf(key);
    auto it = shard.find(key);
    if (it == shard.end()) return false;
    shard.erase(it);
    return true;
  }

  template <typename F>  // f(const std::string& key, const V& value)
  void ForEach(F&& f) const {
    for (const Shard& shard : shards_) {
      for (const auto& [key, value] : shard) f(key, value);
    }
  }

  size_t size() const {
    size_t n = 0;
    for (const Shard& shard : shards_) n += shard.size();
    return n;
  }
  // The most entries any one shard holds: what one rehash may have to move.
  size_t largest_shard() const {
    size_t n = 0;
    for (const Shard& shard : shards_) n = std::max(n, shard.size());
    return n;
  }

 private:
  // The top bits pick the shard; each shard's buckets use the whole hash modulo a prime,
  // so the two do not correlate.
  size_t Index(std::string_view key) const { return StringHash()(key) >> (8 * sizeof(size_t) - 6); }
  Shard& ShardOf(std::string_view key) { return shards_[Index(key)]; }
  const Shard& ShardOf(std::string_view key) const { return shards_[Index(key)]; }
  static V* Lookup(Shard& shard, std::string_view key) {
    auto it = shard.find(key);
    return it == shard.end() ? nullptr : &it->second;
  }
  static const V* Lookup(const Shard& shard, std::string_view key) {
    auto it = shard.find(key);
    return it == shard.end() ? nullptr : &it->second;
  }
  static_assert(kShards == 64, "Index takes the top 6 bits of the hash");

  std::array<Shard, kShards> shards_;
};

}  // namespace esd::storage
