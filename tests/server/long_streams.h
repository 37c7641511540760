// Streams longer than one answer of the daemon holds, for the tests of paged reads (the
// daemon's, the client's and esctl's): events large enough that 16 MiB cuts a page, and an
// order with more events than one history call returns (10,000).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "client/client.h"
#include "domain/codec.h"
#include "storage/store.h"

namespace esd::testing {

// `count` events of ~500 KB (type "Big", JSON data {"v":VERSION,"pad":"xxx..."}), appended
// to `stream` five at a time (EsdProcess's segments are 4 MiB, and an append fits in one).
inline void AppendBigEvents(client::Client& c, const std::string& stream, uint64_t count) {
  for (uint64_t first = 0; first < count; first += 5) {
    std::vector<client::NewEvent> batch;
    for (uint64_t v = first; v < first + 5 && v < count; ++v) {
      std::string data = "{\"v\":";
      data += std::to_string(v);
      data += ",\"pad\":\"" + std::string(500'000, 'x') + "\"}";
      batch.push_back(client::NewEvent::Json("Big", std::move(data)));
    }
    const auto r = c.Append(stream, client::Expected::Any(), batch);
    ASSERT_TRUE(r.ok()) << r.reject_code << ": " << r.reason;
  }
}

// The order `order_id` with `count` events: OrderCreated, then ItemAdded, written into the
// store at `data_dir` (which no daemon runs on yet) as the Order service would encode them:
// much faster than `count` commands, and history shows a stream as it is. In-process, since
// over RPC order streams take no plain appends.
inline void WriteLongOrder(const std::filesystem::path& data_dir, const std::string& order_id, uint64_t count) {
  storage::Options options;
  options.segment_size = 4u << 20;  // as EsdProcess's daemons make them
  auto store = storage::Store::Open(data_dir, options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto event = [](const domain::OrderEvent& e, uint64_t i) {
    const auto encoded = domain::Encode(e, {"cmd-" + std::to_string(i), "", ""});
    storage::EventData d;
    d.id = storage::EventId::Random();
    d.type = encoded.type;
    d.content_type = std::string(domain::kOrderContentType);
    d.metadata = encoded.metadata;
    d.data = encoded.data;
    return d;
  };
  std::vector<storage::EventData> batch{event(domain::OrderCreated{order_id, "hank", 1}, 0)};
  for (uint64_t i = 1; i <= count; ++i) {
    if (i == count || batch.size() == 5'000) {
      const auto r = (*store)->AppendSync("order-" + order_id, storage::ExpectedVersion::Any(), std::move(batch));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      batch.clear();
    }
    if (i < count) batch.push_back(event(domain::ItemAdded{"sku", 1, 5}, i));
  }
}

}  // namespace esd::testing
