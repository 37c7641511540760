#include "domain/order_commands.h"

#include <xxhash.h>

#include <chrono>
#include <cstring>

#include "domain/codec.h"
#include "domain/order_history.h"

namespace esd::domain {

namespace {

// The canonical bytes of a command, for its fingerprint: every field at a fixed width or
// behind its length, so that no two commands encode alike ("ab","c" vs "a","bc"). Kept on
// the stack while they fit (a usual command's do), in a string past that: the bytes are
// the same either way, and so is the fingerprint written into events' metadata.
class Canonical {
 public:
  explicit Canonical(size_t kind) { Int(kind); }
  Canonical& Text(const std::string& s) {
    Int(s.size());
    Append(s.data(), s.size());
    return *this;
  }
  Canonical& Int(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));  // little-endian
    Append(b, sizeof b);
    return *this;
  }
  std::string_view bytes() const { return spilled_.empty() ? std::string_view(inline_, size_) : spilled_; }

 private:
  void Append(const char* p, size_t n) {
    if (spilled_.empty() && size_ + n <= sizeof inline_) {
      std::memcpy(inline_ + size_, p, n);
      size_ += n;
      return;
    }
    if (spilled_.empty()) spilled_.assign(inline_, size_);
    spilled_.append(p, n);
  }

  char inline_[192];
  size_t size_ = 0;
  std::string spilled_;
};

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};

Rejection OrderDeleted(const std::string& order_id) {
  return Rejection{"order-deleted", "order '" + order_id + "' was deleted for good (its stream " +
                                        OrderStream(order_id) +
                                        " is hard-deleted and takes no event again); nothing was written. Use another "
                                        "order id (esctl order create NEW-ID --customer C)"};
}

uint64_t NowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

std::string OrderStream(const std::string& order_id) { return "order-" + order_id; }

namespace {
constexpr std::string_view kOrderPrefix = "order-";
}

bool IsOrderStream(std::string_view stream) {
  return stream.size() > kOrderPrefix.size() && stream.starts_with(kOrderPrefix);
}

std::optional<std::string> OrderIdOf(std::string_view stream) {
  if (!IsOrderStream(stream)) return std::nullopt;
  return std::string(stream.substr(kOrderPrefix.size()));
}

std::optional<std::string> RawAppendRefusal(std::string_view stream) {
  if (!IsOrderStream(stream)) return std::nullopt;
  return "stream '" + std::string(stream) +
         "' is reserved for the Order service: a stream named order-<id> holds only the events of its "
         "commands, so nothing was written. Change orders with the order commands (esctl order create, add-item, "
         "remove-item, place, cancel; OrderService over RPC), and append other events to a stream of another "
         "name, such as 'cart-1'";
}

storage::EventId CommandEventId(const std::string& command_id, uint32_t index) {
  const XXH128_hash_t h = XXH3_128bits_withSeed(command_id.data(), command_id.size(), index);
  storage::EventId id;
  std::memcpy(id.bytes.data(), &h.low64, 8);
  std::memcpy(id.bytes.data() + 8, &h.high64, 8);
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x80);  // UUID version 8: derived
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);
  return id;
}

uint64_t CommandFingerprint(const OrderCommand& command) {
  Canonical c(command.index());
  std::visit(Overloaded{
                 [&](const CreateOrder& x) { c.Text(x.order_id).Text(x.customer_id); },
                 [&](const AddItem& x) {
                   c.Text(x.order_id).Text(x.sku).Int(x.quantity).Int(static_cast<uint64_t>(x.unit_price_cents));
                 },
                 [&](const RemoveItem& x) {
                   c.Text(x.order_id).Text(x.sku).Int(x.quantity.has_value()).Int(x.quantity.value_or(0));
                 },
                 [&](const PlaceOrder& x) { c.Text(x.order_id); },
                 [&](const CancelOrder& x) { c.Text(x.order_id).Text(x.reason); },
             },
             command);
  const uint64_t h = XXH3_64bits(c.bytes().data(), c.bytes().size());
  return h != 0 ? h : 1;  // 0 means "not known"
}

storage::Result<std::optional<OrderState>> OrderCommands::SaveSnapshot(const std::string& order_id) const {
  auto state = Load(order_id);
  if (!state.ok()) return state.status();
  if (state->status == OrderStatus::kNone) return std::optional<OrderState>();
  if (auto s = snapshots_.Save(store_, OrderStream(order_id), *state); !s.ok()) return s;
  return std::optional<OrderState>(std::move(state).value());
}

