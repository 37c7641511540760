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
  // A name with its hash, computed once: it picks the shard, and the shard's lookup uses it.
  struct Hashed {
    std::string_view key;
    size_t hash;
  };
  struct ShardHash {
    using is_transparent = void;
    // Not noexcept, on purpose: libstdc++ then keeps each entry's hash beside it, so a rehash
    // moves entries without hashing their names again.
    size_t operator()(std::string_view s) const { return StringHash()(s); }
    size_t operator()(const Hashed& k) const { return k.hash; }
  };
  struct ShardEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
    bool operator()(const Hashed& a, std::string_view b) const { return a.key == b; }
    bool operator()(std::string_view a, const Hashed& b) const { return a == b.key; }
  };

 public:
  static constexpr size_t kShards = 64;
  using Shard = std::unordered_map<std::string, V, ShardHash, ShardEqual>;

  V* Find(std::string_view key) { return Lookup(shards_, key); }
  const V* Find(std::string_view key) const { return Lookup(shards_, key); }

  // As unordered_map's: the entry, and whether it was added. A new name is hashed twice.
  template <typename... Args>
  std::pair<typename Shard::iterator, bool> TryEmplace(std::string_view key, Args&&... args) {
    const Hashed k = HashOf(key);
    Shard& shard = shards_[ShardIndex(k)];
    if (auto it = shard.find(k); it != shard.end()) return {it, false};
    return shard.try_emplace(std::string(key), std::forward<Args>(args)...);
  }
  template <typename T>
  std::pair<typename Shard::iterator, bool> InsertOrAssign(std::string_view key, T&& value) {
    const Hashed k = HashOf(key);
    Shard& shard = shards_[ShardIndex(k)];
    if (auto it = shard.find(k); it != shard.end()) {
      it->second = std::forward<T>(value);
      return {it, false};
    }
    return shard.try_emplace(std::string(key), std::forward<T>(value));
  }

  bool Erase(std::string_view key) {
    const Hashed k = HashOf(key);
    Shard& shard = shards_[ShardIndex(k)];
    auto it = shard.find(k);
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
  static Hashed HashOf(std::string_view key) { return {key, StringHash()(key)}; }
  // The top bits pick the shard; each shard's buckets use the whole hash modulo a prime,
  // so the two do not correlate.
  static size_t ShardIndex(const Hashed& k) { return k.hash >> (8 * sizeof(size_t) - 6); }
  static_assert(kShards == 64, "ShardIndex takes the top 6 bits of the hash");
  template <typename Shards>  // the const or the mutable shards_
  static auto Lookup(Shards& shards, std::string_view key) -> decltype(&shards[0].begin()->second) {
    const Hashed k = HashOf(key);
    auto& shard = shards[ShardIndex(k)];
    auto it = shard.find(k);
    return it == shard.end() ? nullptr : &it->second;
  }

  std::array<Shard, kShards> shards_;
};

}  // namespace esd::storage
