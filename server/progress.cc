#include "server/progress.h"

namespace esd::server {

kj::Promise<void> ReportLoop(kj::Timer& timer, rpc::ProgressSink::Client sink, Sample sample, Figures last) {
  return timer.afterDelay(kProgressInterval)
      .then([&timer, sink = kj::mv(sink), sample = kj::mv(sample), last]() mutable -> kj::Promise<void> {
        const Figures now = sample();
        // Nothing to tell before the work knows how much there is: a (0, 0) would read as
        // "all done".
        if (now == last || now.second == 0) return ReportLoop(timer, kj::mv(sink), kj::mv(sample), last);
        auto req = sink.progressRequest();
        req.setDone(now.first);
        req.setTotal(now.second);
        return req.send().then([&timer, sink = kj::mv(sink), sample = kj::mv(sample), now]() mutable {
          return ReportLoop(timer, kj::mv(sink), kj::mv(sample), now);
        });
      });
}

}  // namespace esd::server
