#include "tools/esctl_snapshot.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "domain/order_commands.h"
#include "domain/projections.h"
#include "domain/snapshots.h"
#include "storage/file.h"
#include "storage/store.h"
#include "tools/esctl_offline.h"
#include "tools/esctl_output.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

using Info = client::Client::SnapshotInfo;
using Target = client::Client::SnapshotTarget;

void Note(const std::string& s) { std::fprintf(stderr, "esctl: %s\n", s.c_str()); }

std::string What(const Target& t) { return t.projection ? "projection " + t.name : t.name; }

std::string OrderJson(const domain::OrderState& s) {
  std::string lines = "[", commands = "[";
  for (const auto& l : s.lines) {
    JsonObject o;
    o.String("sku", l.sku).Number("quantity", l.quantity).Integer("unitPriceCents", l.unit_price_cents);
    if (lines.size() > 1) lines += ',';
    lines += o.Done();
  }
  for (const auto& c : s.recent_commands) {
    JsonObject o;
    o.String("commandId", c.command_id).Number("firstVersion", c.first_version).Number("lastVersion", c.last_version);
    if (commands.size() > 1) commands += ',';
    commands += o.Done();
  }
  JsonObject o;
  o.String("orderId", s.order_id)
      .String("customerId", s.customer_id)
      .String("status", domain::StatusName(s.status))
      .Raw("lines", lines + "]")
      .Integer("totalCents", s.total_cents)
      .Number("version", s.version.value_or(0))
      .Number("lastPosition", s.last_position)
      .Time("createdAt", s.created_at)
      .Time("placedAt", s.placed_at)
      .Time("cancelledAt", s.cancelled_at)
      .String("cancelReason", s.cancel_reason)
      .Raw("recentCommands", commands + "]");
  return o.Done();
}

// STREAM (order-ID), or --projection orders; throws UsageError when neither fits.
Target TargetOf(const Invocation& inv) {
  if (auto p = inv.Value("projection")) {
    if (!inv.positional.empty() || *p != "orders") {
      throw UsageError(inv.command + ": give either STREAM or --projection orders (the one projection there is)");
    }
    return Target::Projection(*p);
  }
  if (inv.positional.empty() || !domain::OrderIdOf(inv.positional[0])) {
    throw UsageError(inv.command + ": give an order stream (order-ID) or --projection orders; only orders have "
                     "snapshots");
  }
  return Target::Stream(inv.positional[0]);
}

Info ToInfo(const domain::SnapshotEntry& e) {
  return {e.file,    e.bytes,   e.ok, e.problem, e.kind == domain::SnapshotEntry::Kind::kProjection,
          e.name,    e.version, e.orders};
}

constexpr char kDamaged[] = "damaged, or another format";

// One line per snapshot (or a JSON object).
void PrintInfo(const Info& s, bool json) {
  if (json) {
    JsonObject o;
    o.String("file", s.file).Number("bytes", s.bytes).Bool("ok", s.ok);
    if (!s.ok) o.String("problem", s.problem.empty() ? kDamaged : s.problem);
    if (s.projection) {
      o.String("projection", s.name);
      if (s.ok) o.Number("checkpoint", s.version).Number("orders", s.orders);
    } else if (s.ok) {
      o.String("stream", s.name).Number("version", s.version);
    }
    std::printf("%s\n", o.Done().c_str());
    return;
  }
  std::string what = "does not verify (" + (s.problem.empty() ? std::string(kDamaged) : s.problem) + ")";
  if (s.ok && s.projection) {
    what = "projection " + s.name + " at checkpoint " + std::to_string(s.version) + ", " + std::to_string(s.orders) +
           " orders";
  } else if (s.ok) {
    what = s.name + " at version " + std::to_string(s.version);
  }
  std::printf("%-48s %10llu bytes  %s\n", s.file.c_str(), static_cast<unsigned long long>(s.bytes), what.c_str());
}

// The state in a snapshot file's bytes, as JSON; `file` nullopt: there is none. `problem`:
// why a load would not use it though its bytes hold (the log does not hold what it covers).
int Show(const Target& t, const std::optional<std::string>& file, const std::string& problem) {
  const auto parsed = file ? domain::ParseSnapshotFile(*file) : std::nullopt;
  if (t.projection) {
    auto state = parsed ? domain::DecodeProjection(parsed->body) : std::nullopt;
    if (state && state->checkpoint != parsed->version) state = std::nullopt;  // what a load would refuse
    if (!state || !problem.empty()) {
      Note(std::string(!file    ? "the projection has no snapshot"
                       : !state ? std::string("the projection's snapshot does not verify (") + kDamaged + ")"
                                : "the projection's snapshot does not verify (" + problem + ")") +
           "; `snapshot create --projection orders` writes one");
      return kExitFailure;
    }
    // Printed order by order: a projection's JSON can be hundreds of MiB, and building it
    // as one string first costs as much again in copies.
    const std::string head =
        JsonObject().String("projection", t.name).Number("checkpoint", state->checkpoint).Raw("orders", "[]").Done();
    std::fwrite(head.data(), 1, head.size() - 2, stdout);  // all but the closing "]}"
    for (size_t i = 0; i < state->orders.size(); ++i) {
      if (i > 0) std::fputc(',', stdout);
      const std::string order = OrderJson(state->orders[i]);
      std::fwrite(order.data(), 1, order.size(), stdout);
    }
    std::printf("]}\n");
    return kExitOk;
  }
  auto state = parsed ? domain::DecodeOrderSnapshot(parsed->body) : std::nullopt;
  if (state && (state->version != parsed->version || domain::OrderStream(state->order_id) != t.name)) {
    state = std::nullopt;  // what Load would refuse
  }
  if (!state || !problem.empty()) {
    Note((!file    ? t.name + " has no snapshot yet"
          : !state ? "the snapshot of " + t.name + " does not verify (" + kDamaged + ")"
                   : "the snapshot of " + t.name + " does not verify (" + problem + ")") +
         "; `snapshot create " + t.name + "` writes one");
    return kExitFailure;
  }
  std::printf("%s\n", OrderJson(*state).c_str());
  return kExitOk;
}