storage::Result<OrderState> OrderCommands::Load(const std::string& order_id, LoadStats* stats) const {
  LoadStats local;
  LoadStats& st = stats != nullptr ? *stats : local;
  st = LoadStats{};
  OrderState state;
  const std::string stream = OrderStream(order_id);
  uint64_t next = 0;
  auto info = store_.GetStreamInfo(stream);
  if (info && info->hard_deleted) {
    // A tombstone: no event of it is ever read again, and nothing kept of it is used.
    st.hard_deleted = true;
    cache_.Erase(order_id);
    return state;
  }
  // With metadata, events may be gone that a kept state or a snapshot still holds.
  const bool may_use_kept = !info || !info->has_metadata;
  if (!may_use_kept) cache_.Erase(order_id);
  std::optional<OrderState> cached =
      may_use_kept && options_.cached_orders > 0 ? cache_.Get(order_id) : std::nullopt;
  if (cached && cached->version) {
    // The stream at the cached version (never behind it, see the header): the cached state
    // is the order. Further on: the events after it are read below.
    st.cached_version = cached->version;
    next = *cached->version + 1;
    state = std::move(*cached);
    if (!info || info->last_version.value <= *state.version) return state;
  } else {
    // Only an order that has crossed snapshot_every events can have a snapshot: don't look
    // for a file otherwise (a failed open per command cost 3% of the daemon under load).
    const bool may_have_snapshot =
        may_use_kept && info && options_.snapshot_every > 0 && info->event_count >= options_.snapshot_every;
    // A snapshot the log does not hold the end of (ahead of it, or of events it lost) is not
    // used: snapshots_.Load says why in st.snapshot_ignored.
    if (auto snap = may_have_snapshot ? snapshots_.Load(stream, &store_, &st.snapshot_ignored) : std::nullopt) {
      st.snapshot_version = snap->version;
      next = *snap->version + 1;
      state = std::move(*snap);
    }
    if (!st.snapshot_ignored.empty()) snapshot_load_failures_.fetch_add(1, std::memory_order_relaxed);
  }
  // No stream: nothing to read (an order not created yet, the usual first command).
  storage::Status s = !info ? storage::Status::Ok()
                            : ForEachOrderEvent(
                                  store_, order_id, next, UINT64_MAX,
                                  [&](RecordedOrderEvent&& e) {
                                    Apply(state, e);
                                    ++st.events_read;
                                  },
                                  &st.foreign);
  if (!s.ok()) {
    cache_.Erase(order_id);
    return s;
  }
  if (state.version && may_use_kept) cache_.Put(order_id, state);
  return state;
}

void OrderCommands::ForgetOrders(std::vector<std::string> order_ids, std::function<void(storage::Status)> done) const {
  for (const auto& id : order_ids) cache_.Erase(id);
  auto remove = [this, ids = std::move(order_ids), done = std::move(done)] {
    storage::Status result = storage::Status::Ok();
    for (const auto& id : ids) {
      if (auto s = snapshots_.Remove(OrderStream(id)); !s.ok() && result.ok()) result = s;
    }
    if (result.ok()) result = snapshots_.SyncDirectory();
    done(result);
  };
  if (options_.write_snapshot) {
    options_.write_snapshot(std::move(remove));
  } else {
    remove();
  }
}

void OrderCommands::Remember(const std::string& stream, OrderState state, const std::vector<OrderEvent>& events,
                             const CommandContext& context, const storage::AppendOk& appended) const {
  const uint64_t every = options_.snapshot_every;
  const uint64_t before = state.version ? *state.version + 1 : 0;  // events before the command
  const bool snapshot = every != 0 && (appended.last_version.value + 1) / every != before / every;
  if (appended.already_written || (!snapshot && options_.cached_orders == 0)) return;
  for (uint64_t i = 0; i < events.size(); ++i) {
    Apply(state, {events[i], context, appended.first_version.value + i, appended.first_position.value + i,
                  appended.timestamp});
  }
  if (!snapshot) {
    cache_.Put(OrderIdOf(stream).value_or(""), std::move(state));
    return;
  }
  cache_.Put(OrderIdOf(stream).value_or(""), state);
  // A snapshot is only a shortcut: if it cannot be written (nor the log synced under it),
  // loading reads more events.
  auto write = [this, stream, state = std::move(state)] { (void)snapshots_.Save(store_, stream, state); };
  if (options_.write_snapshot) {
    options_.write_snapshot(std::move(write));
  } else {
    write();
  }
}

std::string OrderCommands::DescribeEvents(const std::string& stream, const AppliedCommand& command) const {
  const std::string where = "version " + std::to_string(command.first_version);
  auto first = store_.ReadStream(stream, storage::StreamVersion(command.first_version), 1);
  if (!first.ok() || first->empty()) return "it wrote " + stream + " " + where;
  const storage::EventView& e = (*first)[0];
  std::string out = "it wrote " + std::string(e.type) + " " + EventToJson(e.type, e.data).value_or("") + " at " +
                    where + " (position " + std::to_string(e.position.value) + ")";
  if (command.last_version > command.first_version) {
    out += " and the events after it up to version " + std::to_string(command.last_version);
  }
  return out;
}

