#include "server/admin_service.h"

#include <fcntl.h>
#include <kj/debug.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <utility>

#include "domain/maintenance.h"
#include "domain/snapshots.h"
#include "server/failed_calls.h"
#include "server/progress.h"
#include "server/projection_runner.h"
#include "storage/file.h"
#include "version/version.h"

namespace esd::server {

namespace {

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// Fails the call with `what` as the whole message, for the operator to read: the caller did
// nothing wrong in its framing, but what it asked for cannot be done.
[[noreturn]] void Fail(const std::string& what) {
  kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str(what.c_str())));
}

// Snapshots listed per call at most; the caller continues after the last file name.
constexpr uint32_t kMaxSnapshotsPerPage = 10'000;

// Runs `job` on a thread of its own and resolves on this event loop with what it returned:
// for work that would hold the loop for long. An exception from the job (std::filesystem's,
// say) fails the call instead of ending the daemon.
template <typename T>
kj::Promise<kj::Own<T>> RunOffLoop(ServerContext& ctx, std::function<kj::Own<T>()> job) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<kj::Own<T>>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<kj::Own<T>>>>(kj::mv(paf.fulfiller));
  // A job still queued when its caller has gone (disconnected, cancelled) is not run: the
  // pool's threads are few, and a graceful stop waits for every queued job.
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  ctx.jobs.Start([job = std::move(job), fulfiller, abandoned] {
    if (abandoned->load()) return;
    try {
      (*fulfiller)->fulfill(job());
    } catch (const std::exception& e) {
      (*fulfiller)->reject(KJ_EXCEPTION(FAILED, kj::str(e.what())));
    } catch (kj::Exception& e) {
      (*fulfiller)->reject(kj::mv(e));
    } catch (...) {
      (*fulfiller)->reject(KJ_EXCEPTION(FAILED, "the job failed with an exception of unknown type"));
    }
  });
  return paf.promise.attach(kj::defer([abandoned] { abandoned->store(true); }));
}

template <typename Params>
kj::Maybe<rpc::ProgressSink::Client> SinkOf(Params params) {
  if (!params.hasProgress()) return nullptr;
  return params.getProgress();
}

void RequireProjection(capnp::Text::Reader name) {
  if (name != "orders") Fail("unknown projection '" + Str(name) + "' (there is one: orders)");
}

// What a snapshot target names: an order's stream, or the projection.
struct Target {
  bool projection = false;
  std::string stream;  // "order-<id>"
  std::string order_id;
};
Target TargetOf(rpc::SnapshotTarget::Reader t) {
  if (t.isProjection()) {
    RequireProjection(t.getProjection());
    return {true, "", ""};
  }
  KJ_REQUIRE(t.isStream(), "a snapshot target is a stream or a projection");
  std::string stream = Str(t.getStream());
  auto id = domain::OrderIdOf(stream);
  if (!id) Fail("'" + stream + "' has no snapshots: only order streams (order-ID) do");
  return {false, std::move(stream), std::move(*id)};
}

std::filesystem::path PathOf(const ServerContext& ctx, const Target& t) {
  return t.projection ? domain::ProjectionSnapshotPath(ctx.store.directory())
                      : domain::OrderSnapshots(ctx.store.directory()).PathOf(t.stream);
}

void FillSnapshot(rpc::SnapshotInfo::Builder out, const domain::SnapshotEntry& e) {
  out.setFile(e.file);
  out.setBytes(e.bytes);
  out.setOk(e.ok);
  out.setProblem(e.problem);
  if (e.kind == domain::SnapshotEntry::Kind::kProjection) {
    auto p = out.initProjection();
    p.setName(e.name);
    p.setCheckpoint(e.version);
    p.setOrders(e.orders);
  } else {
    auto o = out.initOrder();
    o.setStream(e.name);
    o.setVersion(e.version);
  }
}

