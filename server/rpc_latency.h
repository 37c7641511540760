// esd_rpc_duration_seconds{service,method}: the time from a call's dispatch to its answer
// (or its failure), per method of the EventStore, OrderService and Admin capabilities. A
// read that waits for its connection to take earlier answers (backpressure) counts that
// wait too: it is what the client sees, less the network.
//
// Each service overrides dispatchCall, the one door every call of its interface comes
// through, and hands it to Timed; the methods themselves stay as they are.
#pragma once

#include <capnp/capability.h>
#include <kj/async.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/metrics.h"
#include "storage/histogram.h"

namespace esd::server {

class RpcLatency {
 public:
  RpcLatency();  // a histogram for each method of the three interfaces, from their schemas
  RpcLatency(const RpcLatency&) = delete;
  RpcLatency& operator=(const RpcLatency&) = delete;

  // Runs `dispatch` (the interface's own dispatchCall) and records, when its promise
  // settles, how long the call took. Calls of other interfaces pass through untimed.
  template <typename Dispatch>
  capnp::Capability::Server::DispatchCallResult Timed(uint64_t interface_id, uint16_t method_id, Dispatch&& dispatch) {
    storage::Histogram* h = Find(interface_id, method_id);
    if (h == nullptr) return dispatch();
    const auto start = std::chrono::steady_clock::now();
    auto result = dispatch();
    result.promise = result.promise.then([h, start] { Record(*h, start); },
                                         [h, start](kj::Exception&& e) {
                                           Record(*h, start);
                                           kj::throwFatalException(kj::mv(e));
                                         });
    return result;
  }

  // One series per method that was called at least once (service and method labels), in
  // seconds: the histograms count microseconds.
  std::vector<MetricsText::HistogramSeries> Series() const;

 private:
  struct Method {
    std::string service, method;
    std::unique_ptr<storage::Histogram> histogram;
  };
  storage::Histogram* Find(uint64_t interface_id, uint16_t method_id);
  static void Record(storage::Histogram& h, std::chrono::steady_clock::time_point start);
  // Built in the constructor, then only read: no lock.
  std::map<std::pair<uint64_t, uint16_t>, Method> methods_;
};

}  // namespace esd::server
