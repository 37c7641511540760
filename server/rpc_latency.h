// esd_rpc_duration_seconds{service,method}: the time from a call's dispatch to its answer
// (or its failure), per method of the EventStore, OrderService and Admin capabilities. A
// read that waits for its connection to take earlier answers (backpressure) counts that
// wait too: it is what the client sees, less the network.
//
// LoggedCalls (server/failed_calls.h) starts a Stopwatch in dispatchCall, the one door every
// call of its interface comes through, and stops it when the call settles; the methods
// themselves stay as they are.
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

  // A call's timing: started when it is dispatched, stopped when it settles (answered or
  // failed). Calls of other interfaces get an empty one, whose Stop does nothing.
  class Stopwatch {
   public:
    Stopwatch() = default;
    void Stop() const {
      if (histogram_ != nullptr) Record(*histogram_, start_);
    }
    bool timing() const { return histogram_ != nullptr; }

   private:
    friend class RpcLatency;
    storage::Histogram* histogram_ = nullptr;
    std::chrono::steady_clock::time_point start_;
  };
  Stopwatch Start(uint64_t interface_id, uint16_t method_id);

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
