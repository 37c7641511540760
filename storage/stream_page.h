// A page of one stream, as a reader that bounds what one answer holds reads it (the daemon
// for readStream and history, esctl on a stopped store's files): at most `max_count`
// events and, past the first, at most `max_bytes` of them, with where the next page starts
// and whether this one reached the end. A page cut short by its bytes or its count is not
// the end; a full page that holds the stream's last event is.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace esd::storage {

// The pages of reads that answer in one message (the daemon's readStream, history and
// readAll, and esctl's offline reads, which page the same way): at most kPageEvents events
// and, past the first, kPageBytes of them by PageBytes; a filtered $all read scans at most
// kPageScan events per call, so a selective filter cannot hold a reader for long.
inline constexpr uint32_t kPageEvents = 10'000;
inline constexpr uint64_t kPageBytes = 16u << 20;
inline constexpr uint64_t kPageScan = 100'000;
// About what an event takes in a message.
inline uint64_t PageBytes(const EventView& e) {
  return e.stream.size() + e.type.size() + e.content_type.size() + e.metadata.size() + e.data.size() + 64;
}

struct StreamPage {
  std::vector<EventView> events;  // views into the store: valid while it is open
  // The `from` of the next page: forwards one past the last event, backwards one below it
  // (0 once version 0 is in the page); `from` when the page is empty.
  StreamVersion next;
  // Forwards: the page holds the stream's last durable event, or `from` is past it.
  // Backwards: the page holds version 0.
  bool end = false;
};

// kNotFound when the stream has no event; kCorruption (with its place) when an event of the
// page is in damaged bytes. (The page reads one event past itself to know whether it is the
// end; when only that one is damaged, the page is served, not as the end.) `size_of` is what an event counts against `max_bytes`.
// O(max_count + log(events in store)).
Result<StreamPage> ReadStreamPage(const Store& store, std::string_view stream, StreamVersion from,
                                  uint32_t max_count, Direction direction, uint64_t max_bytes,
                                  const std::function<uint64_t(const EventView&)>& size_of);

}  // namespace esd::storage
