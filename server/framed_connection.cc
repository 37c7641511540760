#include "server/framed_connection.h"

#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <cstdint>
#include <vector>

#include "log/log.h"
#include "protocol/frames.capnp.h"
#include "protocol/transport.h"
#include "server/burst_log.h"
#include "server/connection.h"
#include "server/context.h"
#include "server/event_store_service.h"
#include "server/session.h"

namespace esd::server {

namespace {

namespace frames = rpc::frames;

// Serialized answers gather here until the socket takes them.
class ByteVectorOutput final : public kj::OutputStream {
 public:
  explicit ByteVectorOutput(std::vector<kj::byte>& to) : to_(to) {}
  void write(const void* buffer, size_t size) override {
    const auto* b = static_cast<const kj::byte*>(buffer);
    to_.insert(to_.end(), b, b + size);
  }

 private:
  std::vector<kj::byte>& to_;
};

// An append's answer is a few words; a rejection's reason may take a second segment.
constexpr uint kAnswerWords = 32;

// Failures that are the client's (frames it could not have meant) are logged at most once per
// interval per daemon, with the count since the last line.
BurstLog& ProtocolErrorLog() {
  static BurstLog log;
  return log;
}

}  // namespace

struct FramedConnection::Impl final : private kj::TaskSet::ErrorHandler {
  Impl(kj::Own<kj::AsyncIoStream> stream, ServerContext& context)
      : ctx(context), socket(kj::mv(stream)), reads(*socket), state(kj::refcounted<ConnectionState>()), tasks(*this) {
    if (ctx.config.auth_file.empty()) role = Role::kAdmin;  // as Bootstrap.login without --auth
    state->Attach([this] { return pending.size() + sending.size(); });
    ctx.connections.insert(state.get());
  }
  ~Impl() noexcept(false) {
    ctx.connections.erase(state.get());
    state->Detach();
  }

  kj::Promise<void> Run() {
    auto paf = kj::newPromiseAndFulfiller<void>();
    finished = kj::mv(paf.fulfiller);
    tasks.add(ReadLoop());
    return kj::mv(paf.promise);
  }

  // Reads and serves requests until the client closes its side, the protocol is broken, or
  // the bound on requests in flight stops it (then again once answers have left).
  kj::Promise<void> ReadLoop() {
    if (stop_reading) return kj::READY_NOW;
    if (in_flight >= frames::MAX_IN_FLIGHT) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      room = kj::mv(paf.fulfiller);
      return paf.promise.then([this] { return ReadLoop(); });
    }
    return capnp::tryReadMessage(reads).then(
        [this](kj::Maybe<kj::Own<capnp::MessageReader>> message) -> kj::Promise<void> {
          KJ_IF_MAYBE(m, message) {
            Serve(**m);
            return ReadLoop();
          }
          stop_reading = true;  // the client closed its side: answer what it sent, then end
          FinishIfDone();
          return kj::READY_NOW;
        },
        [this](kj::Exception&& e) -> kj::Promise<void> {
          stop_reading = true;
          if (e.getType() == kj::Exception::Type::DISCONNECTED) return End();  // nobody to answer
          ++in_flight;  // the answer to no request counts out when written, as any other
          ProtocolError(0, kj::str("a frame could not be read (", e.getDescription(),
                                   "); the connection is closed: each request must be one Cap'n Proto message in "
                                   "the standard stream framing (protocol/frames.capnp)"));
          return kj::READY_NOW;
        });
  }

