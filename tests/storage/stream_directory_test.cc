// The stream directory: its base is read once, by the first reader; names added before and
// after that are listed once each, in name order, however they were added; and adding a
// name never waits for a reader, even one that is building the directory.
#include "storage/stream_directory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace esd::storage {
namespace {

using Names = std::vector<std::string>;

Names Strings(const std::vector<StreamDirectory::Entry>& entries) {
  Names names;
  for (const auto& e : entries) names.emplace_back(e.name);
  return names;
}

// Every name of `dir` with `prefix`, following pages of `limit`.
Names AllByPages(StreamDirectory& dir, std::string_view prefix, size_t limit) {
  Names all;
  std::string after;
  for (int pages = 0; pages < 100'000; ++pages) {
    auto page = dir.Page(prefix, after, limit);
    for (const auto& e : page.names) all.emplace_back(e.name);
    if (!page.more) return all;
    EXPECT_EQ(page.names.size(), limit);
    after = all.back();
  }
  ADD_FAILURE() << "the pages did not end";
  return all;
}

TEST(StreamDirectory, TheBaseIsReadOnceByTheFirstReaderNotBefore) {
  const Names base = {"c", "a", "b"};  // in any order, as an index file's tips (by hash)
  int reads = 0;
  StreamDirectory dir([&] {
    ++reads;
    return std::vector<std::string_view>(base.begin(), base.end());
  });
  dir.Add("d");
  EXPECT_EQ(reads, 0) << "nothing is read until someone lists or counts";
  EXPECT_EQ(dir.Count(), 4u);
  EXPECT_EQ(AllByPages(dir, "", 2), (Names{"a", "b", "c", "d"}));
  EXPECT_EQ(reads, 1);
}

TEST(StreamDirectory, NamesAddedBeforeAndAfterTheFirstReadAreListedOnceEachInOrder) {
  const Names base = {"k", "e", "t"};
  StreamDirectory dir([&] { return std::vector<std::string_view>(base.begin(), base.end()); });
  dir.Add("m");
  dir.Add("e");  // a stream of the base written again since open
  dir.AddCopy(std::string("b"));
  EXPECT_EQ(AllByPages(dir, "", 10), (Names{"b", "e", "k", "m", "t"}));
  dir.Add("a");
  dir.Add("t");
  dir.Add("z");
  EXPECT_EQ(AllByPages(dir, "", 2), (Names{"a", "b", "e", "k", "m", "t", "z"}));
  EXPECT_EQ(dir.Count(), 7u);
}

TEST(StreamDirectory, EachNameOfTheBaseKeepsItsPlaceThereAndAnAddedNameHasNone) {
  const Names base = {"c", "a", "b"};
  StreamDirectory dir([&] { return std::vector<std::string_view>(base.begin(), base.end()); });
  dir.Add("b");  // written again since open: still the base's
  dir.Add("d");
  const auto page = dir.Page("", "", 10);
  ASSERT_EQ(Strings(page.names), (Names{"a", "b", "c", "d"}));
  EXPECT_EQ(page.names[0].base_index, 1u);
  EXPECT_EQ(page.names[1].base_index, 2u);
  EXPECT_EQ(page.names[2].base_index, 0u);
  EXPECT_EQ(page.names[3].base_index, StreamDirectory::kNotInBase);
}

TEST(StreamDirectory, APageStartsAfterTheCursorAndEndsWithThePrefix) {
  const Names base = {"x-1", "x-3", "y"};
  StreamDirectory dir([&] { return std::vector<std::string_view>(base.begin(), base.end()); });
  dir.Add("x-2");
  dir.Add("w");
  auto page = dir.Page("x-", "x-1", 1);
  EXPECT_EQ(Strings(page.names), Names{"x-2"});
  EXPECT_TRUE(page.more) << "x-3 follows";
  page = dir.Page("x-", "x-2", 1);
  EXPECT_EQ(Strings(page.names), Names{"x-3"});
  EXPECT_FALSE(page.more) << "y follows, but not with the prefix";
  page = dir.Page("x-", "", 5);
  EXPECT_EQ(Strings(page.names), (Names{"x-1", "x-2", "x-3"}));
  page = dir.Page("", "x-3", 5);
  EXPECT_EQ(Strings(page.names), Names{"y"});
  EXPECT_FALSE(page.more);
}

TEST(StreamDirectory, CopiedNamesOutliveTheCallersString) {
  StreamDirectory dir([] { return std::vector<std::string_view>{}; });
  {
    std::string name(100, 'q');  // on the heap, freed below
    dir.AddCopy(name);
  }
  EXPECT_EQ(AllByPages(dir, "", 10), Names{std::string(100, 'q')});
}

TEST(StreamDirectory, ManyNamesAddedOverTimeStayInOrderAndCounted) {
  Names base;
  for (uint64_t i = 0; i < 1000; ++i) base.push_back("n-" + std::to_string(i * 7919 % 100'003));
  StreamDirectory dir([&] { return std::vector<std::string_view>(base.begin(), base.end()); });
  std::set<std::string> expected(base.begin(), base.end());
  Names added;  // owned here, so Add's views stay valid
  added.reserve(30'000);
  for (uint64_t i = 0; i < 30'000; ++i) added.push_back("n-" + std::to_string(i * 104'729 % 1'000'003));
  size_t next = 0;
  for (int round = 0; round < 6; ++round) {
    for (size_t end = next + 5000; next < end; ++next) {
      dir.Add(added[next]);
      expected.insert(added[next]);
    }
    EXPECT_EQ(dir.Count(), expected.size()) << "round " << round;
    // Listing from the middle on, as a client that is part way through.
    auto page = dir.Page("n-", "n-5", 100);
    auto from = expected.upper_bound("n-5");
    EXPECT_EQ(Strings(page.names), Names(from, std::next(from, 100))) << "round " << round;
    for (const auto& e : page.names) {  // merging the added names in keeps the base's places
      const auto in_base = std::find(base.begin(), base.end(), e.name);
      if (in_base == base.end()) {
        EXPECT_EQ(e.base_index, StreamDirectory::kNotInBase) << e.name;
      } else {
        EXPECT_EQ(e.base_index, static_cast<uint32_t>(in_base - base.begin())) << e.name;
      }
    }
  }
  EXPECT_EQ(AllByPages(dir, "n-", 997), Names(expected.begin(), expected.end()));
}

TEST(StreamDirectory, AddingNeverWaitsForAReaderThatIsBuildingTheDirectory) {
  StreamDirectory* directory = nullptr;
  StreamDirectory dir([&] {
    // The first reader builds the directory here, holding its lock. A writer that had to
    // wait for that lock would never finish, and neither would this test.
    std::thread writer([&] { directory->Add("during"); });
    writer.join();
    return std::vector<std::string_view>{"base"};
  });
  directory = &dir;
  EXPECT_EQ(AllByPages(dir, "", 10), (Names{"base", "during"}));
}

}  // namespace
}  // namespace esd::storage
