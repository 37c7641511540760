// A real esd started on a copy of the golden store of segment format version 1
// (tests/storage/golden/v1/, written by the esd of before the format changed): it serves
// every event as written, the golden orders through GetOrder and ListOrders from the
// projection's snapshot, takes new commands on them, and esctl verify finds it clean, online
// and offline (docs/storage.md, "Format versions and the golden store").
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/golden_store.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using client::Client;
using testing::EsdProcess;

const std::filesystem::path kGoldenDir = std::filesystem::path(ESD_SOURCE_DIR) / "tests" / "storage" / "golden";

// How make_golden_v1.sh ran esd.
const std::vector<std::string> kGoldenArgs = {"--segment-size", "65536", "--max-event-size", "32768"};

storage::testing::GoldenManifest ReadManifest() {
  std::ifstream in(kGoldenDir / "v1.manifest");
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  auto m = storage::testing::ParseManifest(text.str(), &error);
  if (!m) throw std::runtime_error(error);
  return *m;
}

uint64_t DigestOverRpc(Client& c, uint64_t* count) {
  storage::testing::EventDigest digest;
  uint64_t from = 0;
  for (;;) {
    auto page = c.ReadAll(from, 64);
    EXPECT_FALSE(page.damage.has_value());
    for (const auto& e : page.events) {
      storage::EventId id;
      id.bytes = e.id;
      digest.Add({storage::GlobalPosition(e.position), storage::StreamVersion(e.version), id, e.timestamp_micros,
                  e.stream, e.type, e.content_type, e.metadata, e.data});
    }
    from = page.next_position;
    if (page.end_of_log || page.events.empty()) break;
  }
  *count = digest.count();
  return digest.value();
}

TEST(Golden, EsdServesTheGoldenStoreOfFormatVersion1AndVerifiesItClean) {
  const auto manifest = ReadManifest();
  ASSERT_FALSE(manifest.orders.empty());
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  storage::testing::CopyGoldenStore(kGoldenDir / "v1", data);
  const uint64_t last = manifest.events - 1;
  {
    EsdProcess esd(data, kGoldenArgs);
    EXPECT_NE(esd.Output().find("the order projection's snapshot is loaded: it catches up from position " +
                                std::to_string(manifest.events)),
              std::string::npos)
        << "the golden projection snapshot is used as it is: " << esd.Output();
    auto c = Client::Connect(esd.rpc_address());

    uint64_t count = 0;
    EXPECT_EQ(DigestOverRpc(*c, &count), manifest.digest) << "an event reads back over RPC other than it was written";
    EXPECT_EQ(count, manifest.events);

    std::map<std::string, std::set<std::string>> by_customer;
    for (const auto& o : manifest.orders) {
      SCOPED_TRACE(o.id);
      by_customer[o.customer].insert(o.id);
      auto got = c->GetOrder(o.id, last);
      ASSERT_FALSE(got.timed_out);
      ASSERT_TRUE(got.order.has_value());
      EXPECT_EQ(got.order->customer_id, o.customer);
      EXPECT_EQ(got.order->status, o.status);
      EXPECT_EQ(got.order->total_cents, o.total_cents);
      EXPECT_EQ(got.order->lines.size(), o.lines);
    }
    for (const auto& [customer, ids] : by_customer) {
      auto page = c->ListOrders(customer, "", 100, "", last);
      ASSERT_FALSE(page.timed_out);
      std::set<std::string> listed;
      for (const auto& o : page.orders) listed.insert(o.order_id);
      EXPECT_EQ(listed, ids) << customer;
    }

    // Commands load golden orders (from their aggregate snapshots where they have one) and
    // go on from their versions.
    auto history = c->History("o-1005");
    ASSERT_FALSE(history.empty());
    auto cancelled = c->CancelOrder("o-1005", "after the format change");
    ASSERT_TRUE(cancelled.ok()) << cancelled.message;
    EXPECT_EQ(cancelled.version, history.size());
    EXPECT_EQ(cancelled.position, manifest.events);
    auto added = c->AddItem("o-1004", "golden-sku", 2, 250);
    ASSERT_TRUE(added.ok()) << added.message;
    EXPECT_EQ(added.version, 1u);
    auto now = c->GetOrder("o-1004", added.position);
    ASSERT_TRUE(now.order.has_value());
    EXPECT_EQ(now.order->total_cents, 500);
    EXPECT_EQ(c->GetOrder("o-1005", added.position).order->status, "cancelled");
    const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
    EXPECT_NE(metrics.find("\nesd_snapshot_load_failures_total 0\n"), std::string::npos) << metrics;

    const Result online = RunEsctl({"--connect", esd.rpc_address(), "verify"});
    EXPECT_EQ(online.code, 0) << online.out << online.err;
    EXPECT_NE(online.out.find("clean: "), std::string::npos) << online.out;
    EXPECT_EQ(online.out.find("note: "), std::string::npos) << online.out;
    EXPECT_EQ(esd.Stop(SIGTERM), 0) << esd.Output();
  }
  const Result offline = RunEsctl({"--data-dir", data.string(), "verify"});
  EXPECT_EQ(offline.code, 0) << offline.out << offline.err;
  EXPECT_NE(offline.out.find("clean: "), std::string::npos) << offline.out;
  EXPECT_NE(offline.out.find(std::to_string(manifest.events + 2) + " events"), std::string::npos) << offline.out;
  EXPECT_EQ(offline.out.find("note: "), std::string::npos) << offline.out;
}

}  // namespace
}  // namespace esd