// One page of a snapshot file, read from one open file: its bytes, size and tag all belong
// to the same file even while the daemon replaces it (by rename) meanwhile.
struct SnapshotPage {
  bool found = false;
  std::string error;        // for the operator; the call fails with it
  std::string bytes;        // [offset, offset + max_bytes) of the file
  uint64_t total_bytes = 0;
  uint64_t tag = 0;         // see readSnapshot's fileTag
  bool at_end = false;      // the page reaches the end of the file: `whole_file` is set
  std::string whole_file;   // for judging it, as a load would
  std::string problem;
};

// Reads [offset, offset + max_bytes) of `path`. The tag hashes what tells two files apart
// even when their content is the same (device, inode, size, modification and change times)
// and the header (which holds the body's checksum), so that a file written anew between
// two pages is noticed even if its inode number was reused.
SnapshotPage ReadSnapshotPage(const std::filesystem::path& path, uint64_t offset, uint64_t max_bytes) {
  SnapshotPage page;
  auto file = storage::File::Open(path, O_RDONLY);
  if (!file.ok()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return page;  // none (or just deleted)
    page.error = "cannot read " + path.string() + ": " + file.status().message();
    return page;
  }
  page.found = true;
  struct stat st {};
  if (::fstat(file->fd(), &st) != 0) {
    page.error = "cannot read " + path.string() + ": " + std::strerror(errno);
    return page;
  }
  page.total_bytes = static_cast<uint64_t>(st.st_size);
  // Reads [at, at + n) of the open file into `out`; false after setting page.error.
  auto read = [&](uint64_t at, uint64_t n, std::string& out) {
    out.resize(n);
    auto got = file->ReadAt(at, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    if (!got.ok()) page.error = "cannot read " + path.string() + ": " + got.status().message();
    else out.resize(*got);  // a file is never shortened in place, but say so if it were
    return got.ok();
  };
  std::string header;
  const uint64_t begin = std::min(offset, page.total_bytes);
  if (!read(0, std::min<uint64_t>(48, page.total_bytes), header) ||
      !read(begin, std::min(max_bytes, page.total_bytes - begin), page.bytes)) {
    return page;
  }
  const uint64_t identity[] = {static_cast<uint64_t>(st.st_dev),         static_cast<uint64_t>(st.st_ino),
                               page.total_bytes,
                               static_cast<uint64_t>(st.st_mtim.tv_sec), static_cast<uint64_t>(st.st_mtim.tv_nsec),
                               static_cast<uint64_t>(st.st_ctim.tv_sec), static_cast<uint64_t>(st.st_ctim.tv_nsec)};
  page.tag = XXH3_64bits_withSeed(header.data(), header.size(), XXH3_64bits(identity, sizeof(identity)));
  page.at_end = begin + page.bytes.size() >= page.total_bytes;
  if (page.at_end) {
    if (begin == 0) page.whole_file = page.bytes;
    else if (!read(0, page.total_bytes, page.whole_file)) return page;
  }
  return page;
}

rpc::ScavengeState ToWire(storage::ScavengeStatus::State s) {
  using State = storage::ScavengeStatus::State;
  switch (s) {
    case State::kIdle: return rpc::ScavengeState::IDLE;
    case State::kRunning: return rpc::ScavengeState::RUNNING;
    case State::kStopping: return rpc::ScavengeState::STOPPING;
    case State::kFinished: return rpc::ScavengeState::FINISHED;
    case State::kStopped: return rpc::ScavengeState::STOPPED;
    case State::kFailed: return rpc::ScavengeState::FAILED;
  }
  KJ_FAIL_ASSERT("unknown scavenge state", static_cast<int>(s));
}

void FillScavenge(rpc::ScavengeStatus::Builder out, const storage::ScavengeStatus& s) {
  out.setState(ToWire(s.state));
  out.setStartedMicros(s.started_micros);
  out.setFinishedMicros(s.finished_micros);
  out.setSegmentsTotal(s.segments_total);
  out.setSegmentsDone(s.segments_done);
  out.setSegmentsRewritten(s.segments_rewritten);
  out.setBytesTotal(s.bytes_total);
  out.setBytesRead(s.bytes_read);
  out.setBytesReclaimed(s.bytes_reclaimed);
  out.setEventsRemoved(s.events_removed);
  out.setReadRateCap(s.read_rate_cap);
  out.setError(s.error.ok() ? std::string() : s.error.ToString());
}

class AdminImpl final : public LoggedCalls<rpc::Admin> {
 public:
  AdminImpl(ServerContext& ctx, ConnectionState& connection)
      : LoggedCalls(&ctx.ops.rpc_latency), ctx_(ctx), connection_(kj::addRef(connection)) {}

  kj::Promise<void> rebuildProjection(RebuildProjectionContext context) override {
    auto params = context.getParams();
    RequireProjection(params.getName());
    ProjectionRunner& projection = ctx_.projection;
    const storage::Store& store = ctx_.store;
    Sample sample = [&projection, &store] {
      return Figures{projection.rebuild_checkpoint(), store.DurablePosition().value};
    };
    return WithProgress(ctx_.timer, SinkOf(params), std::move(sample), projection.Rebuild())
        .then([&projection, context](uint64_t read) mutable {
          context.getResults().setEventsRead(read);
          context.getResults().setCheckpoint(projection.checkpoint());
        });
  }

  kj::Promise<void> backup(BackupContext context) override {
    auto params = context.getParams();
    const std::filesystem::path dest = Str(params.getDest());  // BackupWithSnapshots checks it
    struct Outcome {
      storage::Result<storage::GlobalPosition> upto = storage::Status::Closed("");
      uint64_t bytes = 0;
    };
    const storage::Store* store = &ctx_.store;
    auto cell = std::make_shared<ProgressCell>();
    auto done = RunOffLoop<Outcome>(ctx_, [store, dest, cell] {
      auto out = kj::heap<Outcome>();
      out->upto = domain::BackupWithSnapshots(*store, store->directory(), dest,
                                              [&cell](uint64_t d, uint64_t t) { cell->Set(d, t); }, &out->bytes);
      return out;
    });
    return WithProgress(ctx_.timer, SinkOf(params), [cell] { return cell->Get(); }, kj::mv(done))
        .then([this, context](kj::Own<Outcome> out) mutable {
          ctx_.ops.backup.Record(out->upto.ok());
          if (!out->upto.ok()) {
            if (out->upto.status().IsDataLoss()) ctx_.damage_log.Report(out->upto.status(), "a backup");
            Fail("the backup failed: " + out->upto.status().message());
          }
          context.getResults().setPosition(out->upto.value().value);
          context.getResults().setBytes(out->bytes);
        });
  }

  kj::Promise<void> verify(VerifyContext context) override {
    using Outcome = storage::Result<domain::StoreVerification>;
    const std::filesystem::path data = ctx_.store.directory();
    auto cell = std::make_shared<ProgressCell>();
    // Off the event loop: reading every segment takes a while. The files are read only.
    const storage::Store* log = &ctx_.store;  // reads from any thread; outlives the jobs
    auto done = RunOffLoop<Outcome>(ctx_, [data, cell, log] {
      return kj::heap<Outcome>(
          domain::VerifyWithSnapshots(data, [&cell](uint64_t d, uint64_t t) { cell->Set(d, t); }, log));
    });
    return WithProgress(ctx_.timer, SinkOf(context.getParams()), [cell] { return cell->Get(); },
                        kj::mv(done))
        .then([this, context](kj::Own<Outcome> out) mutable {
          // Success: it ran and found no damage (notes are not damage).
          ctx_.ops.verify.Record(out->ok() && out->value().report.ok());
          if (!out->ok()) Fail("verify could not run: " + out->status().ToString());
          const storage::VerifyReport& r = out->value().report;
          auto rep = context.getResults().initReport();
          rep.setSegments(r.segments);
          rep.setBatches(r.batches);
          rep.setEvents(r.events);
          rep.setIndexFiles(r.index_files);
          rep.setSnapshots(out->value().snapshots);
          rep.setTornTail(r.torn_tail.value_or(""));
          auto notes = rep.initNotes(r.notes.size());
          for (size_t i = 0; i < r.notes.size(); ++i) notes.set(i, r.notes[i]);
          auto problems = rep.initProblems(r.problems.size());
          for (size_t i = 0; i < r.problems.size(); ++i) {
            const auto& p = r.problems[i];
            problems[i].setFile(p.file);
            problems[i].setOffset(p.offset);
            problems[i].setHasPosition(p.position.has_value());
            problems[i].setPosition(p.position.value_or(0));
            problems[i].setWhat(p.what);
          }
        });
  }

  kj::Promise<void> listSnapshots(ListSnapshotsContext context) override {
    auto params = context.getParams();
    const std::string after = Str(params.getAfter());
    const uint32_t count = std::min(std::max<uint32_t>(params.getCount(), 1), kMaxSnapshotsPerPage);
    using Page = std::vector<domain::SnapshotEntry>;
    const std::filesystem::path data = ctx_.store.directory();
    const storage::Store* log = &ctx_.store;  // reads from any thread; outlives the jobs
    // Off the loop: each listed file is read and decoded, and checked against the log.
    auto page = RunOffLoop<Page>(ctx_, [data, after, count, log] {
      return kj::heap<Page>(domain::ListSnapshots(data, after, count + 1, log));
    });
    return page.then([context, count](kj::Own<Page> entries) mutable {
      const bool more = entries->size() > count;
      auto list = context.getResults().initSnapshots(std::min<size_t>(entries->size(), count));
      for (size_t i = 0; i < list.size(); ++i) FillSnapshot(list[i], (*entries)[i]);
      context.getResults().setMore(more);
    });
  }

  kj::Promise<void> readSnapshot(ReadSnapshotContext context) override {
    // Up to 16 MiB each: one at a time while the client has answers it has not taken.
    return connection_->WhenOutgoingBelow(kMaxOutgoingBytes).then([this, context]() mutable {
      return ReadSnapshotNow(context);
    });
  }

  kj::Promise<void> ReadSnapshotNow(ReadSnapshotContext context) {
    auto params = context.getParams();
    const auto path = PathOf(ctx_, TargetOf(params.getTarget()));
    const uint64_t offset = params.getOffset();
    // 0: a client from before pages wants the whole file in one answer.
    const bool whole = params.getMaxBytes() == 0;
    const uint64_t max_bytes = whole ? kMaxSnapshotSend : std::min<uint64_t>(params.getMaxBytes(), kSnapshotPageBytes);
    const std::filesystem::path data = ctx_.store.directory();
    const storage::Store* log = &ctx_.store;  // reads from any thread; outlives the jobs
    // Off the loop: a page is up to 16 MiB to read, and the last one is judged on the
    // whole file, which means decoding it.
    auto read = RunOffLoop<SnapshotPage>(ctx_, [path, data, log, offset, max_bytes, whole] {
      auto page = kj::heap<SnapshotPage>(ReadSnapshotPage(path, offset, max_bytes));
      if (whole && page->found && page->total_bytes > max_bytes) {
        page->error = "the snapshot file is " + std::to_string(page->total_bytes >> 20) +
                      " MiB, too large to send in one message; an esctl of this version reads it in pages";
      }
      if (page->found && page->error.empty() && page->at_end) {
        page->problem = domain::InspectSnapshotBytes(data, path, page->whole_file, log).problem;
      }
      return page;
    });
    return read.then([context](kj::Own<SnapshotPage> page) mutable {
      if (!page->error.empty()) Fail(page->error);
      auto results = context.getResults();
      results.setFound(page->found);
      if (!page->found) return;
      results.setFile(
          capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(page->bytes.data()), page->bytes.size()));
      results.setTotalBytes(page->total_bytes);
      results.setFileTag(page->tag);
      results.setProblem(page->problem);
    });
  }

  kj::Promise<void> createSnapshot(CreateSnapshotContext context) override {
    const Target t = TargetOf(context.getParams().getTarget());
    auto results = context.getResults();
    storage::Status saved;
    if (t.projection) {
      saved = ctx_.projection.SaveSnapshot();  // at its checkpoint, on this loop like every save
    } else {
      auto written = ctx_.orders.SaveSnapshot(t.order_id);
      saved = written.ok() ? storage::Status::Ok() : written.status();
      if (written.ok() && !*written) {
        results.setFound(false);
        return kj::READY_NOW;
      }
    }
    if (!saved.ok()) Fail("writing the snapshot failed: " + saved.ToString());
    results.setFound(true);
    FillSnapshot(results.initInfo(), domain::InspectSnapshot(ctx_.store.directory(), PathOf(ctx_, t), &ctx_.store));
    return kj::READY_NOW;
  }

  kj::Promise<void> deleteSnapshot(DeleteSnapshotContext context) override {
    const auto path = PathOf(ctx_, TargetOf(context.getParams().getTarget()));
    std::error_code ec;
    const bool removed = std::filesystem::remove(path, ec);
    if (ec) Fail("deleting " + path.string() + " failed: " + ec.message());
    context.getResults().setFound(removed);
    context.getResults().setFile(std::filesystem::relative(path, ctx_.store.directory()).string());
    return kj::READY_NOW;
  }

  // Scavenge runs on a thread of the store: these only start, ask and stop it, at once.
  kj::Promise<void> scavengeStart(ScavengeStartContext context) override {
    const storage::ScavengeStatus before = ctx_.store.GetScavengeStatus();
    const storage::Status started = ctx_.store.StartScavenge();
    const storage::ScavengeStatus after = ctx_.store.GetScavengeStatus();
    ctx_.scavenge_watch.Started(before, after, Who(), started.ok() ? std::string() : started.message());
    auto results = context.getResults();
    results.setStarted(started.ok());
    results.setReason(started.ok() ? std::string() : started.message());
    FillScavenge(results.initStatus(), after);
    return kj::READY_NOW;
  }

  kj::Promise<void> scavengeStatus(ScavengeStatusContext context) override {
    FillScavenge(context.getResults().initStatus(), ctx_.store.GetScavengeStatus());
    return kj::READY_NOW;
  }

  kj::Promise<void> scavengeStop(ScavengeStopContext context) override {
    using State = storage::ScavengeStatus::State;
    const storage::ScavengeStatus before = ctx_.store.GetScavengeStatus();
    const bool running = before.state == State::kRunning || before.state == State::kStopping;
    if (running) ctx_.store.StopScavenge();
    const storage::ScavengeStatus after = ctx_.store.GetScavengeStatus();
    if (running) ctx_.scavenge_watch.StopAsked(after, Who());
    context.getResults().setWasRunning(running);
    FillScavenge(context.getResults().initStatus(), after);
    return kj::READY_NOW;
  }

  kj::Promise<void> status(StatusContext context) override {
    auto s = context.getResults().initStatus();
    const auto stats = ctx_.store.stats();
    s.setVersion(version::VersionLine("esd"));
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
    s.setBytes(storage::StoreFileBytes(ctx_.store.directory()));
    s.setStreams(ctx_.store.StreamCount());
    s.setLogBytes(stats.log_bytes);
    s.setAllocatedBytes(stats.allocated_bytes);
    s.setUptimeSeconds(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - ctx_.started).count()));
    return kj::READY_NOW;
  }

 private:
  // Who asked, for the log: Admin is only handed to the admin role.
  std::string Who() const {
    return ctx_.config.auth_file.empty() ? "a client (no --auth: every client has the admin role)"
                                         : "a token with the admin role";
  }

  ServerContext& ctx_;
  kj::Own<ConnectionState> connection_;
};

}  // namespace

rpc::Admin::Client MakeAdmin(ServerContext& ctx, ConnectionState& connection) {
  return kj::heap<AdminImpl>(ctx, connection);
}

}  // namespace esd::server
