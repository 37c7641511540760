#include "domain/projections.h"

#include <algorithm>
#include <charconv>
#include <utility>

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

OrderProjection::Orders::Orders(Orders&& o) noexcept
    : slots_(std::exchange(o.slots_, {})),
      index_(std::exchange(o.index_, {})),
      captures_(o.captures_),
      live_(std::exchange(o.live_, {})) {}

OrderProjection::Orders& OrderProjection::Orders::operator=(Orders&& o) noexcept {
  if (this != &o) {
    KeepAll();
    slots_ = std::exchange(o.slots_, {});
    index_ = std::exchange(o.index_, {});
    captures_ = o.captures_;
    live_ = std::exchange(o.live_, {});
  }
  return *this;
}

OrderProjection::Orders::~Orders() { KeepAll(); }

const OrderState* OrderProjection::Orders::Find(const std::string& order_id) const {
  const size_t* slot = index_.Find(order_id);
  return slot == nullptr ? nullptr : slots_[*slot].state.get();
}

OrderState& OrderProjection::Orders::Mutable(const std::string& order_id) {
  auto [it, added] = index_.TryEmplace(order_id, slots_.size());
  if (added) {
    slots_.push_back({std::make_shared<OrderState>(), captures_});
    return *slots_.back().state;
  }
  Slot& slot = slots_[it->second];
  if (slot.made_after < captures_) {
    // A capture saw this state: if one still reads it, it keeps it and this changes a copy.
    if (KeepForCaptures(slot)) slot.state = std::make_shared<OrderState>(*slot.state);
    slot.made_after = captures_;
  }
  return *slot.state;
}

void OrderProjection::Orders::Insert(OrderState order) {
  if (!index_.TryEmplace(order.order_id, slots_.size()).second) return;
  slots_.push_back({std::make_shared<OrderState>(std::move(order)), captures_});
}

bool OrderProjection::Orders::Erase(const std::string& order_id) {
  const size_t* found = index_.Find(order_id);
  if (found == nullptr) return false;
  Slot& slot = slots_[*found];
  if (slot.made_after < captures_) KeepForCaptures(slot);
  slot.state.reset();  // the slot stays, empty: slots never move (drops are rare)
  index_.Erase(order_id);
  return true;
}

OrderProjection::CapturedSnapshot OrderProjection::Orders::Capture(uint64_t checkpoint, uint64_t last_timestamp) {
  CapturedSnapshot captured{checkpoint, last_timestamp, {}, std::make_shared<KeptStates>()};
  captured.orders.reserve(index_.size());
  for (const Slot& slot : slots_) {
    if (slot.state != nullptr) captured.orders.push_back(slot.state.get());
  }
  ++captures_;  // every state now was made before this capture: it saw them all
  std::erase_if(live_, [](const auto& c) { return c.second.expired(); });
  live_.emplace_back(captures_, captured.kept);
  return captured;
}

bool OrderProjection::Orders::KeepForCaptures(const Slot& slot) {
  bool kept = false;
  for (const auto& [number, weak] : live_) {
    if (number <= slot.made_after) continue;  // taken before this state was made
    if (auto k = weak.lock()) {
      std::lock_guard lock(k->mu);
      k->states.push_back(slot.state);
      kept = true;
    }
  }
  return kept;
}

void OrderProjection::Orders::KeepAll() {
  if (std::none_of(live_.begin(), live_.end(), [](const auto& c) { return !c.second.expired(); })) return;
  for (const Slot& slot : slots_) {
    if (slot.state != nullptr && slot.made_after < captures_) KeepForCaptures(slot);
  }
}

void OrderProjection::Index(const OrderState& order) {
  by_customer_[order.customer_id].insert({UINT64_MAX - order.created_at, order.order_id});
}

void OrderProjection::Apply(const storage::EventView& e) {
  if (e.position.value < checkpoint_) return;
  checkpoint_ = e.position.value + 1;
  last_timestamp_ = e.timestamp;
  std::string_view target;
  if (storage::IsMetadataStream(e.stream, &target)) {
    if (auto order_id = OrderIdOf(target)) ApplyMetadata(*order_id, e);
    return;
  }
  auto order_id = OrderIdOf(e.stream);
  if (!order_id) return;
  auto event = DecodeStoredEvent(e.content_type, e.type, e.data);
  if (!event) {
    ++skipped_;
    if (!first_skipped_) first_skipped_ = ForeignEventOf(e);
    return;
  }
  OrderState& state = orders_.Mutable(*order_id);
  const bool created = std::holds_alternative<OrderCreated>(*event);
  // No CommandContext: the projection answers queries, never a retried command, so its
  // states keep no recent command ids (OrderCommands' do), and the event's metadata is not
  // decoded (a tenth of the projection's work per event).
  domain::Apply(state, {std::move(*event), CommandContext{}, e.version.value, e.position.value, e.timestamp});
  if (created) Index(state);
}

