// Aggregate snapshots of orders: DATA/snapshots/orders/<xxh3 of the stream, hex>.snap,
// written atomically (tmp + fdatasync + rename + fsync(dir)).
//
//   +--------------------------------------------+----------------------------------+
//   | header (48 bytes)                          | OrderSnapshot (protocol/         |
//   | u64 magic "ESDSNAP1", u32 format version,  |  orders.capnp), a flat message   |
//   | u32 header size, u64 stream version,       |                                  |
//   | u64 body size, u64 xxh3(body), u64 xxh3(header[0,40))                         |
//   +--------------------------------------------+----------------------------------+
//
// A snapshot whose checksums fail, or of another format version, is ignored: loading then
// reads the whole stream, and the next snapshot replaces it. Never misread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "domain/order.h"
#include "storage/status.h"

namespace esd::domain {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

class OrderSnapshots {
 public:
  // `data_dir` is the store's directory; snapshots go under data_dir/snapshots/orders.
  explicit OrderSnapshots(const std::filesystem::path& data_dir);

  storage::Status Save(const std::string& stream, const OrderState& state) const;
  // nullopt: none, or one that must not be used (damaged, other format, other stream).
  std::optional<OrderState> Load(const std::string& stream) const;
  std::filesystem::path PathOf(const std::string& stream) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace esd::domain
