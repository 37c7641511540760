#include "server/rpc_latency.h"

#include <capnp/schema.h>

#include "protocol/esd.capnp.h"

namespace esd::server {
namespace {

// Microseconds: an RPC costs ~60-85 us on loopback; a backup or verify may take minutes.
std::unique_ptr<storage::Histogram> NewLatencyHistogram() {
  return std::make_unique<storage::Histogram>(std::initializer_list<uint64_t>{
      100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000,
      10'000'000, 60'000'000});
}

}  // namespace

RpcLatency::RpcLatency() {
  for (capnp::InterfaceSchema schema : {capnp::Schema::from<rpc::EventStore>(), capnp::Schema::from<rpc::OrderService>(),
                                        capnp::Schema::from<rpc::Admin>()}) {
    const std::string service = schema.getShortDisplayName().cStr();
    const auto methods = schema.getMethods();
    for (uint16_t i = 0; i < methods.size(); ++i) {
      methods_[{schema.getProto().getId(), i}] =
          Method{service, methods[i].getProto().getName().cStr(), NewLatencyHistogram()};
    }
  }
}

storage::Histogram* RpcLatency::Find(uint64_t interface_id, uint16_t method_id) {
  auto it = methods_.find({interface_id, method_id});
  return it == methods_.end() ? nullptr : it->second.histogram.get();
}

RpcLatency::Stopwatch RpcLatency::Start(uint64_t interface_id, uint16_t method_id) {
  Stopwatch w;
  w.histogram_ = Find(interface_id, method_id);
  if (w.histogram_ != nullptr) w.start_ = std::chrono::steady_clock::now();
  return w;
}

void RpcLatency::Record(storage::Histogram& h, std::chrono::steady_clock::time_point start) {
  h.Record(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count()));
}

std::vector<MetricsText::HistogramSeries> RpcLatency::Series() const {
  std::vector<MetricsText::HistogramSeries> out;
  for (const auto& [key, m] : methods_) {
    auto snapshot = m.histogram->Read();
    if (snapshot.count == 0) continue;
    out.push_back({{{"service", m.service}, {"method", m.method}}, std::move(snapshot)});
  }
  return out;
}

}  // namespace esd::server
