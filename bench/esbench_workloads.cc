// esbench's worker threads: the append, read-all, subscribe and orders workloads, and the
// prefill.
// Every Client of a thread runs on that thread's KJ loop; a thread drives its loop with
// RunFor/RunUntil of any of its clients.
#include <kj/async.h>
#include <kj/exception.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/esbench.h"
#include "client/appender.h"
#include "client/client.h"

namespace esbench {
namespace {

using esd::client::AppendResult;
using esd::client::Client;
using esd::client::CommandOutcome;
using esd::client::Expected;
using esd::client::NewEvent;

uint64_t Ns(Clock::duration d) { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()); }

std::string KindOf(const kj::Exception& e) {
  switch (e.getType()) {
    case kj::Exception::Type::DISCONNECTED: return "disconnected";
    case kj::Exception::Type::OVERLOADED: return "overloaded";
    case kj::Exception::Type::UNIMPLEMENTED: return "unimplemented";
    case kj::Exception::Type::FAILED: break;
  }
  return "failed";
}

std::string KindOf(const esd::client::Error& e) {
  switch (e.kind()) {
    case esd::client::Error::Kind::kConnect: return "connect";
    case esd::client::Error::Kind::kUnauthenticated: return "unauthenticated";
    case esd::client::Error::Kind::kPermissionDenied: return "permission-denied";
    case esd::client::Error::Kind::kDisconnected: return "disconnected";
    case esd::client::Error::Kind::kDamaged: return "damaged";
    case esd::client::Error::Kind::kRemote: break;
  }
  return "remote";
}

// An append that did not succeed is an error of its own kind, never hidden.
void CountAppendError(const AppendResult& r, ThreadStats& stats) {
  switch (r.outcome) {
    case AppendResult::Outcome::kOk: return;
    case AppendResult::Outcome::kWrongExpectedVersion:
      stats.Error("wrong-expected-version", r.actual_version ? "actual version " + std::to_string(*r.actual_version)
                                                             : "the stream has no event");
      return;
    case AppendResult::Outcome::kRejected: stats.Error("rejected:" + r.reject_code, r.reason); return;
    case AppendResult::Outcome::kStreamDeleted: stats.Error("stream-deleted"); return;
  }
}

esd::client::ConnectOptions ConnectOptionsOf(const Options& o) {
  esd::client::ConnectOptions options;
  options.address = o.connect;
  options.token = o.token;
  return options;
}

std::unique_ptr<Client> Connect(const Options& o) { return Client::Connect(ConnectOptionsOf(o)); }

std::vector<NewEvent> MakeEvents(uint32_t count, uint64_t size) {
  std::string data(size, 'x');
  for (uint64_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  std::vector<NewEvent> events(count);
  for (auto& e : events) {
    e.type = "BenchEvent";
    e.content_type = "application/octet-stream";
    e.data = data;
  }
  return events;
}

// One client's connection and the streams its in-flight slots append to.
struct ClientState {
  std::unique_ptr<Client> client;
  std::unique_ptr<esd::client::Appender> appender;  // --protocol frames: instead of `client`
  std::vector<std::string> streams;
  size_t next_stream = 0;
  bool dead = false;

  // The thread's event loop, which any connection of the thread runs.
  void RunFor(std::chrono::milliseconds d) { appender ? appender->RunFor(d) : client->RunFor(d); }
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    return appender ? appender->RunUntil(done, timeout) : client->RunUntil(done, timeout);
  }
};

// One chain of appends: when one completes, its latency is recorded and the next is issued.
struct Slot {
  ClientState* c = nullptr;
  int index = 0;
  std::vector<NewEvent> events;
};

class AppendChains : private kj::TaskSet::ErrorHandler {
 public:
  AppendChains(Run& run, ThreadStats& stats, uint64_t batch_bytes)
      : run_(run), stats_(stats), batch_bytes_(batch_bytes), tasks_(*this) {}

  void Start(Slot& slot) {
    ++active_;
    tasks_.add(Issue(slot));
  }
  int active() const { return active_; }

