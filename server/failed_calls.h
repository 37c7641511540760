// The daemon's log line for every RPC call that fails with an exception (type FAILED): the
// client is told "the server failed the request ... See the esd log" (esctl), so the log
// must say which call failed and why. Typed outcomes in results (a wrong expected version,
// a rejected command) are no failures and are not logged here; neither are calls that end
// because the client went away (DISCONNECTED).
//
// Each service derives from LoggedCalls<Interface> instead of Interface::Server; given an
// RpcLatency, every call of Interface is also timed (esd_rpc_duration_seconds,
// server/rpc_latency.h), failed or not. Lines are
// rate-limited per service object (one per connection) and method (BurstLog, 1 s): a
// client that repeats a failing call in a loop gets one line per second for it, each with
// the number of failures it stands for.
#pragma once

#include <capnp/capability.h>
#include <capnp/schema.h>
#include <kj/debug.h>
#include <kj/exception.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "server/burst_log.h"
#include "server/rpc_latency.h"

namespace esd::server {

class FailedCallLog {
 public:
  explicit FailedCallLog(BurstLog::Clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}
  // Logs (warn) "INTERFACE.METHOD failed: DESCRIPTION" for a FAILED exception, within the
  // rate limit; other types are not logged. Any thread.
  void Failed(capnp::InterfaceSchema interface, uint16_t method, const kj::Exception& e);

 private:
  const BurstLog::Clock::duration interval_;
  std::mutex mu_;
  std::map<uint16_t, std::unique_ptr<BurstLog>> limits_;  // by method
};

template <typename Interface>
class LoggedCalls : public Interface::Server {
 public:
  using DispatchCallResult = capnp::Capability::Server::DispatchCallResult;
  // `latency` (may be null: calls untimed) outlives the service object.
  explicit LoggedCalls(RpcLatency* latency = nullptr) : latency_(latency) {}

  DispatchCallResult dispatchCall(uint64_t interface_id, uint16_t method_id,
                                  capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    const capnp::InterfaceSchema schema = capnp::Schema::from<Interface>();
    // Only calls of Interface itself (all of ours) are named by its schema's methods.
    const bool ours = interface_id == schema.getProto().getId();
    const RpcLatency::Stopwatch watch =
        latency_ != nullptr ? latency_->Start(interface_id, method_id) : RpcLatency::Stopwatch();
    kj::Maybe<DispatchCallResult> result;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      result = Interface::Server::dispatchCall(interface_id, method_id, context);
    })) {
      watch.Stop();
      if (ours) log_->Failed(schema, method_id, *e);
      kj::throwFatalException(kj::mv(*e));
    }
    DispatchCallResult r = kj::mv(KJ_ASSERT_NONNULL(result));
    if (!ours && !watch.timing()) return r;
    // One continuation for the latency and for a failure's line: each costs a promise node
    // on every call. The log is shared with it: a call may end after its service object.
    std::shared_ptr<FailedCallLog> log = ours ? log_ : nullptr;
    return {r.promise.then([watch] { watch.Stop(); },
                           [watch, log = kj::mv(log), schema, method_id](kj::Exception&& e) {
                             watch.Stop();
                             if (log != nullptr) log->Failed(schema, method_id, e);
                             kj::throwFatalException(kj::mv(e));
                           }),
            r.isStreaming};
  }

 protected:
  // For tests: one line per `interval` and method instead of per second.
  void SetFailedCallInterval(BurstLog::Clock::duration interval) { log_ = std::make_shared<FailedCallLog>(interval); }

 private:
  RpcLatency* const latency_;
  std::shared_ptr<FailedCallLog> log_ = std::make_shared<FailedCallLog>();
};

}  // namespace esd::server
