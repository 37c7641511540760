// One RPC connection: its socket, the Cap'n Proto network and RPC system over it, and the
// state the calls on it share (ConnectionState). A connection that speaks the framed
// protocol (protocol/frames.capnp) is a FramedConnection (server/framed_connection.h) with a
// ConnectionState of its own.
//
// What one connection may hold of the daemon's memory is bounded in both directions:
// - Requests: the RPC system's flow limit (kFlowLimitBytes). Past it, capnp stops reading the
//   connection's socket until calls in flight answer, so a client pipelining large appends
//   waits on TCP backpressure instead of filling the daemon's memory. A single request may
//   be larger (up to capnp's 64 MiB message limit); nothing more is read behind it.
// - Answers: a read waits (WhenOutgoingBelow) while more than kMaxOutgoingBytes of this
//   connection's answers are queued unsent. A client that pipelines reads and never takes
//   the answers is then no longer served, and through the flow limit no longer read.
// What all connections may queue for the writer together is the store's bound
// (storage::Options::max_queued_bytes; past it appends are answered `overloaded`).
#pragma once

#include <kj/async-io.h>
#include <kj/refcount.h>
#include <kj/timer.h>

#include <cstddef>
#include <cstdint>
#include <map>

namespace capnp {
class TwoPartyVatNetwork;
}

namespace esd::server {

inline constexpr size_t kFlowLimitBytes = 4u << 20;
inline constexpr size_t kMaxOutgoingBytes = 32u << 20;  // two of the largest read answers

// Shared by the services of one connection (they hold a reference), on the KJ thread.
// Outlives the connection when a call still holds it; it then acts as an empty queue.
class ConnectionState final : public kj::Refcounted {
 public:
  ConnectionState() = default;
  ~ConnectionState() noexcept(false);

  // Bytes of answers queued for this connection and not yet written to its socket; 0 once
  // the connection is gone.
  size_t outgoing_bytes() const;

  // Resolves once fewer than `bytes` of answers are queued unsent (at once if that holds,
  // or when the connection is gone). Waiters are released one at a time, in order, each
  // after the one before has had its turn on the loop. Dropping the promise leaves nothing
  // behind.
  kj::Promise<void> WhenOutgoingBelow(size_t bytes);
  // Every answer queued so far has been written to the socket.
  kj::Promise<void> WhenFlushed() { return WhenOutgoingBelow(1); }

  // The connection's client has logged in with a token of the --auth file (Bootstrap.login,
  // or the framed protocol's login). Under --auth, one that has not within --login-timeout
  // is closed (server/daemon.cc).
  void LoggedIn() { logged_in_ = true; }
  bool logged_in() const { return logged_in_; }

 private:
  friend class Connection;
  friend class FramedConnection;
  // `queued` says how many bytes of answers the connection holds unsent.
  void Attach(kj::Function<size_t()> queued);
  void Detach();         // the connection is closing: every waiter is released
  void AfterWrite();     // a write to the socket completed
  void ScheduleCheck();  // a Check() once what is queued now has run
  void Check();          // releases the waiters whose condition holds

  mutable kj::Maybe<kj::Function<size_t()>> queued_;  // mutable: kj::Function calls are not const
  struct Waiter {
    size_t below;
    kj::Own<kj::PromiseFulfiller<void>> fulfiller;
  };
  std::map<uint64_t, Waiter> waiters_;
  uint64_t next_waiter_ = 0;
  bool check_scheduled_ = false;
  bool logged_in_ = false;
};

struct ServerContext;

// Owns everything of one accepted connection, and registers its state in
// ServerContext::connections while it lives. The daemon keeps it until the peer goes.
class Connection {
 public:
  Connection(kj::Own<kj::AsyncIoStream> stream, ServerContext& ctx);
  ~Connection() noexcept(false);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionState& state() { return *state_; }
  // Resolves when the peer has gone (or the RPC system gave up on it).
  kj::Promise<void> OnDisconnect();

 private:
  struct Parts;
  ServerContext& ctx_;
  kj::Own<ConnectionState> state_;
  kj::Own<Parts> parts_;
};

// A connection the daemon will not serve (--max-connections): writes one RPC Abort message
// carrying `reason` (type overloaded), so that a capnp client's calls fail with it rather
// than with a bare disconnect (`framed`: a framed protocol's error answer with id 0), then shuts its side down and reads what the client sent until
// the client closes (a close with unread bytes would send a reset, which can discard the
// Abort before the client reads it), for at most kRefusalDrain and 64 KiB. A failed write or
// read is no error (the peer went first).
inline constexpr kj::Duration kRefusalDrain = 2 * kj::SECONDS;
kj::Promise<void> RefuseConnection(kj::Own<kj::AsyncIoStream> stream, kj::StringPtr reason, kj::Timer& timer,
                                   bool framed = false);

}  // namespace esd::server
