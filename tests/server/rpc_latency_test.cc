#include "server/rpc_latency.h"

#include <capnp/schema.h>
#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/debug.h>

#include "protocol/esd.capnp.h"

namespace esd::server {
namespace {

uint64_t IdOf(capnp::InterfaceSchema s) { return s.getProto().getId(); }

// The series of (service, method), or nullptr.
const MetricsText::HistogramSeries* Find(const std::vector<MetricsText::HistogramSeries>& all,
                                         const std::string& service, const std::string& method) {
  for (const auto& s : all) {
    if (s.labels == MetricLabels{{"service", service}, {"method", method}}) return &s;
  }
  return nullptr;
}

TEST(RpcLatency, ACallIsCountedUnderItsServiceAndMethodWhenItsStopwatchStops) {
  RpcLatency latency;
  EXPECT_TRUE(latency.Series().empty()) << "methods never called are left out";
  const auto watch = latency.Start(IdOf(capnp::Schema::from<rpc::EventStore>()), 0);
  EXPECT_TRUE(watch.timing());
  EXPECT_TRUE(latency.Series().empty()) << "counted when it settles, not when dispatched";
  watch.Stop();
  const auto series = latency.Series();
  ASSERT_EQ(series.size(), 1u);
  const auto* append = Find(series, "EventStore", "append");
  ASSERT_NE(append, nullptr);
  EXPECT_EQ(append->histogram.count, 1u);
}

TEST(RpcLatency, EveryMethodOfTheThreeServicesHasAHistogramAndOthersAreNotTimed) {
  RpcLatency latency;
  size_t methods = 0;
  for (capnp::InterfaceSchema s : {capnp::Schema::from<rpc::EventStore>(), capnp::Schema::from<rpc::OrderService>(),
                                   capnp::Schema::from<rpc::Admin>()}) {
    for (uint16_t i = 0; i < s.getMethods().size(); ++i, ++methods) latency.Start(IdOf(s), i).Stop();
  }
  EXPECT_EQ(latency.Series().size(), methods);
  const auto other = latency.Start(IdOf(capnp::Schema::from<rpc::Subscriber>()), 0);
  EXPECT_FALSE(other.timing());
  other.Stop();
  EXPECT_EQ(latency.Series().size(), methods) << "a Subscriber call is not one of ours to time";
}

}  // namespace
}  // namespace esd::server
