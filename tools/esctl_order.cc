#include "tools/esctl_order.h"

#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include "tools/esctl_output.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

using client::Client;
using client::CommandOutcome;

// `list` asks for this many orders per request.
constexpr uint32_t kListPageSize = 100;

void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

void Note(const std::string& text) { std::fprintf(stderr, "esctl: %s\n", text.c_str()); }

std::string Quoted(const std::string& id) { return "'" + id + "'"; }

// The value of a flag that must be given and not be empty.
std::string Required(const Invocation& inv, std::string_view flag) {
  auto v = inv.Value(flag);
  if (!v) throw UsageError(inv.command + ": --" + std::string(flag) + " is required");
  if (v->empty()) throw UsageError(inv.command + ": --" + std::string(flag) + " must not be empty");
  return *v;
}

std::string OrderId(const Invocation& inv) {
  if (inv.positional[0].empty()) throw UsageError(inv.command + ": the order ID must not be empty");
  return inv.positional[0];
}

int64_t ParseCents(const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || v < 0) {
    throw UsageError("--price: expected whole cents, 0 or more (310 for 3.10), got '" + text + "'");
  }
  return v;
}

uint64_t MinPosition(const Invocation& inv) {
  auto p = inv.Value("min-position");
  return p ? ParseNumber("min-position", *p) : 0;
}

std::string NotReached(uint64_t min_position) {
  return "the order projection has not applied position " + std::to_string(min_position) +
         " (esd waits up to 5 s for it, and not at all for a position past the end of the log). It may still be "
         "catching up after a start: retry, or leave out --min-position for what it has applied so far.";
}

// A command that writes: who it is for, its id, and how to send it.
struct Write {
  std::string order_id;
  std::string command_id;
  std::function<CommandOutcome(Client&)> send;
};

Write PrepareWrite(const Invocation& inv) {
  Write w;
  w.order_id = OrderId(inv);
  if (auto id = inv.Value("command-id")) {
    if (id->empty()) throw UsageError(inv.command + ": --command-id must not be empty");
    w.command_id = *id;
  } else {
    w.command_id = client::FormatEventId(client::NewEventId());
  }
  const std::string& cmd = inv.command;
  const std::string order = w.order_id, command_id = w.command_id;
  if (cmd == "order create") {
    const std::string customer = Required(inv, "customer");
    const std::string correlation = inv.Value("correlation-id").value_or("");
    w.send = [=](Client& c) { return c.CreateOrder(order, customer, command_id, correlation); };
  } else if (cmd == "order add-item") {
    const std::string sku = Required(inv, "sku");
    const uint32_t qty = ParseCount("qty", Required(inv, "qty"));
    const int64_t price = ParseCents(Required(inv, "price"));
    w.send = [=](Client& c) { return c.AddItem(order, sku, qty, price, command_id); };
  } else if (cmd == "order remove-item") {
    const std::string sku = Required(inv, "sku");
    uint32_t qty = 0;  // the whole line
    if (auto q = inv.Value("qty")) qty = ParseCount("qty", *q);
    w.send = [=](Client& c) { return c.RemoveItem(order, sku, qty, command_id); };
  } else if (cmd == "order place") {
    w.send = [=](Client& c) { return c.PlaceOrder(order, command_id); };
  } else if (cmd == "order cancel") {
    const std::string reason = inv.Value("reason").value_or("");
    w.send = [=](Client& c) { return c.CancelOrder(order, reason, command_id); };
  } else {
    throw UsageError("unknown command '" + cmd + "'");
  }
  return w;
}

