// One connection that speaks the framed protocol (protocol/frames.capnp; docs/server.md,
// "Framed appends"): login and append, each request and each answer one Cap'n Proto message,
// without the RPC system's per-call machinery (questions, answers, exports, Finish messages).
//
// - Requests are read one after the other; an append is checked and handed to the writer as
//   EventStore.append's are (ServeAppend), and the next request is read at once.
// - Answers go out as the appends finish: those that finish in one turn of the event loop
//   leave in one write.
// - At most frames::MAX_IN_FLIGHT requests are between being read and having their answer
//   written; past that the connection is not read until answers leave (the bound capnp's
//   flow limit gives an RPC connection).
// - A request that decodes but cannot be served (malformed fields, an unknown kind, an append
//   before the login --auth asks for) is answered with `error`, and the connection goes on.
//   A frame that cannot be read at all, or an unknown token, is answered with `error` and
//   ends the connection, after the answers to the appends already begun.
#pragma once

#include <kj/async-io.h>
#include <kj/memory.h>

namespace esd::server {

struct ServerContext;
class ConnectionState;

class FramedConnection {
 public:
  // `stream`'s first bytes (transport::kFramesMagic) have been read. Registers a
  // ConnectionState in ctx.connections, as Connection does, so that a graceful stop waits
  // for this connection's answers to leave too.
  FramedConnection(kj::Own<kj::AsyncIoStream> stream, ServerContext& ctx);
  ~FramedConnection() noexcept(false);
  FramedConnection(const FramedConnection&) = delete;
  FramedConnection& operator=(const FramedConnection&) = delete;

  // Serves the connection. Resolves once the client has closed its side and every append it
  // sent has been answered onto the socket, or the protocol was broken and that was answered,
  // or the socket failed. Call once.
  kj::Promise<void> Run();

  ConnectionState& state();

 private:
  struct Impl;
  kj::Own<Impl> impl_;
};

}  // namespace esd::server
