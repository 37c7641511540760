#include "server/rpc_latency.h"

#include <capnp/schema.h>
#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/debug.h>

#include "protocol/esd.capnp.h"

namespace esd::server {
namespace {

using DispatchCallResult = capnp::Capability::Server::DispatchCallResult;

uint64_t IdOf(capnp::InterfaceSchema s) { return s.getProto().getId(); }

// The series of (service, method), or nullptr.
const MetricsText::HistogramSeries* Find(const std::vector<MetricsText::HistogramSeries>& all,
                                         const std::string& service, const std::string& method) {
  for (const auto& s : all) {
    if (s.labels == MetricLabels{{"service", service}, {"method", method}}) return &s;
  }
  return nullptr;
}

TEST(RpcLatency, ACallThatIsAnsweredIsCountedUnderItsServiceAndMethod) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  RpcLatency latency;
  EXPECT_TRUE(latency.Series().empty()) << "methods never called are left out";
  auto paf = kj::newPromiseAndFulfiller<void>();
  auto result = latency.Timed(IdOf(capnp::Schema::from<rpc::EventStore>()), 0,
                              [&] { return DispatchCallResult{kj::mv(paf.promise), false}; });
  EXPECT_TRUE(latency.Series().empty()) << "counted when answered, not when dispatched";
  paf.fulfiller->fulfill();
  result.promise.wait(ws);
  const auto series = latency.Series();
  ASSERT_EQ(series.size(), 1u);
  const auto* append = Find(series, "EventStore", "append");
  ASSERT_NE(append, nullptr);
  EXPECT_EQ(append->histogram.count, 1u);
}

TEST(RpcLatency, ACallThatFailsIsCountedAndStillFails) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  RpcLatency latency;
  auto admin = capnp::Schema::from<rpc::Admin>();
  const uint16_t verify = admin.getMethodByName("verify").getOrdinal();
  auto result = latency.Timed(IdOf(admin), verify, [&] {
    return DispatchCallResult{kj::Promise<void>(KJ_EXCEPTION(FAILED, "verify could not run")), false};
  });
  EXPECT_THROW(result.promise.wait(ws), kj::Exception);
  const auto* timed = Find(latency.Series(), "Admin", "verify");
  ASSERT_NE(timed, nullptr);
  EXPECT_EQ(timed->histogram.count, 1u);
}

TEST(RpcLatency, EveryMethodOfTheThreeServicesHasAHistogramAndOthersPassThrough) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  RpcLatency latency;
  size_t methods = 0;
  for (capnp::InterfaceSchema s : {capnp::Schema::from<rpc::EventStore>(), capnp::Schema::from<rpc::OrderService>(),
                                   capnp::Schema::from<rpc::Admin>()}) {
    for (uint16_t i = 0; i < s.getMethods().size(); ++i, ++methods) {
      latency.Timed(IdOf(s), i, [] { return DispatchCallResult{kj::READY_NOW, false}; }).promise.wait(ws);
    }
  }
  EXPECT_EQ(latency.Series().size(), methods);
  bool ran = false;
  latency.Timed(IdOf(capnp::Schema::from<rpc::Subscriber>()), 0, [&] {
    ran = true;
    return DispatchCallResult{kj::READY_NOW, false};
  }).promise.wait(ws);
  EXPECT_TRUE(ran);
  EXPECT_EQ(latency.Series().size(), methods) << "a Subscriber call is not one of ours to time";
}

}  // namespace
}  // namespace esd::server