int RunWrite(const Invocation& inv, const Connector& connect, const ErrorReporter& report) {
  const Write w = PrepareWrite(inv);
  const std::string retry = "run it again with --command-id " + w.command_id + ", which applies it at most once";
  auto c = connect();  // errors here propagate: nothing was sent
  CommandOutcome o;
  try {
    o = w.send(*c);
  } catch (const client::Error& e) {
    const int code = report(e);
    Note("the command may or may not have been applied; to finish it, " + retry);
    return code;
  }
  const bool json = inv.global.json;
  const auto result_json = [&](JsonObject o) {
    if (json) Print(o.String("orderId", w.order_id).String("commandId", w.command_id).Done() + "\n");
  };
  switch (o.kind) {
    case CommandOutcome::Kind::kOk: Print(OrderCommandLine(w.order_id, w.command_id, o, json)); return kExitOk;
    case CommandOutcome::Kind::kRejected:
      result_json(JsonObject().String("result", "rejected").String("rule", o.rule).String("message", o.message));
      Note("rejected by rule " + o.rule + ": " + o.message);
      return kExitNotDone;
    case CommandOutcome::Kind::kConflict:
      result_json(JsonObject().String("result", "conflict").String("message", o.message));
      Note("conflict: order " + Quoted(w.order_id) + " kept changing while the command was decided (" + o.message +
           "); nothing was written. To try again, " + retry);
      return kExitNotDone;
    case CommandOutcome::Kind::kFailed: break;
  }
  result_json(JsonObject().String("result", "failed").String("code", o.code).String("message", o.message));
  if (o.damage) return ReportDamage(*o.damage, "the command was not applied: the order's events cannot be loaded");
  if (o.code == "idempotency-conflict") {
    Note("idempotency conflict: " + o.message + "\nTo send this command, give it a command id of its own: leave out "
         "--command-id (esctl then makes a new one), or pass one not used before.");
    return ExitForRejectCode(o.code);
  }
  std::string what = "the server did not take the command (" + o.code + "): " + o.message + "\n";
  if (o.code == "permission-denied") {
    what += "Commands that change orders need a token with the writer role; pass one with --token or $ESD_TOKEN.";
  } else if (o.code == "unavailable") {
    what += "Once esd is running again, " + retry + ".";
  } else if (o.code == "out-of-space") {
    what += "Free space on the server's data disk, then " + retry + ".";
  } else if (o.code == "overloaded") {
    what += "esd has more queued for its disk than it takes; wait a moment, then " + retry + ".";
  } else {
    what += "See the esd log for details; once it is resolved, " + retry + ".";
  }
  Note(what);
  return ExitForRejectCode(o.code);
}

int Get(const Invocation& inv, const Connector& connect) {
  const std::string id = OrderId(inv);
  const auto at_version = inv.Value("at-version"), at_time = inv.Value("at-time"), min = inv.Value("min-position");
  if (at_version && at_time) throw UsageError("order get: --at-version and --at-time exclude each other");
  if (min && (at_version || at_time)) {
    throw UsageError("order get: --min-position is for the latest state, not with --at-version or --at-time");
  }
  std::optional<uint64_t> version, time;
  if (at_version) version = ParseNumber("at-version", *at_version);
  if (at_time) {
    time = ParseTimestamp(*at_time);
    if (!time) {
      throw UsageError("--at-time: expected a UTC time like 2026-11-26T11:22:15.571709Z (the fraction and Z are "
                       "optional), got '" + *at_time + "'");
    }
  }
  const uint64_t min_position = MinPosition(inv);

  auto c = connect();
  const client::OrderQuery q = version ? c->GetOrderAtVersion(id, *version)
                               : time  ? c->GetOrderAtTime(id, *time)
                                       : c->GetOrder(id, min_position);
  if (q.timed_out) {
    Note(NotReached(min_position));
    return kExitFailure;
  }
  if (q.damage) {
    return ReportDamage(*q.damage, version || time ? "order " + Quoted(id) + " cannot be read from its stream"
                                                   : "the order projection stopped there, before --min-position");
  }
  if (!q.order) {
    if (time) {
      Note("order " + Quoted(id) + " not found as of " + FormatTimestamp(*time) + ": it did not exist yet then, or "
           "does not exist at all");
    } else if (version) {
      Note("order " + Quoted(id) + " not found");
    } else {
      Note("order " + Quoted(id) + " not found" +
           (min_position == 0 ? std::string(" (to see an order a command just wrote, pass --min-position with the "
                                            "position that command printed)")
                              : std::string()));
    }
    return kExitFailure;
  }
  Print(OrderText(*q.order, inv.global.json));
  return kExitOk;
}