 private:
  kj::Promise<void> Issue(Slot& s) {
    if (run_.stop.load(std::memory_order_relaxed) || s.c->dead) {
      --active_;
      return kj::READY_NOW;
    }
    for (auto& e : s.events) e.id = esd::client::NewEventId();
    const bool own = run_.options->streams_per_client == 0;
    const std::string& stream = own ? s.c->streams[s.index] : s.c->streams[s.c->next_stream++ % s.c->streams.size()];
    const auto t0 = Clock::now();
    return kj::evalNow([&] {
             return s.c->appender ? s.c->appender->AppendAsync(stream, Expected::Any(), s.events)
                                  : s.c->client->AppendAsync(stream, Expected::Any(), s.events);
           })
        .then(
            [this, &s, t0](AppendResult r) -> kj::Promise<void> {
              const auto t1 = Clock::now();
              stats_.latency.Record(Ns(t1 - t0));
              stats_.last_done = t1;
              if (r.ok()) {
                stats_.events.fetch_add(s.events.size(), std::memory_order_relaxed);
                stats_.bytes.fetch_add(batch_bytes_, std::memory_order_relaxed);
              } else {
                CountAppendError(r, stats_);
              }
              stats_.calls.fetch_add(1, std::memory_order_relaxed);
              return Issue(s);
            },
            [this, &s](kj::Exception&& e) -> kj::Promise<void> {
              // A broken call ends this client: its connection is most likely gone.
              stats_.last_done = Clock::now();
              stats_.Error(KindOf(e), e.getDescription().cStr());
              s.c->dead = true;
              --active_;
              return kj::READY_NOW;
            });
  }

  void taskFailed(kj::Exception&& e) override {
    stats_.Error(KindOf(e), e.getDescription().cStr());
    --active_;
  }

