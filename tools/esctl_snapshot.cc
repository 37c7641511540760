#include "tools/esctl_snapshot.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "domain/order_commands.h"
#include "domain/projections.h"
#include "domain/snapshots.h"
#include "storage/file.h"
#include "storage/store.h"
#include "tools/esctl_offline.h"
#include "tools/esctl_order.h"
#include "tools/esctl_output.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

void Note(const std::string& s) { std::fprintf(stderr, "esctl: %s\n", s.c_str()); }

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
      .String("createdAt", FormatTimestamp(s.created_at))
      .String("cancelReason", s.cancel_reason)
      .Raw("recentCommands", commands + "]");
  return o.Done();
}

std::filesystem::path ProjectionPath(const std::filesystem::path& dir) {
  return dir / "snapshots" / "projections" / "orders.snap";
}

// STREAM (order-ID), or --projection orders; nullopt (after a message) when neither fits.
struct Target {
  bool projection = false;
  std::string stream;
  std::string order_id;
};
std::optional<Target> TargetOf(const Invocation& inv) {
  Target t;
  if (auto p = inv.Value("projection")) {
    if (!inv.positional.empty() || *p != "orders") {
      Note("give either STREAM or --projection orders (the one projection there is)");
      return std::nullopt;
    }
    t.projection = true;
    return t;
  }
  if (inv.positional.empty() || inv.positional[0].rfind("order-", 0) != 0 || inv.positional[0].size() == 6) {
    Note("give an order stream (order-ID) or --projection orders; only orders have snapshots");
    return std::nullopt;
  }
  t.stream = inv.positional[0];
  t.order_id = t.stream.substr(6);
  return t;
}

int List(const std::filesystem::path& dir, bool json) {
  std::error_code ec;
  auto print = [&](const std::filesystem::path& f, const std::string& what, const std::string& json_fields) {
    const auto size = std::filesystem::file_size(f, ec);
    const std::string rel = std::filesystem::relative(f, dir).string();
    if (json) {
      std::printf("{\"file\":%s,\"bytes\":%llu,%s}\n", QuoteJson(rel).c_str(), static_cast<unsigned long long>(size),
                  json_fields.c_str());
    } else {
      std::printf("%-48s %10llu bytes  %s\n", rel.c_str(), static_cast<unsigned long long>(size), what.c_str());
    }
  };
  for (const auto& e : std::filesystem::directory_iterator(dir / "snapshots" / "orders", ec)) {
    if (e.path().extension() != ".snap") continue;
    auto file = domain::ReadSnapshotFile(e.path());
    auto state = file ? domain::DecodeOrderSnapshot(file->body) : std::nullopt;
    if (!state) {
      print(e.path(), "does not verify (damaged, or another format)", "\"ok\":false");
      continue;
    }
    const std::string stream = domain::OrderStream(state->order_id);
    print(e.path(), stream + " at version " + std::to_string(*state->version),
          "\"ok\":true,\"stream\":" + QuoteJson(stream) + ",\"version\":" + std::to_string(*state->version));
  }
  if (std::filesystem::exists(ProjectionPath(dir))) {
    auto file = domain::ReadSnapshotFile(ProjectionPath(dir));
    auto state = file ? domain::DecodeProjection(file->body) : std::nullopt;
    if (!state) {
      print(ProjectionPath(dir), "does not verify (damaged, or another format)", "\"ok\":false");
    } else {
      print(ProjectionPath(dir),
            "projection orders at checkpoint " + std::to_string(state->checkpoint) + ", " +
                std::to_string(state->orders.size()) + " orders",
            "\"ok\":true,\"projection\":\"orders\",\"checkpoint\":" + std::to_string(state->checkpoint) +
                ",\"orders\":" + std::to_string(state->orders.size()));
    }
  }
  return kExitOk;
}

