#include "server/order_service.h"

#include <kj/debug.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>

#include "domain/codec.h"
#include "domain/erasure.h"
#include "domain/order_history.h"
#include "log/log.h"
#include "server/event_store_service.h"
#include "server/projection_runner.h"
#include "storage/stream_page.h"

namespace esd::server {

namespace {

using Outcome = domain::OrderCommands::Outcome;
constexpr auto kMinPositionTimeout = 5 * kj::SECONDS;
// forgetCustomer waits this long for the projection to reach the end of the log: longer
// than a query (it is rare, and an operator waits for it), short enough to answer while
// the projection catches up after a start.
constexpr auto kForgetCatchUpTimeout = 30 * kj::SECONDS;
// Rounds of "catch up, find the customer's orders, delete them": a second one finds an order
// whose create was in flight while the first one ran; more than a few means orders keep
// coming, and the caller is told so.
constexpr int kForgetRounds = 4;
constexpr uint64_t kCommandResultWords = 64;  // 512 bytes

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// `stream`: the order's, for the log line of a failed command.
void Fill(rpc::CommandResult::Builder out, const Outcome& o, DamageLog& damage_log, const std::string& stream) {
  if (auto* ok = std::get_if<domain::OrderCommands::Accepted>(&o)) {
    auto b = out.initOk();
    b.setVersion(ok->last_version);
    b.setPosition(ok->position);
    b.setAlreadyApplied(ok->already_applied);
  } else if (auto* r = std::get_if<domain::Rejection>(&o)) {
    auto b = out.initRejected();
    b.setRule(r->rule);
    b.setMessage(r->message);
  } else if (std::holds_alternative<domain::OrderCommands::Conflict>(o)) {
    out.setConflict();
  } else {
    const auto& s = std::get<storage::Status>(o);
    auto b = out.initFailed();
    const bool reused_id = s.code() == storage::Status::Code::kIdempotencyConflict;
    b.setCode(s.code() == storage::Status::Code::kOutOfSpace ? rpc::RejectCode::OUT_OF_SPACE
              : s.code() == storage::Status::Code::kOverloaded      ? rpc::RejectCode::OVERLOADED
              : s.code() == storage::Status::Code::kInvalidArgument ? rpc::RejectCode::INVALID_ARGUMENT
              : reused_id                                           ? rpc::RejectCode::IDEMPOTENCY_CONFLICT
              : s.IsDataLoss()                                      ? rpc::RejectCode::DATA_LOSS
                                                                    : rpc::RejectCode::UNAVAILABLE);
    b.setReason(reused_id ? s.message() : s.ToString());  // the code says what kind already
    // esctl tells the user to see the esd log for a failure it has no advice of its own
    // for (tools/esctl_order.cc). Not logged here: what has its own line (damage, a full
    // disk: DamageLog, the store's EventListener) and what the client alone can fix (a
    // reused command id, an overloaded writer: retry).
    if (!reused_id && !s.IsDataLoss() && s.code() != storage::Status::Code::kOverloaded &&
        s.code() != storage::Status::Code::kOutOfSpace) {
      log::Warn("a command on {} failed: {}", stream, s.ToString());
    }
    if (s.IsDataLoss()) {
      damage_log.Report(s, "loading an order for a command");
      FillDamage(b.initDamage(), s);
    }
  }
}

// What a history entry may take in the answer, at most: its JSON can be up to six times
// the event's data (every byte escaped as \u00XX, for a stream a client filled with odd
// order events), its metadata decodes into three of its texts.
uint64_t HistoryWireSize(const storage::EventView& e) {
  return e.type.size() + 6 * e.data.size() + e.metadata.size() + 64;
}

void FillView(rpc::OrderView::Builder out, const domain::OrderState& s) {
  out.setOrderId(s.order_id);
  out.setCustomerId(s.customer_id);
  out.setStatus(static_cast<rpc::OrderStatus>(s.status));
  auto lines = out.initLines(s.lines.size());
  for (size_t i = 0; i < s.lines.size(); ++i) {
    lines[i].setSku(s.lines[i].sku);
    lines[i].setQuantity(s.lines[i].quantity);
    lines[i].setUnitPriceCents(s.lines[i].unit_price_cents);
  }
  out.setTotalCents(s.total_cents);
  out.setVersion(s.version.value_or(0));
  out.setLastPosition(s.last_position);
  out.setCreatedAtMicros(s.created_at);
  out.setPlacedAtMicros(s.placed_at);
  out.setCancelledAtMicros(s.cancelled_at);
  out.setCancelReason(s.cancel_reason);
}

// An order's snapshot that exists but cannot be used costs its command a read of the whole
// stream, until the order's next snapshot replaces it. Logged (warn) at most once per 10 s
// (a busy order would say it on every command); esd_snapshot_load_failures_total counts
// each (ServerContext::ignored_snapshots_log).
void LogIgnoredSnapshot(ServerContext& ctx, const domain::OrderCommand& command, const std::string& why) {
  if (const uint64_t n = ctx.ignored_snapshots_log.Failed()) {
    log::Warn("the snapshot of {} is not used ({}); the order is read from its events ({} such loads since the "
              "last such line)",
              domain::OrderStream(domain::CommandOrderId(command)), why, n);
  }
}

// Prepare, append without blocking (AppendOnLoop), Finish; again on a conflict. Outcomes
// are boxed for the same reason as AppendOnLoop's results.
kj::Promise<kj::Own<Outcome>> Run(ServerContext& ctx, domain::OrderCommand command, domain::CommandContext context,
                                 int attempt) {
  domain::OrderCommands::LoadStats loaded;
  auto prepared = ctx.orders.Prepare(command, context, &loaded);
  if (!loaded.snapshot_ignored.empty()) LogIgnoredSnapshot(ctx, command, loaded.snapshot_ignored);
  if (auto* a = std::get_if<domain::OrderCommands::Accepted>(&prepared)) return kj::heap<Outcome>(*a);
  if (auto* r = std::get_if<domain::Rejection>(&prepared)) return kj::heap<Outcome>(*r);
  if (auto* s = std::get_if<storage::Status>(&prepared)) return kj::heap<Outcome>(*s);
  auto plan = std::make_shared<domain::OrderCommands::Plan>(std::get<domain::OrderCommands::Plan>(std::move(prepared)));
  auto appended = AppendOnLoop(ctx, plan->stream, plan->expected, std::move(plan->events));
  return appended.then([&ctx, plan, command = std::move(command), context = std::move(context),
                        attempt](kj::Own<storage::AppendResult> r) mutable -> kj::Promise<kj::Own<Outcome>> {
    if (auto outcome = ctx.orders.Finish(*plan, *r)) return kj::heap<Outcome>(std::move(*outcome));
    if (attempt >= ctx.orders.max_attempts()) return kj::heap<Outcome>(domain::OrderCommands::Conflict{attempt});
    return Run(ctx, std::move(command), std::move(context), attempt + 1);
  });
}

// esd_order_commands_total's labels for `o`: outcome ok, rejected (with the rule), conflict
// (the order kept changing) or failed (the store refused or failed, or damage).
std::vector<std::string> CommandLabels(const Outcome& o) {
  if (std::holds_alternative<domain::OrderCommands::Accepted>(o)) return {"ok", ""};
  if (auto* r = std::get_if<domain::Rejection>(&o)) return {"rejected", r->rule};
  if (std::holds_alternative<domain::OrderCommands::Conflict>(o)) return {"conflict", ""};
  return {"failed", ""};
}

rpc::RejectCode CodeOf(const storage::Status& s) {
  switch (s.code()) {
    case storage::Status::Code::kOutOfSpace: return rpc::RejectCode::OUT_OF_SPACE;
    case storage::Status::Code::kOverloaded: return rpc::RejectCode::OVERLOADED;
    case storage::Status::Code::kInvalidArgument: return rpc::RejectCode::INVALID_ARGUMENT;
    default: return s.IsDataLoss() ? rpc::RejectCode::DATA_LOSS : rpc::RejectCode::UNAVAILABLE;
  }
}

void FailForget(rpc::ForgetCustomerResult::Builder result, rpc::RejectCode code, const std::string& reason) {
  auto failed = result.initFailed();
  failed.setCode(code);
  failed.setReason(reason);
}

uint64_t WallClockMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

domain::RemoveItem RemoveItemCommand(std::string order_id, std::string sku, uint32_t quantity) {
  std::optional<uint32_t> some;
  if (quantity != 0) some = quantity;
  return domain::RemoveItem{std::move(order_id), std::move(sku), some};
}

kj::Promise<void> ServeCommand(ServerContext& ctx, Role role, rpc::CommandMeta::Reader meta,
                               domain::OrderCommand command, kj::Function<rpc::CommandResult::Builder()> answer) {
  if (role < Role::kWriter || ctx.stopping) {
    ctx.ops.order_commands.Add({"failed", ""});
    auto failed = answer().initFailed();
    failed.setCode(ctx.stopping ? rpc::RejectCode::UNAVAILABLE : rpc::RejectCode::PERMISSION_DENIED);
    failed.setReason(ctx.stopping ? std::string("the server is shutting down")
                                  : std::string("role ") + RoleName(role) + " may not send commands (needs writer)");
    return kj::READY_NOW;
  }
  std::string stream = domain::OrderStream(domain::CommandOrderId(command));
  domain::CommandContext cc{Str(meta.getCommandId()), Str(meta.getCorrelationId()), std::string("role:") + RoleName(role)};
  return Run(ctx, std::move(command), std::move(cc), 1)
      .then([&ctx, answer = kj::mv(answer), stream = std::move(stream)](kj::Own<Outcome> o) mutable {
        if (std::holds_alternative<domain::OrderCommands::Accepted>(*o)) {
          ctx.ops.order_commands_ok.fetch_add(1, std::memory_order_relaxed);
        } else {
          ctx.ops.order_commands.Add(CommandLabels(*o));
        }
        Fill(answer(), *o, ctx.damage_log, stream);
      });
}

template <typename Context>
kj::Promise<void> OrderServiceImpl::Command(Context context, rpc::CommandMeta::Reader meta,
                                            domain::OrderCommand command) {
  // Sized for the usual answer (ok, or a rejection's sentence): without a size hint,
  // Cap'n Proto's RPC gives every answer an 8 KiB first segment, calloc'ed and zeroed,
  // which was a tenth of the daemon's instructions per command. A longer answer (a damage
  // report) just takes another segment.
  return ServeCommand(ctx_, role_, meta, std::move(command), [context]() mutable {
    return context.getResults(capnp::MessageSize{kCommandResultWords, 0}).initResult();
  });
}

kj::Promise<void> OrderServiceImpl::createOrder(CreateOrderContext context) {
  auto p = context.getParams();
  return Command(context, p.getMeta(), domain::CreateOrder{Str(p.getOrderId()), Str(p.getCustomerId())});
}

kj::Promise<void> OrderServiceImpl::addItem(AddItemContext context) {
  auto p = context.getParams();
  return Command(context, p.getMeta(),
                 domain::AddItem{Str(p.getOrderId()), Str(p.getSku()), p.getQuantity(), p.getUnitPriceCents()});
}

kj::Promise<void> OrderServiceImpl::removeItem(RemoveItemContext context) {
  auto p = context.getParams();
  return Command(context, p.getMeta(), RemoveItemCommand(Str(p.getOrderId()), Str(p.getSku()), p.getQuantity()));
}

kj::Promise<void> OrderServiceImpl::placeOrder(PlaceOrderContext context) {
  auto p = context.getParams();
  return Command(context, p.getMeta(), domain::PlaceOrder{Str(p.getOrderId())});
}

kj::Promise<void> OrderServiceImpl::cancelOrder(CancelOrderContext context) {
  auto p = context.getParams();
  return Command(context, p.getMeta(), domain::CancelOrder{Str(p.getOrderId()), Str(p.getReason())});
}

kj::Promise<void> OrderServiceImpl::getOrder(GetOrderContext context) {
  auto p = context.getParams();
  const std::string id = Str(p.getOrderId());
  auto as_of = p.getAsOf();
  if (!as_of.isLatest()) {
    domain::OrderHistory history(ctx_.store);
    storage::Result<domain::OrderState> state = storage::Status::NotFound("");
    switch (as_of.which()) {
      case rpc::AsOf::VERSION: state = history.AsOfVersion(id, as_of.getVersion()); break;
      case rpc::AsOf::TIME_MICROS: state = history.AsOfTime(id, as_of.getTimeMicros()); break;
      default: KJ_FAIL_REQUIRE("unknown kind of asOf", static_cast<uint>(as_of.which()));
    }
    auto result = context.getResults().initResult();
    if (!state.ok()) {
      if (!state.status().IsDataLoss()) KJ_FAIL_ASSERT("reading the order failed", state.status().ToString());
      ctx_.damage_log.Report(state.status(), "a read of order '" + id + "'");
      FillDamage(result.initDamaged(), state.status());
      return kj::READY_NOW;
    }
    if (state->status == domain::OrderStatus::kNone) {
      result.setNotFound();
    } else {
      FillView(result.initFound(), *state);
    }
    return kj::READY_NOW;
  }
  auto waited = ctx_.projection.WaitFor(p.getMinPosition(), kMinPositionTimeout);
  return waited.then([this, context, id](ProjectionRunner::Wait wait) mutable {
    auto result = context.getResults().initResult();
    if (wait == ProjectionRunner::Wait::kTimeout) return result.setTimeout();
    if (wait == ProjectionRunner::Wait::kDamaged) return FillDamage(result.initDamaged(), *ctx_.projection.damage());
    const domain::OrderState* state = ctx_.projection.projection().Get(id);
    if (state == nullptr) return result.setNotFound();
    FillView(result.initFound(), *state);
  });
}

kj::Promise<void> OrderServiceImpl::listOrders(ListOrdersContext context) {
  auto p = context.getParams();
  // A page may be large (1,000 orders of up to 1,000 lines): wait while this connection has
  // answers its client has not taken, then for the projection.
  auto waited = connection_->WhenOutgoingBelow(kMaxOutgoingBytes).then([this, p] {
    return ctx_.projection.WaitFor(p.getMinPosition(), kMinPositionTimeout);
  });
  return waited.then([this, context](ProjectionRunner::Wait wait) mutable {
    auto p = context.getParams();
    auto results = context.getResults();
    if (wait == ProjectionRunner::Wait::kTimeout) {
      results.setTimeout(true);
      return;
    }
    if (wait == ProjectionRunner::Wait::kDamaged) {
      FillDamage(results.initDamage(), *ctx_.projection.damage());
      return;
    }
    std::optional<domain::OrderStatus> status;
    if (p.getStatus() != rpc::OrderStatus::NONE) {
      KJ_REQUIRE(static_cast<uint16_t>(p.getStatus()) <= 3, "unknown order status");
      status = static_cast<domain::OrderStatus>(p.getStatus());
    }
    const size_t page_size = p.getPageSize() == 0 ? 50 : std::min<size_t>(p.getPageSize(), 1000);
    auto page = ctx_.projection.projection().List(Str(p.getCustomerId()), status, page_size, Str(p.getPageToken()));
    KJ_REQUIRE(page.has_value(), "unknown page token: start again with an empty one");
    auto list = results.initOrders(page->orders.size());
    for (size_t i = 0; i < page->orders.size(); ++i) FillView(list[i], *page->orders[i]);
    results.setNextPageToken(page->next_page_token);
  });
}

kj::Promise<void> OrderServiceImpl::history(HistoryContext context) {
  // Up to 16 MiB: waits while this connection has answers its client has not taken.
  return connection_->WhenOutgoingBelow(kMaxOutgoingBytes).then([this, context]() mutable { HistoryNow(context); });
}

void OrderServiceImpl::HistoryNow(HistoryContext context) {
  auto params = context.getParams();
  const std::string id = Str(params.getOrderId());
  const uint64_t from = params.getFromVersion();
  auto results = context.getResults();
  results.setNextVersion(from);
  auto page = storage::ReadStreamPage(ctx_.store, domain::OrderStream(id), storage::StreamVersion(from), kMaxReadCount,
                                      storage::Direction::kForward, kMaxReadBytes, HistoryWireSize);
  if (!page.ok() && page.status().IsDataLoss()) {
    ctx_.damage_log.Report(page.status(), "a read of order '" + id + "'");
    FillDamage(results.initDamage(), page.status());
    return;
  }
  // No such order, or a deleted one (its events are gone): nothing more to come.
  const bool none = !page.ok() && (page.status().code() == storage::Status::Code::kNotFound ||
                                   page.status().code() == storage::Status::Code::kStreamDeleted);
  if (!page.ok() && !none) {
    KJ_FAIL_ASSERT("reading the order failed", page.status().ToString());
  }
  if (none) {
    results.setEndOfHistory(true);
    return;
  }
  auto list = results.initEvents(page->events.size());
  for (size_t i = 0; i < page->events.size(); ++i) {
    const storage::EventView& e = page->events[i];
    auto out = list[i];
    out.setVersion(e.version.value);
    out.setPosition(e.position.value);
    out.setTimestampMicros(e.timestamp);
    out.setType(std::string(e.type));
    out.setJson(domain::EventToJson(e.type, e.data).value_or("null"));
    auto meta = domain::DecodeMetadata(e.metadata);
    out.setCommandId(meta.command_id);
    out.setCorrelationId(meta.correlation_id);
    out.setCausedBy(meta.caused_by);
  }
  results.setNextVersion(page->next.value);
  results.setEndOfHistory(page->end);
}

kj::Promise<void> OrderServiceImpl::forgetCustomer(ForgetCustomerContext context) {
  auto result = context.getResults().initResult();
  if (role_ != Role::kAdmin) {
    FailForget(result, rpc::RejectCode::PERMISSION_DENIED,
               std::string("role ") + RoleName(role_) + " may not forget a customer (needs admin)");
    return kj::READY_NOW;
  }
  if (ctx_.stopping) {
    FailForget(result, rpc::RejectCode::UNAVAILABLE, "the server is shutting down; nothing was done");
    return kj::READY_NOW;
  }
  const std::string customer = Str(context.getParams().getCustomerId());
  if (customer.empty()) {
    FailForget(result, rpc::RejectCode::INVALID_ARGUMENT, "the customer id must not be empty; nothing was done");
    return kj::READY_NOW;
  }
  // Every order of the customer written before this call is in the projection once it has
  // applied the log up to here. Nothing is done while it waits.
  const uint64_t end = ctx_.store.DurablePosition().value;
  return ctx_.projection.CaughtUpTo(end, kForgetCatchUpTimeout)
      .then([this, context, customer, end](ProjectionRunner::Wait wait) mutable {
        auto result = context.getResults().getResult();
        if (wait == ProjectionRunner::Wait::kTimeout) {
          return FailForget(result, rpc::RejectCode::UNAVAILABLE,
                            "the order projection, which knows the customer's orders, has not reached the end of the "
                            "log yet (it has applied " + std::to_string(ctx_.projection.checkpoint()) + " of " +
                                std::to_string(end) + " positions); nothing was done. Run esctl order "
                                "forget-customer CUSTOMER again once it has caught up (esctl status shows its lag)");
        }
        if (wait == ProjectionRunner::Wait::kDamaged) {
          FailForget(result, rpc::RejectCode::DATA_LOSS,
                     "the order projection stopped at damage in the log, so the customer's orders cannot all be "
                     "known; nothing was done");
          return FillDamage(result.getFailed().initDamage(), *ctx_.projection.damage());
        }
        ForgetNow(result, customer);
      });
}

void OrderServiceImpl::ForgetNow(rpc::ForgetCustomerResult::Builder result, const std::string& customer) {
  // One turn of the event loop, which waits here for the writer and the disk (a few group
  // commits and file syncs, and the projection's snapshot): no command is decided and no
  // caller can go away in between, so no step is left half done by a cancelled call. An
  // operator's rare request, as `snapshot create` is.
  uint64_t deleted = 0;
  storage::Status failure = storage::Status::Ok();
  std::string failed_at;
  bool all_gone = false;
  for (int round = 0; round <= kForgetRounds && failure.ok(); ++round) {
    // Orders whose creates were in flight when the wait ended come in here.
    if (auto s = ctx_.projection.CatchUpNow(); !s.ok()) {
      failure = s;
      failed_at = "the order projection stopped at damage in the log";
      break;
    }
    const std::vector<std::string> ids = ctx_.projection.OrdersOf(customer);
    if (ids.empty()) {
      all_gone = true;
      break;
    }
    if (round == kForgetRounds) break;  // orders keep coming: said below
    // Snapshots first: while this turn lasts no command can queue another, and once the
    // streams are deleted none is written for them again (OrderSnapshots::Save).
    std::promise<storage::Status> removed;
    auto removal = removed.get_future();
    ctx_.orders.ForgetOrders(ids, [&removed](storage::Status s) { removed.set_value(std::move(s)); });
    if (auto s = removal.get(); !s.ok()) {
      failure = s;
      failed_at = "removing the orders' snapshot files failed";
      break;
    }
    domain::HardDeleted hard = domain::HardDeleteOrders(ctx_.store, ids);
    deleted += hard.deleted;
    ctx_.projection.Drop(hard.gone);  // at once: before this answers
    if (!hard.failure.ok()) {
      failure = hard.failure;
      failed_at = "hard-deleting the order streams failed";
    }
  }
  // Rewritten even when nothing was deleted now: an earlier call that did not finish may
  // have left the orders in the last snapshot (a restart drops them from memory only).
  if (failure.ok()) {
    if (auto s = ctx_.projection.SaveSnapshot(); !s.ok()) {
      failure = s;
      failed_at = "rewriting the order projection's snapshot failed";
    }
  }
  // The audit record says what was done, also when not all of it was.
  std::optional<uint64_t> audit_position;
  storage::Status audit_failure = storage::Status::Ok();
  if (failure.ok() || deleted > 0) {
    auto audited = domain::AppendErasureAudit(ctx_.store, {WallClockMicros(), RoleName(role_), deleted});
    if (audited.ok()) {
      audit_position = audited->last_position.value;
    } else {
      audit_failure = audited.status();
    }
  }
  // No customer id in the log either: it is not to be kept anywhere.
  log::Info("forget-customer (role {}): {} order streams hard-deleted{}{}", RoleName(role_), deleted,
            audit_position ? "; audit record at position " + std::to_string(*audit_position) : std::string(),
            failure.ok() ? std::string() : "; " + failed_at + ": " + failure.ToString());
  const std::string again = "run esctl order forget-customer CUSTOMER again to finish (it deletes what is left)";
  if (!failure.ok()) {
    FailForget(result, CodeOf(failure),
               failed_at + " (" + failure.ToString() + ") after " + std::to_string(deleted) +
                   " order streams of the customer were hard-deleted; " + again);
    if (failure.IsDataLoss()) FillDamage(result.getFailed().initDamage(), failure);
    return;
  }
  if (!audit_position) {
    FailForget(result, CodeOf(audit_failure),
               std::to_string(deleted) + " order streams of the customer were hard-deleted, but the audit record "
               "could not be written (" + audit_failure.ToString() + "); " + again + " and to write it");
    return;
  }
  if (!all_gone) {
    FailForget(result, rpc::RejectCode::UNAVAILABLE,
               "orders of the customer kept being created while they were deleted (" + std::to_string(deleted) +
                   " order streams hard-deleted so far); " + again);
    return;
  }
  auto ok = result.initOk();
  ok.setStreamsDeleted(deleted);
  ok.setAuditPosition(*audit_position);
}

}  // namespace esd::server
