#include "domain/order_commands.h"

#include <xxhash.h>

#include <chrono>
#include <cstring>

#include "domain/codec.h"
#include "domain/order_history.h"

namespace esd::domain {

namespace {

uint64_t NowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

std::string OrderStream(const std::string& order_id) { return "order-" + order_id; }

std::optional<std::string> OrderIdOf(std::string_view stream) {
  constexpr std::string_view kPrefix = "order-";
  if (stream.size() <= kPrefix.size() || stream.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  return std::string(stream.substr(kPrefix.size()));
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
  // Only an order that has crossed snapshot_every events can have a snapshot: don't look
  // for a file otherwise (a failed open per command cost 3% of the daemon under load).
  auto info = store_.GetStreamInfo(stream);
  const bool may_have_snapshot = info && options_.snapshot_every > 0 && info->event_count >= options_.snapshot_every;
  // A snapshot the log does not hold the end of (ahead of it, or of events it lost) is not
  // used: snapshots_.Load says why in st.snapshot_ignored.
  if (auto snap = may_have_snapshot ? snapshots_.Load(stream, &store_, &st.snapshot_ignored) : std::nullopt) {
    st.snapshot_version = snap->version;
    next = *snap->version + 1;
    state = std::move(*snap);
  }
  if (!st.snapshot_ignored.empty()) snapshot_load_failures_.fetch_add(1, std::memory_order_relaxed);
  storage::Status s = ForEachOrderEvent(store_, order_id, next, UINT64_MAX, [&](RecordedOrderEvent&& e) {
    Apply(state, e);
    ++st.events_read;
  });
  if (!s.ok()) return s;
  return state;
}

void OrderCommands::MaybeSnapshot(const std::string& stream, OrderState state, const std::vector<OrderEvent>& events,
                                  const CommandContext& context, const storage::AppendOk& appended) const {
  const uint64_t every = options_.snapshot_every;
  const uint64_t before = state.version ? *state.version + 1 : 0;  // events before the command
  if (every == 0 || appended.already_written || (appended.last_version.value + 1) / every == before / every) return;
  for (uint64_t i = 0; i < events.size(); ++i) {
    Apply(state, {events[i], context, appended.first_version.value + i, appended.first_position.value + i,
                  appended.timestamp});
  }
  // A snapshot is only a shortcut: if it cannot be written (nor the log synced under it),
  // loading reads more events.
  (void)snapshots_.Save(store_, stream, state);
}

std::variant<OrderCommands::Plan, OrderCommands::Accepted, Rejection, storage::Status> OrderCommands::Prepare(
    const OrderCommand& command, const CommandContext& context, LoadStats* stats) const {
  const std::string& order_id = CommandOrderId(command);
  if (order_id.empty()) return Rejection{"invalid-argument", "the order id must not be empty"};
  auto loaded = Load(order_id, stats);
  if (!loaded.ok()) return loaded.status();
  if (const AppliedCommand* done = loaded->FindCommand(context.command_id)) {
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
    MaybeSnapshot(plan.stream, plan.state, plan.decided, plan.context, r.value());
    return Accepted{r->first_version.value, r->last_version.value, r->last_position.value, r->already_written};
  }
  if (r.status().code() == storage::Status::Code::kWrongExpectedVersion) return std::nullopt;  // decide again
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