  Run& run_;
  ThreadStats& stats_;
  uint64_t batch_bytes_;
  int active_ = 0;
  kj::TaskSet tasks_;
};

void RunAppend(Run& run, std::vector<ClientState>& clients, ThreadStats& stats) {
  const Options& o = *run.options;
  std::vector<Slot> slots;
  slots.reserve(clients.size() * static_cast<size_t>(o.inflight));
  for (auto& c : clients) {
    for (int k = 0; k < o.inflight; ++k) slots.push_back(Slot{&c, k, MakeEvents(o.batch, o.event_size)});
  }
  ClientState& loop = clients.front();
  {
    AppendChains chains(run, stats, o.batch * o.event_size);
    for (auto& s : slots) chains.Start(s);
    while (!run.stop.load() && chains.active() > 0) loop.RunFor(std::chrono::milliseconds(20));
    // Drain: every chain stops after its call in flight completes.
    if (!loop.RunUntil([&] { return chains.active() == 0; }, std::chrono::seconds(30))) {
      stats.Error("drain-timeout", std::to_string(chains.active()) + " appends still in flight 30 s after the end");
    }
  }  // destroying the TaskSet cancels whatever still hangs
}

void RunReadAll(Run& run, std::vector<ClientState>& clients, ThreadStats& stats) {
  const Options& o = *run.options;
  // ReadAll is a synchronous call: the clients of a thread take turns, one call at a time.
  std::vector<uint64_t> position(clients.size(), 0);
  size_t alive = clients.size();
  while (!run.stop.load(std::memory_order_relaxed) && alive > 0) {
    for (size_t i = 0; i < clients.size() && !run.stop.load(std::memory_order_relaxed); ++i) {
      if (clients[i].dead) continue;
      const auto t0 = Clock::now();
      try {
        auto r = clients[i].client->ReadAll(position[i], o.batch);
        const auto t1 = Clock::now();
        stats.latency.Record(Ns(t1 - t0));
        stats.last_done = t1;
        uint64_t bytes = 0;
        for (const auto& e : r.events) bytes += e.data.size();
        stats.events.fetch_add(r.events.size(), std::memory_order_relaxed);
        stats.bytes.fetch_add(bytes, std::memory_order_relaxed);
        stats.calls.fetch_add(1, std::memory_order_relaxed);
        position[i] = r.end_of_log ? 0 : r.next_position;
      } catch (const esd::client::Error& e) {
        stats.last_done = Clock::now();
        stats.Error(KindOf(e), e.what());
        clients[i].dead = true;
        --alive;
      }
    }
  }
}

// One subscription from position 0: counts events until caught up, checking that positions
// come in order, never repeated, and that none comes past the caught-up position. Positions
// skip where events were removed (deleted, truncated, expired: docs/storage.md), so a hole
// is not an error; in a store where nothing was removed the count equals the position.
struct SubState {
  uint64_t next_position = 0;
  uint64_t events = 0;
  bool done = false;
  std::unique_ptr<Client::Subscription> sub;
};

void RunSubscribe(Run& run, std::vector<ClientState>& clients, ThreadStats& stats) {
  std::vector<SubState> subs(clients.size());
  size_t done = 0;
  for (size_t i = 0; i < clients.size(); ++i) {
    SubState& st = subs[i];
    Client::SubscriptionCallbacks cb;
    // Views: esbench only looks at the events, and a copy of each would cost more than
    // the daemon spends sending it.
    cb.on_event_views = [&st, &stats](const std::vector<esd::client::RecordedEventView>& events) {
      if (st.done) return;  // live events after the catch-up are not counted
      uint64_t bytes = 0;
      for (const auto& e : events) {
        if (e.position < st.next_position) {
          stats.Error("subscribe-out-of-order",
                      "expected position " + std::to_string(st.next_position) + " or later, got " +
                          std::to_string(e.position));
        }
        st.next_position = e.position + 1;
        bytes += e.data.size();
      }
      st.events += events.size();
      stats.events.fetch_add(events.size(), std::memory_order_relaxed);
      stats.bytes.fetch_add(bytes, std::memory_order_relaxed);
      stats.calls.fetch_add(1, std::memory_order_relaxed);
    };
    cb.on_caught_up = [&st, &stats, &done, prefill = run.options->prefill](uint64_t position) {
      if (st.done) return;
      st.done = true;
      ++done;
      stats.last_done = Clock::now();
      ++stats.clients_caught_up;
      if (st.events > position || st.next_position > position) {
        stats.Error("subscribe-count-mismatch", "caught up at position " + std::to_string(position) + " after " +
                                                    std::to_string(st.events) + " events");
      }
      // Positions may skip removed events, so the count alone cannot say whether one was
      // lost; but nothing removes what this run prefilled (new streams, no metadata).
      if (st.events < prefill) {
        stats.Error("subscribe-lost-events", "caught up after " + std::to_string(st.events) +
                                                 " events, fewer than the " + std::to_string(prefill) +
                                                 " this run prefilled");
      }
    };
    // Also called when the connection is lost ("connection lost: ...").
    cb.on_dropped = [&st, &stats, &done](const std::string& reason) {
      if (st.done) return;  // after its catch-up: no longer measured
      stats.Error("subscription-dropped", reason);
      stats.last_done = Clock::now();
      ++done;
      st.done = true;
    };
    try {
      st.sub = clients[i].client->Subscribe(esd::client::SubscribeFrom::Position(0), {}, std::move(cb));
    } catch (const esd::client::Error& e) {
      stats.Error(KindOf(e), e.what());
      if (!st.done) ++done;
      st.done = true;
    }
  }
  Client& loop = *clients.front().client;
  try {
    while (done < subs.size() && !run.stop.load()) {
      loop.RunUntil([&] { return done == subs.size() || run.stop.load(std::memory_order_relaxed); },
                    std::chrono::seconds(1));
    }
  } catch (const esd::client::Error& e) {
    stats.Error(KindOf(e), e.what());
  }
  for (auto& st : subs) {
    if (!st.done) {
      stats.Error("not-caught-up", "the duration ended before the subscription caught up");
      stats.last_done = Clock::now();
    }
  }
  run.finished.fetch_add(1);
  for (auto& st : subs) st.sub.reset();  // cancels
}

// A command that was answered but not ok is an error of its own kind.
void CountCommandError(const CommandOutcome& r, ThreadStats& stats) {
  switch (r.kind) {
    case CommandOutcome::Kind::kOk: return;
    case CommandOutcome::Kind::kRejected: stats.Error("rejected:" + r.rule, r.message); return;
    case CommandOutcome::Kind::kConflict: stats.Error("conflict", r.message); return;
    case CommandOutcome::Kind::kFailed: stats.Error("failed:" + r.code, r.message); return;
  }
}

// Every client places orders, one after the other: CreateOrder, three AddItem (different
// SKUs, quantity 1..3, 100..999 cents) and PlaceOrder, each with a command id of its own.
// Each order has one command in flight and sends its next when the answer arrives (the
// client's *Async order calls), so one thread drives all of its clients at once: with
// --clients 64 --threads 2, 64 commands are in flight. With --inflight K each client keeps
// K orders in progress on its one connection (K lanes), as an application server with a
// small pool of connections does for its many users. An order whose command is not ok is
// abandoned (its later commands would only be refused) and the client goes on with the
// next one; a broken call (an exception) ends the client. An order once begun is finished
// (or abandoned) even past the end: at most five commands.
class OrderChains : private kj::TaskSet::ErrorHandler {
 public:
  static constexpr int kSkus = 1000;
  static constexpr int kItems = 3;

