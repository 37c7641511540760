// esd::client::Appender: a connection that only writes (appends and order commands), over
// esd's framed protocol (protocol/frames.capnp; docs/server.md, "Framed appends"), for
// producers. The daemon serves them without Cap'n Proto's RPC system, whose per-call work is
// most of what a small append or a command costs it (docs/performance.md, "Framed
// appends").
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

  // The Order service's commands, as Client's (the same arguments, outcomes and idempotence
  // by command id; a reader's are kFailed "permission-denied"). Reads of orders are Client's.
  // An esd older than commands in the framed protocol refuses them: Error kRemote, "unknown
  // request kind", and nothing is written.
  kj::Promise<CommandOutcome> CreateOrderAsync(const std::string& order_id, const std::string& customer_id,
                                               const std::string& command_id = "",
                                               const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> AddItemAsync(const std::string& order_id, const std::string& sku, uint32_t quantity,
                                           int64_t unit_price_cents, const std::string& command_id = "",
                                           const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> RemoveItemAsync(const std::string& order_id, const std::string& sku,
                                              uint32_t quantity /* 0: all */, const std::string& command_id = "",
                                              const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> PlaceOrderAsync(const std::string& order_id, const std::string& command_id = "",
                                              const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> CancelOrderAsync(const std::string& order_id, const std::string& reason,
                                               const std::string& command_id = "",
                                               const std::string& correlation_id = "");
  CommandOutcome CreateOrder(const std::string& order_id, const std::string& customer_id,
                             const std::string& command_id = "", const std::string& correlation_id = "");
  CommandOutcome AddItem(const std::string& order_id, const std::string& sku, uint32_t quantity,
                         int64_t unit_price_cents, const std::string& command_id = "",
                         const std::string& correlation_id = "");
  CommandOutcome RemoveItem(const std::string& order_id, const std::string& sku, uint32_t quantity /* 0: all */,
                            const std::string& command_id = "", const std::string& correlation_id = "");
  CommandOutcome PlaceOrder(const std::string& order_id, const std::string& command_id = "",
                            const std::string& correlation_id = "");
  CommandOutcome CancelOrder(const std::string& order_id, const std::string& reason, const std::string& command_id = "",
                             const std::string& correlation_id = "");

  // As Client's: run this thread's event loop (nothing is sent or answered otherwise).
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  void RunFor(std::chrono::milliseconds duration);

  class Impl;

 private:
  explicit Appender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace esd::client
