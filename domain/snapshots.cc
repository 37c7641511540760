#include "domain/snapshots.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "domain/order_commands.h"
#include "protocol/orders.capnp.h"
#include "storage/file.h"

namespace esd::domain {

namespace {

constexpr uint64_t kMagic = 0x3150414e53445345ull;  // "ESDSNAP1"
constexpr size_t kHeaderSize = 48;

struct Header {
  uint64_t magic;
  uint32_t format_version;
  uint32_t header_size;
  uint64_t stream_version;
  uint64_t body_size;
  uint64_t body_checksum;
  uint64_t header_checksum;  // of the 40 bytes before it
};
static_assert(sizeof(Header) == kHeaderSize);

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

}  // namespace

OrderSnapshots::OrderSnapshots(const std::filesystem::path& data_dir) : dir_(data_dir / "snapshots" / "orders") {}

std::filesystem::path OrderSnapshots::PathOf(const std::string& stream) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.snap",
                static_cast<unsigned long long>(XXH3_64bits(stream.data(), stream.size())));
  return dir_ / name;
}

storage::Status OrderSnapshots::Save(const std::string& stream, const OrderState& s) const {
  if (!s.version) return storage::Status::InvalidArgument("an order without events has no snapshot");
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<orders::OrderSnapshot>();
  b.setOrderId(s.order_id);
  b.setCustomerId(s.customer_id);
  b.setStatus(static_cast<orders::OrderSnapshot::Status>(s.status));
  auto lines = b.initLines(s.lines.size());
  for (size_t i = 0; i < s.lines.size(); ++i) {
    lines[i].setSku(s.lines[i].sku);
    lines[i].setQuantity(s.lines[i].quantity);
    lines[i].setUnitPriceCents(s.lines[i].unit_price_cents);
  }
  b.setTotalCents(s.total_cents);
  b.setVersion(*s.version);
  b.setLastPosition(s.last_position);
  b.setCreatedAt(s.created_at);
  b.setPlacedAt(s.placed_at);
  b.setCancelledAt(s.cancelled_at);
  b.setCancelReason(s.cancel_reason);
  auto cmds = b.initRecentCommands(s.recent_commands.size());
  for (size_t i = 0; i < s.recent_commands.size(); ++i) {
    const AppliedCommand& c = s.recent_commands[i];
    cmds[i].setCommandId(c.command_id);
    cmds[i].setFirstVersion(c.first_version);
    cmds[i].setLastVersion(c.last_version);
    cmds[i].setLastPosition(c.last_position);
  }
  auto body = capnp::messageToFlatArray(message);
  auto bytes = body.asBytes();
  Header h{kMagic, kSnapshotFormatVersion, kHeaderSize, *s.version, bytes.size(),
           XXH3_64bits(bytes.begin(), bytes.size()), 0};
  h.header_checksum = XXH3_64bits(&h, offsetof(Header, header_checksum));
  std::vector<uint8_t> file(kHeaderSize + bytes.size());
  std::memcpy(file.data(), &h, kHeaderSize);
  std::memcpy(file.data() + kHeaderSize, bytes.begin(), bytes.size());
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return storage::Status::IOError("create " + dir_.string() + ": " + ec.message());
  return storage::WriteFileAtomically(PathOf(stream), file);
}

std::optional<OrderState> OrderSnapshots::Load(const std::string& stream) const {
  std::ifstream f(PathOf(stream), std::ios::binary);
  if (!f) return std::nullopt;
  const std::string file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (file.size() < kHeaderSize) return std::nullopt;
  Header h;
  std::memcpy(&h, file.data(), kHeaderSize);
  if (h.magic != kMagic || h.header_checksum != XXH3_64bits(&h, offsetof(Header, header_checksum)) ||
      h.format_version != kSnapshotFormatVersion || h.header_size != kHeaderSize ||
      h.body_size != file.size() - kHeaderSize || h.body_size % sizeof(capnp::word) != 0 ||
      h.body_checksum != XXH3_64bits(file.data() + kHeaderSize, h.body_size)) {
    return std::nullopt;
  }
  auto words = kj::heapArray<capnp::word>(h.body_size / sizeof(capnp::word));
  std::memcpy(words.begin(), file.data() + kHeaderSize, h.body_size);
  std::optional<OrderState> out;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words);
    auto r = reader.getRoot<orders::OrderSnapshot>();
    OrderState s;
    s.order_id = Str(r.getOrderId());
    s.customer_id = Str(r.getCustomerId());
    const auto status = static_cast<uint16_t>(r.getStatus());
    if (status > static_cast<uint16_t>(OrderStatus::kCancelled)) return;
    s.status = static_cast<OrderStatus>(status);
    for (auto l : r.getLines()) s.lines.push_back({Str(l.getSku()), l.getQuantity(), l.getUnitPriceCents()});
    s.total_cents = r.getTotalCents();
    s.version = r.getVersion();
    s.last_position = r.getLastPosition();
    s.created_at = r.getCreatedAt();
    s.placed_at = r.getPlacedAt();
    s.cancelled_at = r.getCancelledAt();
    s.cancel_reason = Str(r.getCancelReason());
    for (auto c : r.getRecentCommands()) {
      s.recent_commands.push_back({Str(c.getCommandId()), c.getFirstVersion(), c.getLastVersion(), c.getLastPosition()});
    }
    if (s.version == h.stream_version && OrderStream(s.order_id) == stream) out = std::move(s);
  })) {
    return std::nullopt;
  }
  return out;
}

}  // namespace esd::domain