  OrderChains(Run& run, std::vector<ClientState>& clients, int first_client, int lanes, ThreadStats& stats)
      : run_(run), clients_(clients), first_client_(first_client), lanes_(lanes), stats_(stats),
        rng_(std::random_device{}() ^ (static_cast<uint64_t>(first_client) << 32)),
        orders_(clients.size() * static_cast<size_t>(lanes)), tasks_(*this) {
    for (size_t i = 0; i < orders_.size(); ++i) {
      orders_[i].client = i / static_cast<size_t>(lanes);
      orders_[i].lane = static_cast<int>(i % static_cast<size_t>(lanes));
    }
  }

  void StartAll() {
    for (Order& o : orders_) {
      ++active_;
      tasks_.add(NextOrder(o));
    }
  }
  int active() const { return active_; }

 private:
  struct Item {
    std::string sku;
    uint32_t quantity = 0;
    int64_t price = 0;
  };
  // One lane's order in progress (a client has --inflight lanes).
  struct Order {
    size_t client = 0;
    int lane = 0;  // which of its client's --inflight orders this is
    uint64_t iteration = 0;
    std::string id, customer;
    std::array<Item, kItems> items;
    int step = 0;
    std::optional<uint64_t> version;  // the order's version after its last ok command
    Clock::time_point t0{}, command_t0{};
  };

  int Uniform(int lo, int hi) { return lo + static_cast<int>(rng_() % static_cast<uint64_t>(hi - lo + 1)); }

  // Ends the order (counting what it wrote) and begins the client's next, unless the run
  // is over.
  kj::Promise<void> NextOrder(Order& o) {
    if (run_.stop.load(std::memory_order_relaxed) || clients_[o.client].dead) {
      --active_;
      return kj::READY_NOW;
    }
    const int client_number = first_client_ + static_cast<int>(o.client);
    o.id = "bench-" + run_.run_id + "-c" + std::to_string(client_number) +
           (lanes_ > 1 ? "-l" + std::to_string(o.lane) : std::string()) + "-o" + std::to_string(o.iteration++);
    const uint64_t customer = static_cast<uint64_t>(client_number) * static_cast<uint64_t>(lanes_) +
                              static_cast<uint64_t>(o.lane);
    o.customer = "cust-" + std::to_string(customer % 100);
    int skus[kItems];
    for (int k = 0; k < kItems; ++k) {
      do {
        skus[k] = Uniform(0, kSkus - 1);
      } while (std::find(skus, skus + k, skus[k]) != skus + k);
      char sku[16];
      std::snprintf(sku, sizeof sku, "sku-%04d", skus[k]);
      o.items[static_cast<size_t>(k)] = Item{sku, static_cast<uint32_t>(Uniform(1, 3)), Uniform(100, 999)};
    }
    o.step = 0;
    o.version.reset();
    o.t0 = Clock::now();
    return Send(o);
  }

