// esd::client::Appender: a connection that only appends, over esd's framed protocol
// (protocol/frames.capnp; docs/server.md, "Framed appends"), for producers. The daemon
// serves its appends without Cap'n Proto's RPC system, whose per-call work is most of what
// a small append costs it (docs/performance.md, "Framed appends").
//
//   auto a = esd::client::Appender::Connect({.address = "127.0.0.1:7400", .token = "t"});
//   auto r = a->Append("cart-1", Expected::NoStream(), {NewEvent::Json("CartOpened", "{}")});
//
// Options, results and errors are Client's (client/client.h): an AppendResult for every
// business outcome, esd::client::Error for a broken connection, a refused login or a
// request the daemon calls malformed. Threads: as Client's, on the event loop of the thread
// that connected it, shared with that thread's Clients. Appends may be in flight together
// (AppendAsync); each is answered when it is durable, in the order they finish.
#pragma once

#include <kj/async.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"

namespace esd::client {

class Appender {
 public:
  // Connects, sends the login (options.token; any token without the daemon's --auth) and
  // waits for its verdict. Throws Error as Client::Connect does: kConnect with a
  // ConnectProblem (kTooManyConnections past the daemon's --max-connections), and
  // kUnauthenticated for a refused token.
  static std::unique_ptr<Appender> Connect(const ConnectOptions& options);
  ~Appender();
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  std::string Role() const;  // "reader", "writer" or "admin", as the login granted

  // As Client::AppendAsync and Append. A reader's appends are kRejected "permission-denied".
  kj::Promise<AppendResult> AppendAsync(const std::string& stream, Expected expected,
                                        const std::vector<NewEvent>& events);
  AppendResult Append(const std::string& stream, Expected expected, const std::vector<NewEvent>& events);

  // As Client's: run this thread's event loop (nothing is sent or answered otherwise).
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  void RunFor(std::chrono::milliseconds duration);

  class Impl;

 private:
  explicit Appender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace esd::client