storage::Result<uint64_t> OrderProjection::CatchUp(const storage::Store& store, uint64_t max_events) {
  // Only order streams and their metadata streams are folded: the store passes every other
  // stream's batches without parsing them (under W3, parsing every event of the log for the
  // projection was a tenth of the daemon's CPU).
  static const std::function<bool(std::string_view)> wants = [](std::string_view stream) {
    std::string_view target;
    if (storage::IsMetadataStream(stream, &target)) stream = target;
    return IsOrderStream(stream);
  };
  uint64_t read = 0;
  while (read < max_events) {
    const uint64_t before = checkpoint_;
    storage::Store::Passed passed{storage::GlobalPosition(checkpoint_), last_timestamp_};
    auto n = store.ReadAll(
        storage::GlobalPosition(checkpoint_), std::min<uint64_t>(max_events - read, 10'000),
        [&](const storage::EventView& e) {
          Apply(e);
          return true;
        },
        wants, &passed, read_buffer_.get());
    // Removed events (storage/lifecycle.h) and other streams' events are passed, not applied
    // (up to damage too: it stops the projection where it is); the checkpoint's commit time
    // is what a snapshot is checked against at load.
    if (passed.end.value > checkpoint_) {
      checkpoint_ = passed.end.value;
      last_timestamp_ = passed.timestamp;
    }
    if (!n.ok()) return n.status();
    if (checkpoint_ == before) break;
    read += checkpoint_ - before;
  }
  return read;
}

void OrderProjection::ApplyMetadata(const std::string& order_id, const storage::EventView& e) {
  // Soft or hard, a delete removes every event of the order the projection folded.
  if (e.type == storage::kStreamDeletedEventType) {
    Drop(order_id);
    return;
  }
  // A later metadata change of the stream carries what the delete removed on (removal is
  // final: storage/lifecycle.h), and reads no longer return the tombstone it replaced: a
  // projection that had not reached the tombstone yet learns of the delete here.
  auto meta = storage::DecodeStreamMetadata(e.data);
  if (!meta.ok()) return;
  const OrderState* found = orders_.Find(order_id);
  if (found == nullptr) return;
  const OrderState& order = *found;
  if (meta->hard_deleted || (order.version && *order.version < meta->truncate_before.value)) {
    Drop(order_id);
  }
}

std::vector<std::string> OrderProjection::OrdersOf(const std::string& customer_id) const {
  std::vector<std::string> ids;
  auto c = by_customer_.find(customer_id);
  if (c == by_customer_.end()) return ids;
  for (const auto& key : c->second) {
    if (orders_.Find(key.second) != nullptr) ids.push_back(key.second);
  }
  return ids;
}

bool OrderProjection::Drop(const std::string& order_id) {
  const OrderState* found = orders_.Find(order_id);
  if (found == nullptr) return false;
  // Index() keyed it by its customer and creation time: the same key finds it again.
  if (auto c = by_customer_.find(found->customer_id); c != by_customer_.end()) {
    c->second.erase({UINT64_MAX - found->created_at, order_id});
    if (c->second.empty()) by_customer_.erase(c);
  }
  return orders_.Erase(order_id);
}

const OrderState* OrderProjection::Get(const std::string& order_id) const {
  return orders_.Find(order_id);
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
  return WriteSnapshot(log, path, CaptureSnapshot());
}

OrderProjection::CapturedSnapshot OrderProjection::CaptureSnapshot() const {
  return orders_.Capture(checkpoint_, last_timestamp_);
}

OrderProjection::EncodedSnapshot OrderProjection::EncodeCaptured(const CapturedSnapshot& captured) {
  return {captured.checkpoint, EncodeProjection(captured.checkpoint, captured.last_timestamp, captured.orders)};
}

bool OrderProjection::operator==(const OrderProjection& o) const {
  if (checkpoint_ != o.checkpoint_ || orders_.size() != o.orders_.size()) return false;
  bool same = true;
  orders_.ForEach([&](const std::string& id, const OrderState& state) {
    const OrderState* other = o.orders_.Find(id);
    same = same && other != nullptr && state == *other;
  });
  return same;
}

storage::Status OrderProjection::WriteSnapshot(storage::Store& log, const std::filesystem::path& path,
                                               const CapturedSnapshot& captured) {
  const EncodedSnapshot snapshot = EncodeCaptured(captured);
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
    p.Index(order);
    p.orders_.Insert(std::move(order));
  }
  p.checkpoint_ = state->checkpoint;
  p.last_timestamp_ = state->last_timestamp;
  return p;
}

}  // namespace esd::domain