  kj::Promise<void> Send(Order& o) {
    const std::string command_id = o.id + "/" + std::to_string(o.step);
    o.command_t0 = Clock::now();
    // The same calls on a Client (RPC) and an Appender (--protocol frames).
    auto send = [&](auto& client) -> kj::Promise<CommandOutcome> {
      if (o.step == 0) return client.CreateOrderAsync(o.id, o.customer, command_id);
      if (o.step <= kItems) {
        const Item& it = o.items[static_cast<size_t>(o.step - 1)];
        return client.AddItemAsync(o.id, it.sku, it.quantity, it.price, command_id);
      }
      return client.PlaceOrderAsync(o.id, command_id);
    };
    ClientState& c = clients_[o.client];
    auto sent = kj::evalNow([&] { return c.appender ? send(*c.appender) : send(*c.client); });
    return sent.then([this, &o](CommandOutcome r) { return Answered(o, r); },
                     [this, &o](kj::Exception&& e) -> kj::Promise<void> {
                       // A broken call ends this client: its connection is most likely gone.
                       stats_.last_done = Clock::now();
                       const esd::client::Error error = esd::client::ErrorOf(e);
                       stats_.Error(KindOf(error), error.what());
                       Finished(o, false);
                       clients_[o.client].dead = true;
                       --active_;
                       return kj::READY_NOW;
                     });
  }

  kj::Promise<void> Answered(Order& o, const CommandOutcome& r) {
    const auto t1 = Clock::now();
    stats_.latency.Record(Ns(t1 - o.command_t0));
    stats_.last_done = t1;
    stats_.calls.fetch_add(1, std::memory_order_relaxed);
    if (!r.ok()) {
      CountCommandError(r, stats_);
      Finished(o, false);
      return NextOrder(o);
    }
    o.version = r.version;
    if (o.step == kItems + 1) {
      stats_.order_latency.Record(Ns(t1 - o.t0));
      Finished(o, true);
      return NextOrder(o);
    }
    ++o.step;
    return Send(o);
  }

  void Finished(const Order& o, bool placed) {
    // Events written for this order: its stream holds versions 0..version.
    if (o.version) stats_.events.fetch_add(*o.version + 1, std::memory_order_relaxed);
    if (placed) stats_.orders.fetch_add(1, std::memory_order_relaxed);
  }

  void taskFailed(kj::Exception&& e) override {
    stats_.Error(KindOf(e), e.getDescription().cStr());
    --active_;
  }

  Run& run_;
  std::vector<ClientState>& clients_;
  const int first_client_;
  const int lanes_;
  ThreadStats& stats_;
  std::mt19937_64 rng_;
  std::vector<Order> orders_;  // --inflight per client; chains refer to them: never resized
  int active_ = 0;
  kj::TaskSet tasks_;
};

void RunOrders(Run& run, std::vector<ClientState>& clients, int first_client, ThreadStats& stats) {
  ClientState& loop = clients.front();
  OrderChains chains(run, clients, first_client, run.options->inflight, stats);
  chains.StartAll();
  while (!run.stop.load() && chains.active() > 0) loop.RunFor(std::chrono::milliseconds(20));
  // Drain: every client finishes (or abandons) the orders it began.
  if (!loop.RunUntil([&] { return chains.active() == 0; }, std::chrono::seconds(30))) {
    stats.Error("drain-timeout", std::to_string(chains.active()) + " orders still in flight 30 s after the end");
  }
}

}  // namespace

void RunWorker(Run& run, int first_client, int client_count, ThreadStats& stats) {
  const Options& o = *run.options;
  std::vector<ClientState> clients(static_cast<size_t>(client_count));
  bool ok = true;
  try {
    for (int i = 0; i < client_count; ++i) {
      ClientState& c = clients[static_cast<size_t>(i)];
      if (o.framed) {
        c.appender = esd::client::Appender::Connect(ConnectOptionsOf(o));
      } else {
        c.client = Connect(o);
      }
      // The append workload's streams (orders name their own).
      const int n = o.workload != Workload::kAppend ? 0 : o.streams_per_client > 0 ? o.streams_per_client : o.inflight;
      for (int s = 0; s < n; ++s) {
        c.streams.push_back("bench-" + run.run_id + "-c" + std::to_string(first_client + i) + "-s" + std::to_string(s));
      }
    }
  } catch (const esd::client::Error& e) {
    ok = false;
    run.connect_failed = true;
    std::lock_guard lock(run.mu);
    if (run.connect_error.empty()) run.connect_error = e.what();
  }
  run.connected.count_down();
  run.go.wait();
  if (!ok || run.connect_failed.load()) {
    run.finished.fetch_add(1);
    return;
  }
  switch (o.workload) {
    case Workload::kAppend: RunAppend(run, clients, stats); break;
    case Workload::kReadAll: RunReadAll(run, clients, stats); break;
    case Workload::kSubscribe: RunSubscribe(run, clients, stats); return;  // counted itself
    case Workload::kOrders: RunOrders(run, clients, first_client, stats); break;
  }
  run.finished.fetch_add(1);
}

