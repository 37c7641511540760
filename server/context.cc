#include "server/context.h"

#include <kj/function.h>

#include <memory>

namespace esd::server {

kj::Promise<kj::Own<storage::AppendResult>> AppendOnLoop(ServerContext& ctx, std::string stream,
                                                         storage::ExpectedVersion expected,
                                                         std::vector<storage::EventData> events) {
  using Boxed = kj::Own<storage::AppendResult>;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Boxed>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Boxed>>>(kj::mv(paf.fulfiller));
  ctx.store.Append(std::move(stream), expected, std::move(events), [fulfiller](storage::AppendResult r) {
    (*fulfiller)->fulfill(kj::heap<storage::AppendResult>(std::move(r)));
  });
  // Counted down when the result is taken or the caller gave up: a graceful stop waits for
  // answers that someone still wants, not for disconnected clients.
  ++ctx.appends_in_flight;
  return paf.promise.attach(kj::defer([&ctx] { --ctx.appends_in_flight; }));
}

}  // namespace esd::server
