// The stream-name map that the writer grows under the Store's exclusive lock: it must behave
// as a map, keep its entries in place, and spread names over its shards so that growing it
// never rehashes more than a shard's share at once.
#include "storage/sharded_map.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace esd::storage {
namespace {

TEST(ShardedStringMap, FindsWhatWasInsertedAndNothingElse) {
  ShardedStringMap<int> map;
  EXPECT_EQ(map.Find("order-1"), nullptr);
  auto [it, added] = map.TryEmplace("order-1", 7);
  EXPECT_TRUE(added);
  EXPECT_EQ(it->first, "order-1");
  ASSERT_NE(map.Find("order-1"), nullptr);
  EXPECT_EQ(*map.Find("order-1"), 7);
  EXPECT_EQ(map.Find("order-2"), nullptr);
  EXPECT_EQ(map.Find(""), nullptr);
  EXPECT_EQ(map.size(), 1u);
}

TEST(ShardedStringMap, TryEmplaceKeepsAndInsertOrAssignReplaces) {
  ShardedStringMap<int> map;
  map.TryEmplace("s", 1);
  auto [kept, added] = map.TryEmplace("s", 2);
  EXPECT_FALSE(added);
  EXPECT_EQ(kept->second, 1);
  auto [replaced, created] = map.InsertOrAssign("s", 3);
  EXPECT_FALSE(created);
  EXPECT_EQ(replaced->second, 3);
  EXPECT_EQ(*map.Find("s"), 3);
  EXPECT_TRUE(map.InsertOrAssign("t", 4).second);
  EXPECT_EQ(map.size(), 2u);
}

TEST(ShardedStringMap, EraseRemovesOnlyThatKey) {
  ShardedStringMap<int> map;
  for (int i = 0; i < 100; ++i) map.TryEmplace("order-" + std::to_string(i), i);
  EXPECT_TRUE(map.Erase("order-7"));
  EXPECT_FALSE(map.Erase("order-7"));
  EXPECT_FALSE(map.Erase("order-100"));
  EXPECT_EQ(map.Find("order-7"), nullptr);
  EXPECT_EQ(map.size(), 99u);
  for (int i = 0; i < 100; ++i) {
    if (i != 7) EXPECT_NE(map.Find("order-" + std::to_string(i)), nullptr) << i;
  }
  EXPECT_TRUE(map.TryEmplace("order-7", 70).second);  // and it can come back
  EXPECT_EQ(*map.Find("order-7"), 70);
}

// The Store's directory keeps views of the keys: growing the map must not move them.
TEST(ShardedStringMap, EntriesStayWhereTheyAreAsTheMapGrows) {
  ShardedStringMap<int> map;
  const std::string* first_key = &map.TryEmplace("stream-0", 0).first->first;
  const int* first_value = map.Find("stream-0");
  for (int i = 1; i < 50000; ++i) map.TryEmplace("stream-" + std::to_string(i), i);
  EXPECT_EQ(&map.TryEmplace("stream-0", 99).first->first, first_key);
  EXPECT_EQ(map.Find("stream-0"), first_value);
  EXPECT_EQ(*first_key, "stream-0");
}

TEST(ShardedStringMap, ForEachVisitsEveryEntryOnce) {
  ShardedStringMap<int> map;
  for (int i = 0; i < 1000; ++i) map.TryEmplace("order-" + std::to_string(i), i);
  std::set<std::string> seen;
  long sum = 0;
  map.ForEach([&](const std::string& key, const int& value) {
    EXPECT_TRUE(seen.insert(key).second) << key << " visited twice";
    EXPECT_EQ(key, "order-" + std::to_string(value));
    sum += value;
  });
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(sum, 999L * 1000 / 2);
}

// What the sharding is for: names as the Order service makes them ("order-" and a number)
// spread over the shards, so the largest one, all that one rehash moves, is a small part
// of the whole. (Its share is 1/64; twice that still bounds a stall to a 32nd.)
TEST(ShardedStringMap, NamesSpreadSoThatNoShardHoldsMoreThanTwiceItsShare) {
  ShardedStringMap<int> map;
  constexpr size_t kNames = 200000;
  for (size_t i = 0; i < kNames; ++i) map.TryEmplace("order-" + std::to_string(i), 0);
  ASSERT_EQ(map.size(), kNames);
  EXPECT_LE(map.largest_shard(), 2 * kNames / ShardedStringMap<int>::kShards);
  EXPECT_GE(map.largest_shard(), kNames / ShardedStringMap<int>::kShards);  // by pigeonhole
}

}  // namespace
}  // namespace esd::storage
