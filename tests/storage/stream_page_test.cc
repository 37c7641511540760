// Pages of one stream: each says where the next one starts and whether it reached the end,
// a page cut short by its byte budget is never mistaken for the end, and following the
// pages returns every event exactly once, forwards and backwards.
#include "storage/stream_page.h"

#include <gtest/gtest.h>

#include "storage/format.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvents;
using testing::TempDir;

uint64_t DataSize(const EventView& e) { return e.data.size(); }

class StreamPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Store::Open(dir_.path(), testing::SmallOptions()).value();
    ASSERT_TRUE(store_->AppendSync("s", ExpectedVersion::NoStream(), MakeEvents("s", 0, 10, 0, 100)).ok());
  }
  StreamPage Page(uint64_t from, uint32_t count, Direction direction = Direction::kForward,
                  uint64_t max_bytes = UINT64_MAX) {
    auto page = ReadStreamPage(*store_, "s", StreamVersion(from), count, direction, max_bytes, DataSize);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? std::move(page).value() : StreamPage{};
  }
  // The versions of every page from `from`, following each page's `next` until one ends.
  std::vector<uint64_t> Follow(uint64_t from, uint32_t count, Direction direction, uint64_t max_bytes) {
    std::vector<uint64_t> versions;
    for (int pages = 0; pages < 100; ++pages) {
      const StreamPage page = Page(from, count, direction, max_bytes);
      for (const auto& e : page.events) versions.push_back(e.version.value);
      if (page.end) return versions;
      EXPECT_FALSE(page.events.empty()) << "a page short of the end has events";
      from = page.next.value;
    }
    ADD_FAILURE() << "no end after 100 pages";
    return versions;
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StreamPageTest, APageThatStopsShortOfTheEndByCountSaysWhereToGoOn) {
  const StreamPage page = Page(0, 4);
  ASSERT_EQ(page.events.size(), 4u);
  EXPECT_FALSE(page.end);
  EXPECT_EQ(page.next.value, 4u);
}

TEST_F(StreamPageTest, APageThatReachesTheLastEventIsTheEndEvenWhenItIsFull) {
  StreamPage page = Page(6, 4);
  ASSERT_EQ(page.events.size(), 4u);
  EXPECT_TRUE(page.end) << "exactly the last event: no need for an empty page to find out";
  EXPECT_EQ(page.next.value, 10u) << "where the next event will be";
  page = Page(12, 4);
  EXPECT_TRUE(page.events.empty());
  EXPECT_TRUE(page.end);
  EXPECT_EQ(page.next.value, 12u);
}

TEST_F(StreamPageTest, APageCutByBytesIsNotTheEndAndHoldsAtLeastOneEvent) {
  StreamPage page = Page(0, 10, Direction::kForward, 250);
  ASSERT_EQ(page.events.size(), 2u) << "100 bytes each: a third would pass 250";
  EXPECT_FALSE(page.end);
  EXPECT_EQ(page.next.value, 2u);
  page = Page(0, 10, Direction::kForward, 10);
  ASSERT_EQ(page.events.size(), 1u) << "the first event always fits, or nothing would move";
  EXPECT_FALSE(page.end);
}

TEST_F(StreamPageTest, FollowingThePagesReadsEveryEventOnceForwardsAndBackwards) {
  const std::vector<uint64_t> all{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(Follow(0, 4, Direction::kForward, 250), all);
  EXPECT_EQ(Follow(0, 3, Direction::kForward, UINT64_MAX), all);
  const std::vector<uint64_t> newest_first(all.rbegin(), all.rend());
  EXPECT_EQ(Follow(UINT64_MAX, 4, Direction::kBackward, 250), newest_first);
  EXPECT_EQ(Follow(UINT64_MAX, 5, Direction::kBackward, UINT64_MAX), newest_first);
}

TEST_F(StreamPageTest, BackwardsVersionZeroIsTheEnd) {
  StreamPage page = Page(3, 2, Direction::kBackward);
  ASSERT_EQ(page.events.size(), 2u);
  EXPECT_FALSE(page.end);
  EXPECT_EQ(page.next.value, 1u);
  page = Page(1, 2, Direction::kBackward);
  ASSERT_EQ(page.events.size(), 2u);
  EXPECT_TRUE(page.end) << "version 0 reached, the page full";
}

TEST_F(StreamPageTest, AStreamWithoutEventsIsNotFound) {
  auto page = ReadStreamPage(*store_, "none", StreamVersion(0), 10, Direction::kForward, UINT64_MAX, DataSize);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), Status::Code::kNotFound);
}

TEST(StreamPage, DamageJustPastAPageDoesNotSpoilThePage) {
  // A page looks one event past itself to know whether it is the end; when that one is in
  // damaged bytes the page is still served, as not the end. Reading on meets the damage.
  TempDir dir;
  {
    auto store = Store::Open(dir.path(), testing::SmallOptions()).value();
    for (uint64_t v = 0; v < 400; ++v) {  // a batch each, over several 64 KiB segments
      ASSERT_TRUE(store->AppendSync("p", ExpectedVersion::Any(), MakeEvents("p", v, 1, 0, 300)).ok());
    }
  }
  const auto first = testing::SegmentFiles(dir.path()).at(0);  // sealed: checked as it is read
  const uint64_t batch5 = testing::BatchOffsets(first).at(5);   // version 5
  testing::FlipByte(first, batch5 + format::kBatchHeaderSize + 40);
  auto store = Store::Open(dir.path(), testing::SmallOptions()).value();
  auto page = ReadStreamPage(*store, "p", StreamVersion(0), 5, Direction::kForward, UINT64_MAX, DataSize);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->events.size(), 5u);
  EXPECT_FALSE(page->end) << "version 5 exists, damaged";
  EXPECT_EQ(page->next.value, 5u);
  auto on = ReadStreamPage(*store, "p", StreamVersion(5), 5, Direction::kForward, UINT64_MAX, DataSize);
  ASSERT_FALSE(on.ok());
  EXPECT_TRUE(on.status().IsDataLoss()) << on.status().ToString();
  // Backwards the same: versions 10..6 are served though 5 is damaged.
  auto back = ReadStreamPage(*store, "p", StreamVersion(10), 5, Direction::kBackward, UINT64_MAX, DataSize);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->events.size(), 5u);
  EXPECT_FALSE(back->end);
  EXPECT_EQ(back->next.value, 5u);
}

}  // namespace
}  // namespace esd::storage