int Show(const std::filesystem::path& dir, const Target& t) {
  if (t.projection) {
    auto file = domain::ReadSnapshotFile(ProjectionPath(dir));
    auto state = file ? domain::DecodeProjection(file->body) : std::nullopt;
    if (!state) {
      Note("no usable projection snapshot in " + dir.string() + " (none, damaged, or another format)");
      return kExitFailure;
    }
    std::string orders = "[";
    for (const auto& o : state->orders) {
      if (orders.size() > 1) orders += ',';
      orders += OrderJson(o);
    }
    JsonObject o;
    o.String("projection", "orders").Number("checkpoint", state->checkpoint).Raw("orders", orders + "]");
    std::printf("%s\n", o.Done().c_str());
    return kExitOk;
  }
  auto state = domain::OrderSnapshots(dir).Load(t.stream);
  if (!state) {
    Note("no usable snapshot of " + t.stream + " (none yet, damaged, or another format); `snapshot create` writes one");
    return kExitFailure;
  }
  std::printf("%s\n", OrderJson(*state).c_str());
  return kExitOk;
}

int Create(const std::filesystem::path& dir, const Target& t) {
  auto store = OpenOffline(dir);
  if (!store) return kExitFailure;
  if (t.projection) {
    auto p = domain::OrderProjection::LoadSnapshot(ProjectionPath(dir));
    if (p.checkpoint() > store->DurablePosition().value) p = domain::OrderProjection();
    auto n = p.CatchUp(*store);
    storage::Status s = n.ok() ? p.SaveSnapshot(ProjectionPath(dir)) : n.status();
    if (!s.ok()) {
      Note("could not write the projection snapshot: " + s.message());
      return kExitFailure;
    }
    std::printf("snapshot of projection orders written at checkpoint %llu (%zu orders)\n",
                static_cast<unsigned long long>(p.checkpoint()), p.order_count());
    return kExitOk;
  }
  auto state = domain::OrderCommands(*store).Load(t.order_id);
  if (!state.ok() || state->status == domain::OrderStatus::kNone) {
    Note(state.ok() ? t.stream + " has no events: nothing to snapshot" : state.status().message());
    return kExitFailure;
  }
  if (auto s = domain::OrderSnapshots(dir).Save(t.stream, *state); !s.ok()) {
    Note("could not write the snapshot: " + s.message());
    return kExitFailure;
  }
  std::printf("snapshot of %s written at version %llu\n", t.stream.c_str(),
              static_cast<unsigned long long>(*state->version));
  return kExitOk;
}

}  // namespace

int Snapshot(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  if (dir.empty()) {
    Note("snapshot works on a stopped store's files: give its directory with --data-dir DIR");
    return kExitUsage;
  }
  if (!RequireStore(dir)) return kExitFailure;
  if (inv.command == "snapshot create") {
    auto t = TargetOf(inv);
    return t ? Create(dir, *t) : kExitUsage;  // Store::Open takes the LOCK
  }
  // The daemon writes snapshots while it runs: hold its LOCK so it cannot meanwhile.
  auto lock = storage::DirectoryLock::Acquire(dir);
  if (!lock.ok()) {
    Note(lock.status().message());
    return kExitFailure;
  }
  if (inv.command == "snapshot list") return List(dir, inv.global.json);
  auto t = TargetOf(inv);
  if (!t) return kExitUsage;
  if (inv.command == "snapshot show") return Show(dir, *t);
  const auto path = t->projection ? ProjectionPath(dir) : domain::OrderSnapshots(dir).PathOf(t->stream);
  std::error_code ec;
  if (!std::filesystem::remove(path, ec)) {
    Note("no snapshot of " + (t->projection ? std::string("projection orders") : t->stream) + " to delete");
    return kExitFailure;
  }
  std::printf("deleted %s; it is rebuilt when needed\n", std::filesystem::relative(path, dir).string().c_str());
  return kExitOk;
}

}  // namespace esd::esctl