  // One request. Every request gets exactly one answer (Send), which counts it out of
  // in_flight once written.
  void Serve(capnp::MessageReader& message) {
    ++in_flight;
    uint64_t id = 0;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      auto request = message.getRoot<frames::Request>();
      id = request.getId();
      switch (request.which()) {
        case frames::Request::LOGIN: return Login(id, request.getLogin());
        case frames::Request::APPEND: return Append(id, request.getAppend());
      }
      Error(id, kj::str("unknown request kind ", static_cast<uint>(request.which()),
                        ": this esd serves login and append (protocol/frames.capnp)"));
    })) {
      Error(id, kj::str("malformed request: ", e->getDescription(), "; nothing was written"));
    }
  }

  void Login(uint64_t id, capnp::Text::Reader token) {
    if (!ctx.config.auth_file.empty()) {
      auto it = ctx.config.tokens.find(std::string(token.cStr(), token.size()));
      if (it == ctx.config.tokens.end()) {
        role = nullptr;
        ProtocolError(id, "unauthenticated: unknown token; the connection is closed");
        return;
      }
      role = it->second;
    }
    auto reply = Reply(id);
    reply->getRoot<frames::Response>().setLogin(RoleOnWire(KJ_ASSERT_NONNULL(role)));
    Send(*reply);
  }

  void Append(uint64_t id, frames::Append::Reader append) {
    Role granted;
    KJ_IF_MAYBE(r, role) {
      granted = *r;
    } else {
      ctx.ops.appends.Add({"permission_denied"});
      Error(id, "unauthenticated: this esd runs with --auth; send a login request with a token of its --auth file "
                "before appending; nothing was written");
      return;
    }
    // Timed as EventStore.append (esd_rpc_duration_seconds): the same call, another door.
    const RpcLatency::Stopwatch watch = ctx.ops.rpc_latency.Start(capnp::typeId<rpc::EventStore>(), 0);
    auto reply = Reply(id);
    capnp::MallocMessageBuilder& m = *reply;
    auto served = ServeAppend(ctx, granted, append.getStream(), append.getExpected(), append.getEvents(),
                              [&m] { return m.getRoot<frames::Response>().initAppend(); });
    tasks.add(served.then(
        [this, reply = kj::mv(reply), watch]() mutable {
          watch.Stop();
          Send(*reply);
        },
        [this, id, watch](kj::Exception&& e) {
          watch.Stop();
          Error(id, kj::str("the append failed: ", e.getDescription()));
        }));
  }

  kj::Own<capnp::MallocMessageBuilder> Reply(uint64_t id) {
    auto m = kj::heap<capnp::MallocMessageBuilder>(kAnswerWords);
    m->initRoot<frames::Response>().setId(id);
    return m;
  }

  void Error(uint64_t id, kj::StringPtr text) {
    auto reply = Reply(id);
    reply->getRoot<frames::Response>().setError(text);
    Send(*reply);
  }

  // A request the connection cannot go on after: answered, and nothing more is read.
  void ProtocolError(uint64_t id, kj::StringPtr text) {
    if (const uint64_t n = ProtocolErrorLog().Failed()) {
      log::Warn("a framed connection broke the protocol and was closed: {} ({} such connections since the last line)",
                text.cStr(), n);
    }
    stop_reading = true;
    Error(id, text);
  }

  // Queues an answer; those queued in one turn of the loop leave in one write.
  void Send(capnp::MessageBuilder& message) {
    ByteVectorOutput out(pending);
    capnp::writeMessage(out, message);
    ++pending_answers;
    if (!writing) {
      writing = true;
      tasks.add(kj::evalLater([this] { return WriteMore(); }));
    }
  }

  kj::Promise<void> WriteMore() {
    if (pending.empty()) {
      writing = false;
      FinishIfDone();
      return kj::READY_NOW;
    }
    std::swap(pending, sending);
    const uint32_t answers = pending_answers;
    pending_answers = 0;
    return socket->write(sending.data(), sending.size()).then([this, answers] {
      sending.clear();
      in_flight -= answers;
      state->AfterWrite();
      if (room.get() != nullptr && in_flight < frames::MAX_IN_FLIGHT) {
        room->fulfill();
        room = nullptr;
      }
      return WriteMore();
    });
  }

  void FinishIfDone() {
    if (stop_reading && in_flight == 0 && !writing) End().detach([](kj::Exception&&) {});
  }

  kj::Promise<void> End() {
    if (finished.get() != nullptr) {
      finished->fulfill();
      finished = nullptr;
    }
    return kj::READY_NOW;
  }

  // A write failed (the client went), or a bug: the connection ends.
  void taskFailed(kj::Exception&& e) override {
    if (e.getType() != kj::Exception::Type::DISCONNECTED) {
      log::Warn("a framed connection failed: {}", e.getDescription().cStr());
    }
    if (finished.get() != nullptr) {
      finished->reject(kj::mv(e));
      finished = nullptr;
    }
  }

  ServerContext& ctx;
  kj::Own<kj::AsyncIoStream> socket;
  transport::BufferedReads reads;
  kj::Own<ConnectionState> state;
  kj::Maybe<Role> role;                        // none until a login, with --auth
  uint32_t in_flight = 0;                      // requests read whose answer has not been written
  bool stop_reading = false;                   // the client closed its side, or broke the protocol
  kj::Own<kj::PromiseFulfiller<void>> room;    // the reader waits for in_flight to fall
  std::vector<kj::byte> pending, sending;      // answers queued, and those being written
  uint32_t pending_answers = 0;
  bool writing = false;                        // a WriteMore is queued or running
  kj::Own<kj::PromiseFulfiller<void>> finished;
  kj::TaskSet tasks;                           // last: destroyed (cancelled) first
};

FramedConnection::FramedConnection(kj::Own<kj::AsyncIoStream> stream, ServerContext& ctx)
    : impl_(kj::heap<Impl>(kj::mv(stream), ctx)) {}

FramedConnection::~FramedConnection() noexcept(false) = default;

kj::Promise<void> FramedConnection::Run() { return impl_->Run(); }

}  // namespace esd::server
