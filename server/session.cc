#include "server/session.h"

#include <kj/debug.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "server/event_store_service.h"
#include "server/order_service.h"
#include "server/projection_runner.h"
#include "domain/snapshots.h"
#include "storage/verify.h"

namespace esd::server {

namespace {

rpc::Role ToWire(Role r) {
  switch (r) {
    case Role::kReader: return rpc::Role::READER;
    case Role::kWriter: return rpc::Role::WRITER;
    case Role::kAdmin: return rpc::Role::ADMIN;
  }
  return rpc::Role::READER;
}

// Runs `job` on a thread of its own (joined before the store closes) and resolves on this
// event loop with what it returned: for work that would hold the loop for long.
template <typename T>
kj::Promise<kj::Own<T>> RunOffLoop(ServerContext& ctx, std::function<kj::Own<T>()> job) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<kj::Own<T>>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<kj::Own<T>>>>(kj::mv(paf.fulfiller));
  ctx.jobs.emplace_back([job = std::move(job), fulfiller] { (*fulfiller)->fulfill(job()); });
  return kj::mv(paf.promise);
}

class AdminImpl final : public rpc::Admin::Server {
 public:
  explicit AdminImpl(ServerContext& ctx) : ctx_(ctx) {}

  kj::Promise<void> rebuildProjection(RebuildProjectionContext context) override {
    auto name = context.getParams().getName();
    KJ_REQUIRE(name == "orders", "unknown projection (there is one: orders)", name);
    return ctx_.projection.Rebuild().then([this, context](uint64_t read) mutable {
      context.getResults().setEventsRead(read);
      context.getResults().setCheckpoint(ctx_.projection.checkpoint());
    });
  }

  kj::Promise<void> backup(BackupContext context) override {
    const std::filesystem::path dest = std::string(context.getParams().getDest().cStr());
    std::error_code ec;
    KJ_REQUIRE(!dest.empty() && (!std::filesystem::exists(dest, ec) || std::filesystem::is_empty(dest, ec)),
               "the backup directory must be new or empty", dest.string());
    struct Outcome {
      storage::Result<storage::GlobalPosition> upto = storage::Status::Closed("");
      uint64_t bytes = 0;
    };
    const std::filesystem::path data = ctx_.config.data_dir;
    storage::Store* store = &ctx_.store;
    auto done = RunOffLoop<Outcome>(ctx_, [store, data, dest] {
      auto out = kj::heap<Outcome>();
      std::error_code ec;
      // Snapshots first: then none is ahead of the log copied after it.
      std::filesystem::create_directories(dest, ec);
      if (std::filesystem::exists(data / "snapshots")) {
        std::filesystem::copy(data / "snapshots", dest / "snapshots", std::filesystem::copy_options::recursive, ec);
      }
      if (ec) {
        out->upto = storage::Status::IOError("copy the snapshots: " + ec.message());
      } else {
        out->upto = store->Backup(dest, [&](uint64_t copied, uint64_t) { out->bytes = copied; });
      }
      return out;
    });
    return done.then([context](kj::Own<Outcome> out) mutable {
      KJ_REQUIRE(out->upto.ok(), "the backup failed", out->upto.status().ToString());
      context.getResults().setPosition(out->upto.value().value);
      context.getResults().setBytes(out->bytes);
    });
  }