bool Prefill(const Options& options, const std::string& run_id, uint64_t total, bool tty, std::string* error) {
  constexpr uint32_t kBatch = 1000;
  constexpr int kInflight = 16;
  std::unique_ptr<Client> client;
  try {
    client = Connect(options);
  } catch (const esd::client::Error& e) {
    *error = e.what();
    return false;
  }
  uint64_t issued = 0, written = 0;
  int active = 0;
  std::string failure;
  std::vector<std::vector<NewEvent>> batches(kInflight, MakeEvents(kBatch, options.event_size));
  std::vector<NewEvent> tail;
  std::vector<std::string> streams;
  for (int k = 0; k < kInflight; ++k) streams.push_back("prefill-" + run_id + "-" + std::to_string(k));

  std::function<kj::Promise<void>(int)> issue = [&](int k) -> kj::Promise<void> {
    if (issued >= total || !failure.empty()) {
      --active;
      return kj::READY_NOW;
    }
    const uint64_t n = std::min<uint64_t>(kBatch, total - issued);
    issued += n;
    std::vector<NewEvent>* events = &batches[static_cast<size_t>(k)];
    if (n < kBatch) {
      tail = MakeEvents(static_cast<uint32_t>(n), options.event_size);
      events = &tail;
    }
    for (auto& e : *events) e.id = esd::client::NewEventId();
    return kj::evalNow([&] { return client->AppendAsync(streams[static_cast<size_t>(k)], Expected::Any(), *events); })
        .then(
            [&, k, n](AppendResult r) -> kj::Promise<void> {
              if (!r.ok()) {
                ThreadStats scratch;
                CountAppendError(r, scratch);
                failure = "append " + scratch.errors.begin()->first + ": " + r.reason;
              } else {
                written += n;
              }
              return issue(k);
            },
            [&](kj::Exception&& e) -> kj::Promise<void> {
              failure = e.getDescription().cStr();
              --active;
              return kj::READY_NOW;
            });
  };
  struct Handler : kj::TaskSet::ErrorHandler {
    std::string* failure;
    void taskFailed(kj::Exception&& e) override { *failure = e.getDescription().cStr(); }
  } handler;
  handler.failure = &failure;
  const auto start = Clock::now();
  auto last_print = start;
  {
    kj::TaskSet tasks(handler);
    for (int k = 0; k < kInflight; ++k) {
      ++active;
      tasks.add(issue(k));
    }
    while (active > 0) {
      client->RunFor(std::chrono::milliseconds(100));
      const auto now = Clock::now();
      const double secs = std::chrono::duration<double>(now - start).count();
      if (active == 0 || now - last_print >= std::chrono::seconds(tty ? 1 : 5)) {
        last_print = now;
        std::fprintf(stderr, "%sprefill: %llu / %llu events (%.0f%%), %.1f s, %.0f events/s%s", tty ? "\r" : "",
                     static_cast<unsigned long long>(written), static_cast<unsigned long long>(total),
                     total ? 100.0 * static_cast<double>(written) / static_cast<double>(total) : 100.0, secs,
                     secs > 0 ? static_cast<double>(written) / secs : 0.0, tty ? "\033[K" : "\n");
      }
    }
  }
  if (tty) std::fputc('\n', stderr);
  if (!failure.empty()) {
    *error = failure;
    return false;
  }
  return true;
}

}  // namespace esbench
