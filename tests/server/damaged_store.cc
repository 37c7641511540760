#include "server/damaged_store.h"

#include <cstring>
#include <stdexcept>

#include "domain/order_commands.h"
#include "storage/format.h"
#include "storage/store.h"
#include "storage/test_util.h"

namespace esd::testing {

namespace {

using storage::testing::BatchOffsets;
using storage::testing::ReadFileBytes;
using storage::testing::SegmentFiles;

void Check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("MakeDamagedStore: " + what);
}

void Command(domain::OrderCommands& orders, const domain::OrderCommand& command, const std::string& id,
             uint64_t* position = nullptr) {
  auto outcome = orders.Execute(command, {id, "", "test"});
  auto* accepted = std::get_if<domain::OrderCommands::Accepted>(&outcome);
  Check(accepted != nullptr, "order command " + id + " was not accepted");
  if (position != nullptr) *position = accepted->position;
}

}  // namespace

std::string DamagedStore::Place() const {
  return damaged_file + " offset " + std::to_string(damaged_offset) + " (position " + std::to_string(damaged_position) +
         ")";
}

DamagedStore MakeDamagedStore(const std::filesystem::path& data_dir) {
  DamagedStore d;
  std::vector<uint64_t> order_positions;  // of o-damaged's events
  {
    auto store = storage::Store::Open(data_dir, storage::testing::SmallOptions()).value();
    domain::OrderCommands::Options options;
    options.snapshot_every = 0;  // every load reads the stream
    domain::OrderCommands orders(*store, options);
    uint64_t position = 0;
    Command(orders, domain::CreateOrder{"o-damaged", "carol"}, "create-damaged", &position);
    order_positions.push_back(position);
    for (uint64_t i = 0; i < 300; ++i) {
      Check(store->AppendSync("victim", storage::ExpectedVersion::Any(),
                              storage::testing::MakeEvents("victim", i, 1, 0, 400)).ok(), "victim append");
      if (i % 20 == 10) {
        Command(orders, domain::AddItem{"o-damaged", "sku-" + std::to_string(i), 1, 100}, "add-" + std::to_string(i),
                &position);
        order_positions.push_back(position);
      }
    }
    for (uint64_t i = 0; i < 20; ++i) {
      Check(store->AppendSync("intact", storage::ExpectedVersion::Any(),
                              storage::testing::MakeEvents("intact", i, 1, 0, 100)).ok(), "intact append");
    }
    d.intact_events = 20;
    Command(orders, domain::CreateOrder{"o-intact", "dave"}, "create-intact");
    Command(orders, domain::AddItem{"o-intact", "pear", 2, 80}, "add-intact", &d.intact_order_position);
    d.events = store->DurablePosition().value;
  }
  const auto segments = SegmentFiles(data_dir);
  Check(segments.size() >= 3, "expected at least 3 segments, got " + std::to_string(segments.size()));
  // The second segment is sealed (it is not the last); flip a batch of o-damaged in it that
  // has batches of its segment before it.
  const auto& seg = segments[1];
  const auto bytes = ReadFileBytes(seg);
  const auto offsets = BatchOffsets(seg);
  for (size_t i = 1; i < offsets.size() && d.damaged_offset == 0; ++i) {
    storage::format::BatchHeader h;
    std::memcpy(&h, bytes.data() + offsets[i], sizeof(h));
    for (uint64_t p : order_positions) {
      if (p == h.first_position) {
        d.damaged_offset = offsets[i];
        d.damaged_position = p;
        storage::testing::FlipByte(seg, offsets[i] + h.batch_size / 2);
        break;
      }
    }
  }
  Check(d.damaged_offset != 0, "no batch of o-damaged in " + seg.string());
  d.damaged_file = "segments/" + seg.filename().string();
  // The stream "intact" (the last events but o-intact's two) must lie past the damaged segment.
  storage::format::BatchHeader third;
  std::memcpy(&third, ReadFileBytes(segments[2]).data() + BatchOffsets(segments[2]).front(), sizeof(third));
  Check(third.first_position <= d.events - d.intact_events - 2, "the stream intact must lie past " + seg.string());
  return d;
}

void MakeStoreWithForeignOrderEvent(const std::filesystem::path& data_dir) {
  auto store = storage::Store::Open(data_dir, storage::testing::SmallOptions()).value();
  storage::EventData e{storage::EventId::Random(), "OrderCreated", "application/json", "", R"({"customer":"c-1"})"};
  if (!store->AppendSync("order-1", storage::ExpectedVersion::NoStream(), {e}).ok()) {
    throw std::runtime_error("MakeStoreWithForeignOrderEvent: the append failed");
  }
}

}  // namespace esd::testing