std::variant<OrderCommands::Plan, OrderCommands::Accepted, Rejection, storage::Status> OrderCommands::Prepare(
    const OrderCommand& command, const CommandContext& given, LoadStats* stats) const {
  const std::string& order_id = CommandOrderId(command);
  if (order_id.empty()) return Rejection{"invalid-argument", "the order id must not be empty"};
  CommandContext context = given;
  context.command_fingerprint = CommandFingerprint(command);
  LoadStats local;
  LoadStats& st = stats != nullptr ? *stats : local;
  auto loaded = Load(order_id, &st);
  if (st.foreign) {
    return Rejection{"foreign-event",
                     "order '" + order_id + "' takes no commands: " + st.foreign->Describe() +
                         " (appended directly, before order-<id> streams were reserved for the service). Nothing "
                         "was written; the Order service never changes such a stream. Use another order id (esctl "
                         "order create NEW-ID --customer C)"};
  }
  if (!loaded.ok()) return loaded.status();
  if (st.hard_deleted && std::holds_alternative<CreateOrder>(command)) return OrderDeleted(order_id);
  if (const AppliedCommand* done = loaded->FindCommand(context.command_id)) {
    // One id, one command: the same command again is a retry, another one a conflict. A
    // command written before fingerprints (0) is known by its id alone, as it was then.
    if (done->fingerprint != 0 && done->fingerprint != context.command_fingerprint) {
      return storage::Status::IdempotencyConflict(
          "command id '" + context.command_id + "' was already used on order '" + order_id + "' for another command: " +
          DescribeEvents(OrderStream(order_id), *done) +
          ". Nothing was written; a different command needs a command id of its own");
    }
    return Accepted{done->first_version, done->last_version, done->last_position, true};
  }
  auto decision = Decide(*loaded, command, NowMicros());
  if (auto* rejection = std::get_if<Rejection>(&decision)) return *rejection;
  Plan plan;
  plan.stream = OrderStream(order_id);
  plan.decided = std::get<std::vector<OrderEvent>>(std::move(decision));
  plan.context = context;
  for (uint32_t i = 0; i < plan.decided.size(); ++i) {
    EncodedEvent enc = Encode(plan.decided[i], context);
    storage::EventData d;
    d.id = context.command_id.empty() ? storage::EventId::Random() : CommandEventId(context.command_id, i);
    d.type = std::move(enc.type);
    d.content_type = std::string(kOrderContentType);
    d.metadata = std::move(enc.metadata);
    d.data = std::move(enc.data);
    plan.events.push_back(std::move(d));
  }
  plan.expected = loaded->version ? storage::ExpectedVersion::Exact(storage::StreamVersion(*loaded->version))
                                  : storage::ExpectedVersion::NoStream();
  plan.state = std::move(loaded).value();
  return plan;
}

std::optional<OrderCommands::Outcome> OrderCommands::Finish(const Plan& plan, const storage::AppendResult& r) const {
  if (r.ok()) {
    Remember(plan.stream, plan.state, plan.decided, plan.context, r.value());
    return Accepted{r->first_version.value, r->last_version.value, r->last_position.value, r->already_written};
  }
  // Decide again: the next load finds the stream past the cached version (if any) and
  // folds just the events after it.
  if (r.status().code() == storage::Status::Code::kWrongExpectedVersion) return std::nullopt;
  if (r.status().code() == storage::Status::Code::kStreamDeleted) {
    // Hard-deleted after the command was decided: answered as if it had been before.
    cache_.Erase(OrderIdOf(plan.stream).value_or(""));
    const std::string id = OrderIdOf(plan.stream).value_or("");
    if (!plan.decided.empty() && std::holds_alternative<OrderCreated>(plan.decided.front())) return OrderDeleted(id);
    return Rejection{"order-not-found", "order '" + id + "' does not exist"};
  }
  if (r.status().code() == storage::Status::Code::kIdempotencyConflict) {
    // A retry that raced its first attempt: that one was written after this was decided
    // (with another decision time in a create, so the store saw other content). Otherwise
    // the store holds this command's ids elsewhere: on another order, or on this one
    // further back than its recent commands reach.
    if (auto now = Load(OrderIdOf(plan.stream).value_or("")); now.ok()) {
      const AppliedCommand* done = now->FindCommand(plan.context.command_id);
      if (done != nullptr && done->fingerprint == plan.context.command_fingerprint) {
        return Accepted{done->first_version, done->last_version, done->last_position, true};
      }
    }
    return storage::Status::IdempotencyConflict(
        "command id '" + plan.context.command_id + "' was already used: the ids of its events derive from it, and " +
        r.status().message() + ". Nothing was written; a different command needs a command id of its own (a " +
        "retry of the same command is recognised among its order's last " +
        std::to_string(OrderState::kRecentCommands) + " commands)");
  }
  return r.status();
}

OrderCommands::Outcome OrderCommands::Execute(const OrderCommand& command, const CommandContext& context) {
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    auto prepared = Prepare(command, context);
    if (auto* accepted = std::get_if<Accepted>(&prepared)) return *accepted;
    if (auto* rejection = std::get_if<Rejection>(&prepared)) return *rejection;
    if (auto* error = std::get_if<storage::Status>(&prepared)) return *error;
    Plan& plan = std::get<Plan>(prepared);
    auto appended = store_.AppendSync(plan.stream, plan.expected, std::move(plan.events));  // Finish needs no events
    if (auto outcome = Finish(plan, appended)) return *outcome;
  }
  return Conflict{options_.max_attempts};
}

}  // namespace esd::domain
