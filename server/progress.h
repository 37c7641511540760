// Progress of a long Admin call, told to the caller's ProgressSink (protocol/esd.capnp):
// every kProgressInterval while the figures change, never before there is a total, and once
// more with done == total when the work is complete, before the call is answered.
//
// The work itself (often on another thread) only writes a ProgressCell; the event loop
// samples it. A sink whose caller went away stops the reports, never the work.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>

#include "protocol/esd.capnp.h"

namespace esd::server {

inline constexpr kj::Duration kProgressInterval = 250 * kj::MILLISECONDS;

using Figures = std::pair<uint64_t, uint64_t>;  // done, total
using Sample = std::function<Figures()>;        // called on the event loop

// Written by a job's thread, sampled on the event loop: both figures change together.
class ProgressCell {
 public:
  void Set(uint64_t done, uint64_t total) {
    std::lock_guard lock(mu_);
    figures_ = {done, total};
  }
  Figures Get() const {
    std::lock_guard lock(mu_);
    return figures_;
  }

 private:
  mutable std::mutex mu_;
  Figures figures_{0, 0};
};

// Sends sample() to `sink` every kProgressInterval when it has changed and has a total.
// Never resolves; fails when the sink does.
kj::Promise<void> ReportLoop(kj::Timer& timer, rpc::ProgressSink::Client sink, Sample sample, Figures last);

// `work`, reported to `sink` when the caller passed one (see the top of this file).
template <typename T>
kj::Promise<T> WithProgress(kj::Timer& timer, kj::Maybe<rpc::ProgressSink::Client> sink, Sample sample,
                            kj::Promise<T> work) {
  KJ_IF_MAYBE(s, sink) {
    auto reporting = ReportLoop(timer, *s, sample, {0, 0})
                         .catch_([](kj::Exception&&) -> kj::Promise<void> { return kj::NEVER_DONE; })
                         .eagerlyEvaluate(nullptr);
    return work.then([s = *s, sample = kj::mv(sample), reporting = kj::mv(reporting)](T value) mutable {
      reporting = nullptr;  // cancels the loop
      const uint64_t done = sample().first;
      auto req = s.progressRequest();
      req.setDone(done);
      req.setTotal(done);
      return req.send().catch_([](kj::Exception&&) {}).then([value = kj::mv(value)]() mutable {
        return kj::mv(value);
      });
    });
  }
  return work;
}

}  // namespace esd::server
