#include "domain/projections.h"

#include <charconv>

#include "domain/codec.h"
#include "domain/order_commands.h"
#include "domain/snapshots.h"

namespace esd::domain {

namespace {

std::string Token(const std::pair<uint64_t, std::string>& key) {
  return std::to_string(key.first) + ":" + key.second;
}

std::optional<std::pair<uint64_t, std::string>> ParseToken(const std::string& token) {
  const auto colon = token.find(':');
  if (colon == std::string::npos) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(token.data(), token.data() + colon, v);
  if (ec != std::errc() || p != token.data() + colon) return std::nullopt;
  return std::make_pair(v, token.substr(colon + 1));
}

}  // namespace

void OrderProjection::Index(const OrderState& order) {
  by_customer_[order.customer_id].insert({UINT64_MAX - order.created_at, order.order_id});
}

void OrderProjection::Apply(const storage::EventView& e) {
  if (e.position.value < checkpoint_) return;
  checkpoint_ = e.position.value + 1;
  last_timestamp_ = e.timestamp;
  auto order_id = OrderIdOf(e.stream);
  if (!order_id) return;
  auto event = DecodeStoredEvent(e.content_type, e.type, e.data);
  if (!event) {
    ++skipped_;
    if (!first_skipped_) first_skipped_ = ForeignEventOf(e);
    return;
  }
  OrderState& state = orders_[*order_id];
  const bool created = std::holds_alternative<OrderCreated>(*event);
  domain::Apply(state, {std::move(*event), DecodeMetadata(e.metadata), e.version.value, e.position.value, e.timestamp});
  if (created) Index(state);
}

storage::Result<uint64_t> OrderProjection::CatchUp(const storage::Store& store, uint64_t max_events) {
  uint64_t read = 0;
  while (read < max_events) {
    storage::GlobalPosition skipped(checkpoint_);
    auto n = store.ReadAll(
        storage::GlobalPosition(checkpoint_), std::min<uint64_t>(max_events - read, 10'000),
        [&](const storage::EventView& e) {
          Apply(e);
          return true;
        },
        &skipped);
    if (!n.ok()) return n.status();
    checkpoint_ = std::max(checkpoint_, skipped.value);  // removed events (storage/lifecycle.h) are passed, not applied
    if (*n == 0) break;
    read += *n;
  }
  return read;
}

const OrderState* OrderProjection::Get(const std::string& order_id) const {
  auto it = orders_.find(order_id);
  return it == orders_.end() ? nullptr : &it->second;
}

std::optional<OrderProjection::ListPage> OrderProjection::List(const std::string& customer_id,
                                                               std::optional<OrderStatus> status, size_t page_size,
                                                               const std::string& page_token) const {
  ListPage page;
  auto c = by_customer_.find(customer_id);
  if (c == by_customer_.end()) {
    if (!page_token.empty() && !ParseToken(page_token)) return std::nullopt;
    return page;
  }
  auto it = c->second.begin();
  if (!page_token.empty()) {
    auto key = ParseToken(page_token);
    if (!key) return std::nullopt;
    it = c->second.upper_bound(*key);
  }
  for (; it != c->second.end(); ++it) {
    const OrderState* order = Get(it->second);
    if (order == nullptr || (status && order->status != *status)) continue;
    if (page.orders.size() == page_size) {
      // The token is the last key returned: the next page starts after it.
      page.next_page_token = Token({UINT64_MAX - page.orders.back()->created_at, page.orders.back()->order_id});
      break;
    }
    page.orders.push_back(order);
  }
  return page;
}

storage::Status OrderProjection::SaveSnapshot(storage::Store& log, const std::filesystem::path& path) const {
  return WriteSnapshot(log, path, EncodeSnapshot());
}

OrderProjection::EncodedSnapshot OrderProjection::EncodeSnapshot() const {
  std::vector<const OrderState*> states;
  states.reserve(orders_.size());
  for (const auto& [id, state] : orders_) states.push_back(&state);
  return {checkpoint_, EncodeProjection(checkpoint_, last_timestamp_, states)};
}

storage::Status OrderProjection::WriteSnapshot(storage::Store& log, const std::filesystem::path& path,
                                               const EncodedSnapshot& snapshot) {
  if (auto synced = SyncLogThrough(log, snapshot.checkpoint); !synced.ok()) return synced;
  return WriteSnapshotFile(path, snapshot.checkpoint, snapshot.body);
}

OrderProjection OrderProjection::LoadSnapshot(const storage::Store& log, const std::filesystem::path& path,
                                              std::string* ignored) {
  std::string local;
  std::string& why = ignored != nullptr ? *ignored : local;
  why.clear();
  OrderProjection p;
  auto file = ReadSnapshotFile(path, &why);
  auto state = file ? DecodeProjection(file->body, &why) : std::nullopt;
  if (!state) return p;
  if (state->checkpoint != file->version) {
    why = "its body covers $all up to checkpoint " + std::to_string(state->checkpoint) + " but its header says " +
          std::to_string(file->version);
    return p;
  }
  why = ProjectionSnapshotMismatch(log, state->checkpoint, state->last_timestamp);
  if (!why.empty()) return p;
  for (auto& order : state->orders) {
    std::string id = order.order_id;
    p.Index(order);
    p.orders_.emplace(std::move(id), std::move(order));
  }
  p.checkpoint_ = state->checkpoint;
  p.last_timestamp_ = state->last_timestamp;
  return p;
}

}  // namespace esd::domain
