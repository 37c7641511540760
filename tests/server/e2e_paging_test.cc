// Paged reads end to end through a real esd: every page says whether it reached the end
// and where the next one starts, and following them returns every event exactly once,
// also when the daemon cuts a page short (16 MiB of events, 10,000 events per call).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.h"
#include "server/esd_process.h"
#include "server/long_streams.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

constexpr uint64_t kBigEvents = 100;  // of ~500 KB: 50 MB, three times what one answer holds

// Follows the pages of `stream` from `from`, asking `count` at a time; the versions read.
std::vector<uint64_t> FollowPages(Client& c, const std::string& stream, uint64_t from, uint32_t count, bool backward,
                                  size_t* pages) {
  std::vector<uint64_t> versions;
  *pages = 0;
  while (true) {
    client::StreamPageEnd end;
    const auto page = c.ReadStream(stream, from, count, backward, &end);
    EXPECT_TRUE(page.has_value());
    if (!page) break;
    ++*pages;
    for (const auto& e : *page) versions.push_back(e.version);
    if (end.end_of_stream) break;
    EXPECT_FALSE(page->empty()) << "a page that is not the end has events";
    if (page->empty() || *pages > 1000) break;
    from = end.next_version;
  }
  return versions;
}

TEST(Paging, AStreamReadCutShortByBytesSaysWhereToGoOnAndFollowingItReadsEveryEventOnce) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  testing::AppendBigEvents(*c, "big", kBigEvents);

  client::StreamPageEnd end;
  const auto first = c->ReadStream("big", 0, kBigEvents, false, &end);
  ASSERT_TRUE(first.has_value());
  ASSERT_LT(first->size(), kBigEvents) << "16 MiB per answer";
  ASSERT_FALSE(first->empty());
  EXPECT_FALSE(end.end_of_stream);
  EXPECT_EQ(end.next_version, first->back().version + 1);

  size_t pages = 0;
  std::vector<uint64_t> expected;
  for (uint64_t v = 0; v < kBigEvents; ++v) expected.push_back(v);
  EXPECT_EQ(FollowPages(*c, "big", 0, kBigEvents, false, &pages), expected);
  EXPECT_GE(pages, 3u);
  std::vector<uint64_t> newest_first(expected.rbegin(), expected.rend());
  EXPECT_EQ(FollowPages(*c, "big", UINT64_MAX, kBigEvents, true, &pages), newest_first);
  EXPECT_GE(pages, 3u);
}

TEST(Paging, APageThatEndsWhereTheStreamDoesSaysSoAndOneThatStopsShortDoesNot) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("A", "{}"), NewEvent::Json("B", "{}"),
                                               NewEvent::Json("C", "{}")})
                  .ok());
  client::StreamPageEnd end;
  EXPECT_EQ(c->ReadStream("s", 0, 3, false, &end)->size(), 3u);
  EXPECT_TRUE(end.end_of_stream) << "exactly the last event";
  EXPECT_EQ(end.next_version, 3u) << "where new events will be";
  EXPECT_EQ(c->ReadStream("s", 0, 2, false, &end)->size(), 2u);
  EXPECT_FALSE(end.end_of_stream) << "by count";
  EXPECT_EQ(end.next_version, 2u);
  EXPECT_TRUE(c->ReadStream("s", 7, 2, false, &end)->empty());
  EXPECT_TRUE(end.end_of_stream) << "past the end";
  EXPECT_EQ(end.next_version, 7u);
  EXPECT_EQ(c->ReadStream("s", UINT64_MAX, 2, true, &end)->size(), 2u);
  EXPECT_FALSE(end.end_of_stream) << "version 0 not reached";
  EXPECT_EQ(end.next_version, 0u);
  EXPECT_EQ(c->ReadStream("s", 0, 2, true, &end)->size(), 1u);
  EXPECT_TRUE(end.end_of_stream) << "version 0 reached";
  EXPECT_FALSE(c->ReadStream("none", 0, 2, false, &end).has_value());
  EXPECT_TRUE(end.end_of_stream) << "a stream without events has nothing more";
}

TEST(Paging, HistoryPastTenThousandEventsPagesAndTheClientReadsItAll) {
  storage::testing::TempDir dir;
  constexpr uint64_t kEvents = 10'500;
  testing::WriteLongOrder(dir.path() / "data", "h", kEvents);
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());

  const auto first = c->HistoryFrom("h", 0);
  ASSERT_EQ(first.events.size(), 10'000u) << "10,000 events per call";
  EXPECT_FALSE(first.end_of_history);
  EXPECT_EQ(first.next_version, 10'000u);
  const auto rest = c->HistoryFrom("h", first.next_version);
  ASSERT_EQ(rest.events.size(), kEvents - 10'000);
  EXPECT_EQ(rest.events.front().version, 10'000u);
  EXPECT_TRUE(rest.end_of_history);
  EXPECT_EQ(rest.next_version, kEvents);

  const auto all = c->History("h");
  ASSERT_EQ(all.size(), kEvents) << "every page";
  for (uint64_t v = 0; v < kEvents; ++v) ASSERT_EQ(all[v].version, v);
  const auto none = c->HistoryFrom("nobody", 0);
  EXPECT_TRUE(none.events.empty());
  EXPECT_TRUE(none.end_of_history);
}

TEST(Paging, AStreamListSaysMoreExactlyWhenAnotherMatchingStreamFollowsAndStatusCountsEveryStream) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  for (const std::string s : {"p-1", "p-2", "p-3", "q"}) {
    ASSERT_TRUE(c->Append(s, Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  }
  auto names = [](const Client::StreamPage& page) {
    std::vector<std::string> out;
    for (const auto& [name, info] : page.streams) out.push_back(name);
    return out;
  };
  auto page = c->ListStreams("p-", "", 3);
  EXPECT_EQ(names(page), (std::vector<std::string>{"p-1", "p-2", "p-3"}));
  EXPECT_FALSE(page.more) << "'q' follows, but without the prefix";
  page = c->ListStreams("p-", "", 2);
  EXPECT_EQ(names(page), (std::vector<std::string>{"p-1", "p-2"}));
  EXPECT_TRUE(page.more);
  page = c->ListStreams("p-", "p-2", 2);
  EXPECT_EQ(names(page), std::vector<std::string>{"p-3"});
  EXPECT_FALSE(page.more);
  EXPECT_EQ(c->Status().streams, 4u);
}

}  // namespace
}  // namespace esd