int Created(const Target& t, const std::optional<Info>& info, bool json) {
  if (!info) {
    Note(t.name + " has no events: nothing to snapshot");
    return kExitFailure;
  }
  if (json) {
    PrintInfo(*info, true);
  } else if (info->projection) {
    std::printf("snapshot of projection %s written at checkpoint %llu (%llu orders)\n", info->name.c_str(),
                static_cast<unsigned long long>(info->version), static_cast<unsigned long long>(info->orders));
  } else {
    std::printf("snapshot of %s written at version %llu\n", info->name.c_str(),
                static_cast<unsigned long long>(info->version));
  }
  return kExitOk;
}

int Deleted(const Target& t, const std::optional<std::string>& file, bool json) {
  if (!file) {
    Note("no snapshot of " + What(t) + " to delete");
    return kExitFailure;
  }
  if (json) {
    std::printf("%s\n", JsonObject().String("deleted", *file).Done().c_str());
  } else {
    std::printf("deleted %s; it is rebuilt when needed\n", file->c_str());
  }
  return kExitOk;
}

std::filesystem::path PathOf(const std::filesystem::path& dir, const Target& t) {
  return t.projection ? domain::ProjectionSnapshotPath(dir) : domain::OrderSnapshots(dir).PathOf(t.name);
}

// Offline: writes the snapshot from the files.
int CreateOffline(const std::filesystem::path& dir, const Target& t, bool json) {
  auto store = OpenOffline(dir);  // takes the LOCK
  if (!store) return kExitFailure;
  storage::Status saved;
  if (t.projection) {
    auto p = domain::OrderProjection::LoadSnapshot(*store, PathOf(dir, t));  // from 0 if it cannot be used
    auto n = p.CatchUp(*store);
    saved = n.ok() ? p.SaveSnapshot(*store, PathOf(dir, t)) : n.status();
  } else {
    auto written = domain::OrderCommands(*store).SaveSnapshot(*domain::OrderIdOf(t.name));
    if (written.ok() && !*written) return Created(t, std::nullopt, json);
    saved = written.ok() ? storage::Status::Ok() : written.status();
  }
  if (!saved.ok()) {
    Note("could not write the snapshot of " + What(t) + ": " + saved.message());
    return kExitFailure;
  }
  return Created(t, ToInfo(domain::InspectSnapshot(dir, PathOf(dir, t), store.get())), json);
}

int Offline(const Invocation& inv, const std::filesystem::path& dir) {
  if (!RequireStore(dir)) return kExitFailure;
  if (inv.command == "snapshot create") return CreateOffline(dir, TargetOf(inv), inv.global.json);
  const std::optional<Target> t = inv.command == "snapshot list" ? std::nullopt : std::optional(TargetOf(inv));
  // The daemon writes snapshots while it runs: hold its LOCK so it cannot meanwhile. And
  // "verifies" means a load would use it, which depends on the log: list and show open the
  // store (which holds the LOCK) to judge each snapshot against it, as esd would.
  std::unique_ptr<storage::Store> log;
  std::string unopened;
  if (inv.command != "snapshot delete") {
    auto opened = storage::Store::Open(dir, storage::Options{});
    if (opened.ok()) {
      log = std::move(opened).value();
    } else {
      unopened = opened.status().message();
    }
  }
  std::optional<storage::Result<storage::DirectoryLock>> lock;
  if (!log) {
    lock.emplace(storage::DirectoryLock::Acquire(dir));
    if (!lock->ok()) {
      Note(lock->status().message() + "; without --data-dir the snapshot commands ask the running daemon");
      return kExitFailure;
    }
    if (inv.command != "snapshot delete") {
      Note("cannot open the store to check the snapshots against its log (" + unopened +
           "): each is checked on its own");
    }
  }
  if (!t) {
    for (const auto& e : domain::ListSnapshots(dir, "", SIZE_MAX, log.get())) PrintInfo(ToInfo(e), inv.global.json);
    return kExitOk;
  }
  const auto path = PathOf(dir, *t);
  if (inv.command == "snapshot show") {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Show(*t, std::nullopt, "");
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto entry = domain::InspectSnapshotBytes(dir, path, bytes, log.get());
    return Show(*t, bytes, entry.ok ? "" : entry.problem);
  }
  std::error_code ec;
  const bool removed = std::filesystem::remove(path, ec);
  if (ec) {
    Note("could not delete " + path.string() + ": " + ec.message());
    return kExitFailure;
  }
  if (!removed) return Deleted(*t, std::nullopt, inv.global.json);
  return Deleted(*t, std::filesystem::relative(path, dir).string(), inv.global.json);
}

}  // namespace

int Snapshot(const Invocation& inv, const Connector& connect) {
  if (!inv.global.data_dir.empty()) return Offline(inv, inv.global.data_dir);
  if (inv.command == "snapshot list") {
    for (const auto& s : connect()->ListSnapshots()) PrintInfo(s, inv.global.json);
    return kExitOk;
  }
  const Target t = TargetOf(inv);
  if (inv.command == "snapshot show") {
    std::string problem;
    auto file = connect()->ReadSnapshot(t, &problem);
    return Show(t, file, problem);
  }
  if (inv.command == "snapshot create") return Created(t, connect()->CreateSnapshot(t), inv.global.json);
  return Deleted(t, connect()->DeleteSnapshot(t), inv.global.json);
}

}  // namespace esd::esctl
