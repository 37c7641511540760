#include "server/framed_connection.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "log/log.h"
#include "protocol/frames.capnp.h"
#include "protocol/transport.h"
#include "server/connection.h"
#include "server/context.h"
#include "server/event_store_service.h"
#include "server/order_service.h"
#include "server/session.h"

namespace esd::server {

namespace {

namespace frames = rpc::frames;

// An append's answer is a few words; a rejection's reason may take a second segment.
constexpr uint kAnswerWords = 32;
// What a connection reads at once (16 KiB): many small requests per read. A larger request
// gets an array of its own, up to capnp's default traversal limit (64 MiB), as over RPC.
constexpr size_t kBufferWords = 2048;
constexpr size_t kMaxRequestWords = (64u << 20) / sizeof(capnp::word);

}  // namespace

struct FramedConnection::Impl final : private kj::TaskSet::ErrorHandler {
  Impl(kj::Own<kj::AsyncIoStream> stream, ServerContext& context)
      : ctx(context), socket(kj::mv(stream)), state(kj::refcounted<ConnectionState>()), tasks(*this) {
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

  // Serves the requests read so far, then reads more, until the client closes its side, the
  // protocol is broken, or the bound on requests in flight stops it (then again once
  // answers have left). Requests are parsed where they lie in `buffer`: a whole request
  // takes no promise and no copy of its own.
  kj::Promise<void> ReadLoop() {
    size_t need = 0;  // words of the first request not yet whole
    while (!stop_reading && in_flight < frames::MAX_IN_FLIGHT) {
      auto words = kj::arrayPtr(buffer.begin() + begin / sizeof(capnp::word), (end - begin) / sizeof(capnp::word));
      need = words.size() == 0 ? 1 : capnp::expectedSizeInWordsFromPrefix(words);
      if (need > kMaxRequestWords) {
        ++in_flight;  // the answer to no request counts out when written, as any other
        ProtocolError(0, kj::str("a frame of ", need * sizeof(capnp::word), " bytes, more than the ",
                                 kMaxRequestWords * sizeof(capnp::word), " a request may have; the connection is closed"));
        return kj::READY_NOW;
      }
      if (need > words.size()) break;
      if (!ServeFrame(words.slice(0, need))) return kj::READY_NOW;
      begin += need * sizeof(capnp::word);
    }
    if (stop_reading) return kj::READY_NOW;
    if (in_flight >= frames::MAX_IN_FLIGHT) {
      ++ctx.counters.framed_reads_paused;
      auto paf = kj::newPromiseAndFulfiller<void>();
      room = kj::mv(paf.fulfiller);
      return paf.promise.then([this] { return ReadLoop(); });
    }
    // The part of a request read so far goes to the front; a request larger than the buffer
    // is read into an array of its own.
    auto* bytes = buffer.asBytes().begin();
    if (begin > 0) {
      std::memmove(bytes, bytes + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (need > buffer.size()) return ReadLarge(need);
    return socket->tryRead(bytes + end, 1, buffer.asBytes().size() - end)
        .then(
            [this](size_t n) -> kj::Promise<void> {
              if (n == 0) {  // the client closed its side: answer what it sent, then end
                stop_reading = true;
                FinishIfDone();
                return kj::READY_NOW;
              }
              end += n;
              return ReadLoop();
            },
            [this](kj::Exception&& e) { return ReadFailed(kj::mv(e)); });
  }

  // The request of `words` words whose first (end - begin) bytes are in the buffer.
  kj::Promise<void> ReadLarge(size_t words) {
    auto large = kj::heapArray<capnp::word>(words);
    const size_t have = end - begin;
    std::memcpy(large.asBytes().begin(), buffer.asBytes().begin() + begin, have);
    begin = end = 0;
    auto* rest = large.asBytes().begin() + have;
    const size_t left = large.asBytes().size() - have;
    return socket->read(rest, left)
        .then(
            [this, large = kj::mv(large)]() -> kj::Promise<void> {
              if (!ServeFrame(large)) return kj::READY_NOW;
              return ReadLoop();
            },
            [this](kj::Exception&& e) { return ReadFailed(kj::mv(e)); });
  }

  kj::Promise<void> ReadFailed(kj::Exception&& e) {
    stop_reading = true;
    if (e.getType() == kj::Exception::Type::DISCONNECTED) {  // nobody to answer
      End();
      return kj::READY_NOW;
    }
    return kj::mv(e);
  }

  // One whole frame: false when the connection is closing after it. (A frame whose size its
  // segment table gives is read as a message; a bad pointer inside it shows when the
  // request is read, in Serve. The check here is a guard.)
  bool ServeFrame(kj::ArrayPtr<const capnp::word> words) {
    kj::Maybe<capnp::FlatArrayMessageReader> message;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] { message.emplace(words); })) {
      ++in_flight;
      ProtocolError(0, kj::str("a frame could not be read (", e->getDescription(),
                               "); the connection is closed: each request must be one Cap'n Proto message in the "
                               "standard stream framing (protocol/frames.capnp)"));
      return false;
    }
    Serve(KJ_ASSERT_NONNULL(message));
    return !stop_reading;
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
        case frames::Request::COMMAND: return Command(id, request.getCommand());
      }
      Error(id, kj::str("unknown request kind ", static_cast<uint>(request.which()),
                        ": this esd serves login, append and command (protocol/frames.capnp)"));
    })) {
      auto text = kj::str("malformed request: ", e->getDescription(), "; nothing was written");
      if (const uint64_t n = ctx.framed_refused_requests_log.Failed()) {
        log::Warn("a framed request was refused: {} ({} such requests since the last line)", text.cStr(), n);
      }
      Error(id, text);
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
    state->LoggedIn();
    auto reply = Reply(id);
    reply->getRoot<frames::Response>().setLogin(RoleOnWire(KJ_ASSERT_NONNULL(role)));
    Send(*reply);
  }

  void Append(uint64_t id, frames::Append::Reader append) {
    KJ_IF_MAYBE(granted, role) {
      // Timed as EventStore.append (esd_rpc_duration_seconds): the same call, another door.
      const RpcLatency::Stopwatch watch = ctx.ops.rpc_latency.Start(capnp::typeId<rpc::EventStore>(), 0);
      auto reply = Reply(id);
      capnp::MallocMessageBuilder& m = *reply;
      auto served = ServeAppend(ctx, *granted, append.getStream(), append.getExpected(), append.getEvents(),
                                [&m] { return m.getRoot<frames::Response>().initAppend(); });
      Answer(id, "append", kj::mv(served), kj::mv(reply), watch);
    } else {
      ctx.ops.appends.Add({"permission_denied"});
      Error(id, "unauthenticated: this esd runs with --auth; send a login request with a token of its --auth file "
                "before appending; nothing was written");
    }
  }

  void Command(uint64_t id, frames::OrderCommand::Reader command) {
    KJ_IF_MAYBE(granted, role) {
      auto [decoded, method] = Decode(command);
      // Timed as the OrderService method of its kind (esd_rpc_duration_seconds).
      const RpcLatency::Stopwatch watch = ctx.ops.rpc_latency.Start(capnp::typeId<rpc::OrderService>(), method);
      auto reply = Reply(id);
      capnp::MallocMessageBuilder& m = *reply;
      auto served = ServeCommand(ctx, *granted, command.getMeta(), kj::mv(decoded),
                                 [&m] { return m.getRoot<frames::Response>().initCommand(); });
      Answer(id, "command", kj::mv(served), kj::mv(reply), watch);
    } else {
      ctx.ops.order_commands.Add({"failed", ""});
      Error(id, "unauthenticated: this esd runs with --auth; send a login request with a token of its --auth file "
                "before sending commands; nothing was written");
    }
  }

  // The domain's command for `command`, and the OrderService method it is (its ordinal in
  // protocol/esd.capnp). Throws for a kind this esd does not know.
  static std::pair<domain::OrderCommand, uint16_t> Decode(frames::OrderCommand::Reader command) {
    auto text = [](capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); };
    std::string order_id = text(command.getOrderId());
    switch (command.which()) {
      case frames::OrderCommand::CREATE_ORDER:
        return {domain::CreateOrder{std::move(order_id), text(command.getCreateOrder().getCustomerId())}, 0};
      case frames::OrderCommand::ADD_ITEM: {
        auto add = command.getAddItem();
        return {domain::AddItem{std::move(order_id), text(add.getSku()), add.getQuantity(), add.getUnitPriceCents()},
                1};
      }
      case frames::OrderCommand::REMOVE_ITEM: {
        auto remove = command.getRemoveItem();
        return {RemoveItemCommand(std::move(order_id), text(remove.getSku()), remove.getQuantity()), 2};
      }
      case frames::OrderCommand::PLACE_ORDER: return {domain::PlaceOrder{std::move(order_id)}, 3};
      case frames::OrderCommand::CANCEL_ORDER:
        return {domain::CancelOrder{std::move(order_id), text(command.getCancelOrder().getReason())}, 4};
    }
    KJ_FAIL_REQUIRE("unknown kind of order command; this esd serves createOrder, addItem, removeItem, placeOrder "
                    "and cancelOrder",
                    static_cast<uint>(command.which()));
  }

  // Sends `reply` once `served` has filled it, or an error if it failed (a bug: ServeAppend
  // and ServeCommand answer every outcome).
  void Answer(uint64_t id, const char* what, kj::Promise<void> served, kj::Own<capnp::MallocMessageBuilder> reply,
              RpcLatency::Stopwatch watch) {
    tasks.add(served.then(
        [this, reply = kj::mv(reply), watch]() mutable {
          watch.Stop();
          Send(*reply);
        },
        [this, id, what, watch](kj::Exception&& e) {
          watch.Stop();
          Error(id, kj::str("the ", what, " failed: ", e.getDescription()));
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
    if (const uint64_t n = ctx.framed_protocol_errors_log.Failed()) {
      log::Warn("a framed connection broke the protocol and was closed: {} ({} such connections since the last line)",
                text.cStr(), n);
    }
    stop_reading = true;
    Error(id, text);
  }

  // Queues an answer; those queued in one turn of the loop leave in one write.
  void Send(capnp::MessageBuilder& message) {
    transport::ByteVectorOutput out(pending);
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
    if (stop_reading && in_flight == 0 && !writing) End();
  }

  void End() {
    if (finished.get() != nullptr) {
      finished->fulfill();
      finished = nullptr;
    }
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
  // Requests as read, bytes [begin, end). Frames are whole words and the first starts right
  // after the magic, so each request starts word-aligned.
  kj::Array<capnp::word> buffer = kj::heapArray<capnp::word>(kBufferWords);
  size_t begin = 0, end = 0;
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

ConnectionState& FramedConnection::state() { return *impl_->state; }

}  // namespace esd::server