  kj::Promise<void> verify(VerifyContext context) override {
    struct Outcome {
      storage::Result<storage::VerifyReport> report = storage::Status::Closed("");
      std::vector<domain::SnapshotCheck> snapshots;
    };
    const std::filesystem::path data = ctx_.config.data_dir;
    // Off the event loop: reading every segment takes a while. The files are read only.
    auto done = RunOffLoop<Outcome>(ctx_, [data] {
      auto out = kj::heap<Outcome>();
      out->report = storage::VerifyStore(data);
      out->snapshots = domain::CheckSnapshots(data);
      return out;
    });
    return done.then([context](kj::Own<Outcome> out) mutable {
      KJ_REQUIRE(out->report.ok(), "verify failed", out->report.status().ToString());
      const storage::VerifyReport& r = out->report.value();
      size_t bad_snapshots = 0;
      for (const auto& c : out->snapshots) bad_snapshots += !c.ok;
      auto rep = context.getResults().initReport();
      rep.setSegments(r.segments);
      rep.setBatches(r.batches);
      rep.setEvents(r.events);
      rep.setIndexFiles(r.index_files);
      rep.setSnapshots(out->snapshots.size());
      rep.setTornTail(r.torn_tail.value_or(""));
      auto problems = rep.initProblems(r.problems.size() + bad_snapshots);
      size_t i = 0;
      for (const auto& p : r.problems) {
        auto b = problems[i++];
        b.setFile(p.file);
        b.setOffset(p.offset);
        b.setHasPosition(p.position.has_value());
        b.setPosition(p.position.value_or(0));
        b.setWhat(p.what);
      }
      for (const auto& c : out->snapshots) {
        if (c.ok) continue;
        auto b = problems[i++];
        b.setFile(c.file);
        b.setWhat("snapshot does not verify (damaged, or another format version); it is ignored and rebuilt");
      }
    });
  }

  kj::Promise<void> status(StatusContext context) override {
    auto s = context.getResults().initStatus();
    const auto stats = ctx_.store.stats();
    s.setVersion("esd 0.1.0");
    s.setDurablePosition(ctx_.store.DurablePosition().value);
    s.setSegments(ctx_.store.recovery().segments + stats.segments_sealed);
    s.setDataDir(ctx_.store.directory().string());
    s.setConnections(ctx_.counters.connections.load());
    s.setSubscriptions(ctx_.counters.subscriptions.load());
    s.setAppends(stats.appends);
    s.setEventsWritten(stats.events_written);
    const uint64_t durable = ctx_.store.DurablePosition().value, checkpoint = ctx_.projection.checkpoint();
    s.setProjectionCheckpoint(checkpoint);
    s.setProjectionLag(durable > checkpoint ? durable - checkpoint : 0);
    s.setUptimeSeconds(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - ctx_.started).count()));
    return kj::READY_NOW;
  }

 private:
  ServerContext& ctx_;
};

class SessionImpl final : public rpc::Session::Server {
 public:
  SessionImpl(ServerContext& ctx, Role role) : ctx_(ctx), role_(role) {}

  kj::Promise<void> role(RoleContext context) override {
    context.getResults().setRole(ToWire(role_));
    return kj::READY_NOW;
  }
  kj::Promise<void> eventStore(EventStoreContext context) override {
    context.getResults().setStore(kj::heap<EventStoreService>(ctx_, role_));
    return kj::READY_NOW;
  }
  kj::Promise<void> orders(OrdersContext context) override {
    context.getResults().setOrders(kj::heap<OrderServiceImpl>(ctx_, role_));
    return kj::READY_NOW;
  }
  kj::Promise<void> admin(AdminContext context) override {
    if (role_ != Role::kAdmin) {
      kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str("permission denied: Admin needs the admin role; this "
                                                           "session has the ", RoleName(role_), " role")));
    }
    context.getResults().setAdmin(kj::heap<AdminImpl>(ctx_));
    return kj::READY_NOW;
  }

 private:
  ServerContext& ctx_;
  const Role role_;
};

class BootstrapImpl final : public rpc::Bootstrap::Server {
 public:
  explicit BootstrapImpl(ServerContext& ctx) : ctx_(ctx) {}

  kj::Promise<void> login(LoginContext context) override {
    Role role = Role::kAdmin;  // without --auth, everyone is trusted (loopback only)
    if (!ctx_.config.auth_file.empty()) {
      auto token = context.getParams().getToken();
      auto it = ctx_.config.tokens.find(std::string(token.cStr(), token.size()));
      if (it == ctx_.config.tokens.end()) {
        kj::throwFatalException(KJ_EXCEPTION(FAILED, "unauthenticated: unknown token"));
      }
      role = it->second;
    }
    context.getResults().setSession(kj::heap<SessionImpl>(ctx_, role));
    return kj::READY_NOW;
  }

 private:
  ServerContext& ctx_;
};

}  // namespace

rpc::Bootstrap::Client MakeBootstrap(ServerContext& ctx) { return kj::heap<BootstrapImpl>(ctx); }

}  // namespace esd::server
