// OrderCache: orders kept at their version, the least recently used evicted past the
// capacity, never moved back to an older version.
#include "domain/order_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace esd::domain {
namespace {

OrderState At(uint64_t version, std::string customer = "c") {
  OrderState s;
  s.order_id.push_back('o');  // not = "o": g++ 12 warns of a memcpy overlap there (-Wrestrict)
  s.customer_id = std::move(customer);
  s.status = OrderStatus::kOpen;
  s.version = version;
  return s;
}

TEST(OrderCacheTest, GetReturnsWhatWasPutAndCountsHitsAndMisses) {
  OrderCache cache(4);
  EXPECT_FALSE(cache.Get("a").has_value());
  cache.Put("a", At(3));
  ASSERT_TRUE(cache.Get("a").has_value());
  EXPECT_EQ(*cache.Get("a"), At(3));
  EXPECT_EQ(cache.counts().hits, 2u);
  EXPECT_EQ(cache.counts().misses, 1u);
}

TEST(OrderCacheTest, TheLeastRecentlyUsedOrderIsEvictedPastTheCapacity) {
  OrderCache cache(2);
  cache.Put("a", At(0));
  cache.Put("b", At(0));
  ASSERT_TRUE(cache.Get("a").has_value());  // b is now the least recently used
  cache.Put("c", At(0));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Get("b").has_value());
  EXPECT_TRUE(cache.Get("a").has_value());
  EXPECT_TRUE(cache.Get("c").has_value());
  EXPECT_EQ(cache.counts().evictions, 1u);
}

TEST(OrderCacheTest, AnEntryNeverMovesBackToAnOlderVersion) {
  OrderCache cache(2);
  cache.Put("a", At(5, "newer"));
  cache.Put("a", At(4, "older"));  // e.g. a late answer of an earlier append
  EXPECT_EQ(cache.Get("a")->customer_id, "newer");
  cache.Put("a", At(6, "newest"));
  EXPECT_EQ(cache.Get("a")->customer_id, "newest");
  EXPECT_EQ(cache.size(), 1u);
}

TEST(OrderCacheTest, EraseForgetsTheOrderAndAStateWithoutVersionIsNotKept) {
  OrderCache cache(2);
  cache.Put("a", At(1));
  cache.Erase("a");
  EXPECT_FALSE(cache.Get("a").has_value());
  cache.Put("b", OrderState{});  // no event: nothing to keep
  EXPECT_FALSE(cache.Get("b").has_value());
  EXPECT_EQ(cache.size(), 0u);
}

TEST(OrderCacheTest, CapacityZeroKeepsNothing) {
  OrderCache cache(0);
  cache.Put("a", At(1));
  EXPECT_FALSE(cache.Get("a").has_value());
}

}  // namespace
}  // namespace esd::domain
