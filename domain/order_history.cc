#include "domain/order_history.h"

#include "domain/codec.h"
#include "domain/order_commands.h"

namespace esd::domain {

std::string ForeignEvent::Describe() const {
  return "stream '" + stream + "' holds at version " + std::to_string(version) + " (position " +
         std::to_string(position) + ") an event of type '" + type + "' (" +
         (content_type.empty() ? std::string("no content type") : content_type) +
         ") that is not an Order service event";
}

ForeignEvent ForeignEventOf(const storage::EventView& e) {
  return {std::string(e.stream), e.version.value, e.position.value, std::string(e.type), std::string(e.content_type)};
}

storage::Status ForEachOrderEvent(const storage::Store& store, const std::string& order_id, uint64_t from,
                                  uint64_t to, const std::function<void(RecordedOrderEvent&&)>& visit,
                                  std::optional<ForeignEvent>* foreign, OnForeign on_foreign) {
  const std::string stream = OrderStream(order_id);
  uint64_t next = from;
  while (next <= to) {
    auto page = store.ReadStream(stream, storage::StreamVersion(next), 1000);
    if (!page.ok()) {
      // No event left (never written, deleted, or truncated or expired to its end): none to visit.
      const auto code = page.status().code();
      return code == storage::Status::Code::kNotFound || code == storage::Status::Code::kStreamDeleted
                 ? storage::Status::Ok()
                 : page.status();
    }
    if (page->empty()) return storage::Status::Ok();
    for (const storage::EventView& e : *page) {
      if (e.version.value > to) return storage::Status::Ok();
      auto event = DecodeStoredEvent(e.content_type, e.type, e.data);
      if (!event) {
        const ForeignEvent found = ForeignEventOf(e);
        if (foreign != nullptr && !foreign->has_value()) *foreign = found;
        if (on_foreign == OnForeign::kSkip) continue;
        // Not kCorruption: its bytes verify, and nothing is lost; a caller that counts
        // damage must not count it.
        return storage::Status::InvalidArgument(found.Describe());
      }
      visit({std::move(*event), DecodeMetadata(e.metadata), e.version.value, e.position.value, e.timestamp});
    }
    next = page->back().version.value + 1;
  }
  return storage::Status::Ok();
}

storage::Result<std::vector<RecordedOrderEvent>> OrderHistory::Events(const std::string& order_id) const {
  std::vector<RecordedOrderEvent> out;
  storage::Status s = ForEachOrderEvent(store_, order_id, 0, UINT64_MAX, [&](RecordedOrderEvent&& e) {
    out.push_back(std::move(e));
  });
  if (!s.ok()) return s;
  return out;
}

storage::Result<OrderState> OrderHistory::AsOfVersion(const std::string& order_id, uint64_t version) const {
  OrderState state;
  storage::Status s = ForEachOrderEvent(
      store_, order_id, 0, version, [&](RecordedOrderEvent&& e) { Apply(state, e); }, nullptr, OnForeign::kSkip);
  if (!s.ok()) return s;
  return state;
}

storage::Result<OrderState> OrderHistory::AsOfTime(const std::string& order_id, uint64_t micros) const {
  const std::string stream = OrderStream(order_id);
  auto info = store_.GetStreamInfo(stream);
  if (!info || info->hard_deleted) return OrderState{};
  // The first version committed after `micros`: timestamps never decrease along a stream.
  // Versions below first_kept were removed (a deleted order): none of them is read.
  const uint64_t first = info->first_kept.value;
  uint64_t lo = first, hi = info->last_version.value + 1;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    auto e = store_.ReadStream(stream, storage::StreamVersion(mid), 1);
    if (!e.ok() && (e.status().code() == storage::Status::Code::kNotFound ||
                    e.status().code() == storage::Status::Code::kStreamDeleted)) {
      return OrderState{};  // deleted meanwhile, or nothing left
    }
    if (!e.ok()) return e.status();
    if (e->empty()) return storage::Status::Corruption("stream '" + stream + "' lacks version " + std::to_string(mid));
    if ((*e)[0].timestamp <= micros) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == first) return OrderState{};  // nothing yet at that time (or nothing left of it)
  return AsOfVersion(order_id, lo - 1);
}

}  // namespace esd::domain
