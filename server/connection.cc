#include "server/connection.h"

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize-async.h>
#include <kj/debug.h>

#include "protocol/frames.capnp.h"
#include "protocol/transport.h"
#include "server/context.h"
#include "server/session.h"

namespace esd::server {

namespace {

// The connection's socket as capnp sees it, telling the ConnectionState each time a write
// has completed: that is when capnp's queue of unsent answers shrinks.
class WatchedStream final : public transport::BufferedReads {
 public:
  WatchedStream(kj::AsyncIoStream& inner, kj::Function<void()> after_write)
      : BufferedReads(inner), after_write_(kj::mv(after_write)) {}

  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner_.write(buffer, size).then([this] { after_write_(); });
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_.write(pieces).then([this] { after_write_(); });
  }

 private:
  kj::Function<void()> after_write_;
};

}  // namespace

ConnectionState::~ConnectionState() noexcept(false) = default;

size_t ConnectionState::outgoing_bytes() const {
  KJ_IF_MAYBE(queued, queued_) { return (*queued)(); }
  return 0;
}

kj::Promise<void> ConnectionState::WhenOutgoingBelow(size_t bytes) {
  if (outgoing_bytes() < bytes) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  const uint64_t id = next_waiter_++;
  waiters_.emplace(id, Waiter{bytes, kj::mv(paf.fulfiller)});
  // A write may have completed just before, with capnp not yet done taking it off its queue.
  ScheduleCheck();
  // The reference is attached outermost, so it is released last: the erase still has this.
  return paf.promise.attach(kj::defer([this, id] { waiters_.erase(id); })).attach(kj::addRef(*this));
}

void ConnectionState::Attach(kj::Function<size_t()> queued) { queued_ = kj::mv(queued); }

void ConnectionState::Detach() {
  queued_ = nullptr;
  Check();
}

void ConnectionState::AfterWrite() {
  if (!waiters_.empty()) ScheduleCheck();
}

void ConnectionState::ScheduleCheck() {
  // capnp takes a written message off its queue in the continuations of the write, which
  // run before anything evalLater schedules now.
  if (check_scheduled_) return;
  check_scheduled_ = true;
  kj::evalLater([self = kj::addRef(*this)]() mutable {
    self->check_scheduled_ = false;
    self->Check();
  }).detach([](kj::Exception&&) {});
}

void ConnectionState::Check() {
  // One waiter at a time, in the order they came: each is a read that queues its answer as
  // soon as it runs (before the check scheduled here), so the next is judged by the queue
  // with that answer in it. Releasing all at once would let them all answer together.
  const size_t queued = outgoing_bytes();
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (queued < it->second.below) {
      auto fulfiller = kj::mv(it->second.fulfiller);
      waiters_.erase(it);
      fulfiller->fulfill();
      if (!waiters_.empty()) ScheduleCheck();
      return;
    }
  }
}

struct Connection::Parts {
  Parts(kj::Own<kj::AsyncIoStream> s, ConnectionState& state)
      : socket(kj::mv(s)),
        watched(*socket, [&state] { state.AfterWrite(); }),
        network(watched, capnp::rpc::twoparty::Side::SERVER) {}
  kj::Own<kj::AsyncIoStream> socket;
  WatchedStream watched;
  capnp::TwoPartyVatNetwork network;
  kj::Maybe<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
};

Connection::Connection(kj::Own<kj::AsyncIoStream> stream, ServerContext& ctx)
    : ctx_(ctx), state_(kj::refcounted<ConnectionState>()), parts_(kj::heap<Parts>(kj::mv(stream), *state_)) {
  state_->Attach([&network = parts_->network] { return network.getCurrentQueueSize(); });
  auto& rpc = parts_->rpc.emplace(capnp::makeRpcServer(parts_->network, MakeBootstrap(ctx, *state_)));
  rpc.setFlowLimit(kFlowLimitBytes / sizeof(capnp::word));
  ctx_.connections.insert(state_.get());
}

Connection::~Connection() noexcept(false) {
  ctx_.connections.erase(state_.get());
  state_->Detach();
}

kj::Promise<void> Connection::OnDisconnect() { return parts_->network.onDisconnect(); }

namespace {

// Reads and drops what the peer sends until it closes, or `left` bytes have come.
kj::Promise<void> DrainUntilClosed(kj::AsyncIoStream& stream, kj::Array<kj::byte>& buffer, size_t left) {
  return stream.tryRead(buffer.begin(), 1, buffer.size()).then([&stream, &buffer, left](size_t n) -> kj::Promise<void> {
    if (n == 0 || n >= left) return kj::READY_NOW;
    return DrainUntilClosed(stream, buffer, left - n);
  });
}

}  // namespace

kj::Promise<void> RefuseConnection(kj::Own<kj::AsyncIoStream> stream, kj::StringPtr reason, kj::Timer& timer,
                                   bool framed) {
  // What the steps below refer to, on the heap: it lives until the promise is done or dropped.
  struct Refusal {
    kj::Own<kj::AsyncIoStream> stream;
    capnp::MallocMessageBuilder message{64};
    kj::Array<kj::byte> buffer = kj::heapArray<kj::byte>(4096);
  };
  auto r = kj::heap<Refusal>();
  r->stream = kj::mv(stream);
  if (framed) {
    r->message.initRoot<rpc::frames::Response>().setError(reason);  // id 0: about no request
  } else {
    auto abort = r->message.initRoot<capnp::rpc::Message>().initAbort();
    abort.setType(capnp::rpc::Exception::Type::OVERLOADED);
    abort.setReason(reason);
  }
  Refusal& refusal = *r;
  auto refused = capnp::writeMessage(*refusal.stream, refusal.message).then([&refusal] {
    refusal.stream->shutdownWrite();
    return DrainUntilClosed(*refusal.stream, refusal.buffer, 64 * 1024);
  });
  return timer.timeoutAfter(kRefusalDrain, kj::mv(refused)).attach(kj::mv(r)).catch_([](kj::Exception&&) {});
}

}  // namespace esd::server