int List(const Invocation& inv, const Connector& connect) {
  const std::string customer = Required(inv, "customer");
  const std::string status = inv.Value("status").value_or("");
  if (inv.Value("status") && status != "open" && status != "placed" && status != "cancelled") {
    throw UsageError("--status: expected open, placed or cancelled, got '" + status + "'");
  }
  const uint64_t min_position = MinPosition(inv);

  auto c = connect();
  std::string token;
  size_t listed = 0;
  while (true) {
    const client::OrderPage page = c->ListOrders(customer, status, kListPageSize, token, min_position);
    if (page.timed_out) {
      Note(NotReached(min_position));
      return kExitFailure;
    }
    if (page.damage) return ReportDamage(*page.damage, "the order projection stopped there, before --min-position");
    std::string out;
    for (const auto& o : page.orders) out += OrderListLine(o, inv.global.json);
    Print(out);
    listed += page.orders.size();
    // The second: a page without orders, or the same token again, would not get further.
    if (page.next_page_token.empty() || page.orders.empty() || page.next_page_token == token) break;
    token = page.next_page_token;
  }
  if (listed == 0) {
    Note("customer " + Quoted(customer) + " has no orders" + (status.empty() ? "" : " with status " + status));
  }
  return kExitOk;
}

int History(const Invocation& inv, const Connector& connect) {
  const std::string id = OrderId(inv);
  auto c = connect();
  // Page by page (10,000 events per call), each printed as it comes.
  bool any = false;
  for (uint64_t from = 0;;) {
    const client::HistoryPage page = c->HistoryFrom(id, from);
    std::string out;
    for (const auto& e : page.events) out += HistoryLine(e, inv.global.json);
    Print(out);
    any = any || !page.events.empty();
    if (page.end_of_history || page.events.empty()) break;
    from = page.next_version;
  }
  if (!any) {
    Note("order " + Quoted(id) + " has no events: it does not exist");
    return kExitFailure;
  }
  return kExitOk;
}

int ForgetCustomer(const Invocation& inv, const Connector& connect, const ErrorReporter& report) {
  const std::string customer = inv.positional[0];
  if (customer.empty()) throw UsageError(inv.command + ": the customer ID must not be empty");
  const std::string again = "esctl order forget-customer " + customer;
  auto c = connect();  // errors here propagate: nothing was sent
  client::ForgetOutcome o;
  try {
    o = c->ForgetCustomer(customer);
  } catch (const client::Error& e) {
    const int code = report(e);
    Note("the erasure may or may not have been done, in whole or in part; to finish it, run " + again +
         " again (forgetting a customer again deletes what is left, and is no error)");
    return code;
  }
  const bool json = inv.global.json;
  if (o.ok) {
    if (json) {
      Print(JsonObject()
                .String("result", "ok")
                .String("customerId", customer)
                .Number("streamsDeleted", o.streams_deleted)
                .Number("auditPosition", o.audit_position)
                .Done() +
            "\n");
    } else {
      Print("customer " + Quoted(customer) + " forgotten: " + std::to_string(o.streams_deleted) +
            " order stream(s) hard-deleted; audit record at position " + std::to_string(o.audit_position) +
            " of $erasures\n");
    }
    // The bytes are only unreachable until a scavenge rewrites the segments that hold them.
    Note("their events are unreadable now; their bytes leave the data directory at the next scavenge (esctl "
         "scavenge start)");
    return kExitOk;
  }
  if (json) {
    Print(JsonObject().String("result", "failed").String("code", o.code).String("message", o.message).Done() + "\n");
  }
  if (o.damage) return ReportDamage(*o.damage, "the customer was not forgotten: " + o.message);
  std::string what = "the server did not forget the customer (" + o.code + "): " + o.message;
  if (o.code == "permission-denied") {
    what += "\nForgetting a customer needs a token with the admin role; pass one with --token or $ESD_TOKEN.";
  }
  Note(what);
  return ExitForRejectCode(o.code);
}

}  // namespace

int ReportDamage(const client::Damage& damage, const std::string& context) {
  Note("the log is damaged at " + damage.ToString() + (context.empty() ? std::string() : "\n" + context) +
       ".\nesd serves nothing from damaged bytes. 'esctl verify' lists the store's damage; keep a copy of the data "
       "directory and restore the damaged segment file from a backup.");
  return kExitDamage;
}

int RunOrder(const Invocation& inv, const Connector& connect, const ErrorReporter& report) {
  if (inv.command == "order get") return Get(inv, connect);
  if (inv.command == "order list") return List(inv, connect);
  if (inv.command == "order history") return History(inv, connect);
  if (inv.command == "order forget-customer") return ForgetCustomer(inv, connect, report);
  return RunWrite(inv, connect, report);
}

}  // namespace esd::esctl
