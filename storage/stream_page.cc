#include "storage/stream_page.h"

namespace esd::storage {

Result<StreamPage> ReadStreamPage(const Store& store, std::string_view stream, StreamVersion from,
                                  uint32_t max_count, Direction direction, uint64_t max_bytes,
                                  const std::function<uint64_t(const EventView&)>& size_of) {
  // One more than asked: whether the stream goes on past the page is then known without a
  // second look, so a page that ends where the stream does says so.
  auto read = store.ReadStream(stream, from, static_cast<size_t>(max_count) + 1, direction);
  bool beyond_is_damaged = false;
  if (!read.ok() && read.status().IsDataLoss() && max_count > 0) {
    // Maybe only the look-ahead is in damaged bytes: then the page itself is served, and is
    // not the end (reading on meets the damage).
    read = store.ReadStream(stream, from, max_count, direction);
    beyond_is_damaged = read.ok();
  }
  if (!read.ok()) return read.status();
  std::vector<EventView>& events = *read;
  size_t n = 0;
  uint64_t bytes = 0;
  while (n < events.size() && n < max_count && (n == 0 || bytes + size_of(events[n]) <= max_bytes)) {
    bytes += size_of(events[n++]);
  }
  StreamPage page;
  page.end = n == events.size() && !beyond_is_damaged;
  events.resize(n);
  page.events = std::move(events);
  page.next = from;
  if (!page.events.empty()) {
    const uint64_t last = page.events.back().version.value;
    if (direction == Direction::kForward) {
      page.next = StreamVersion(last + 1);
    } else {
      page.next = StreamVersion(last == 0 ? 0 : last - 1);
      page.end = page.end || last == 0;  // (nothing lies below version 0, damaged or not)
    }
  }
  return page;
}

}  // namespace esd::storage
