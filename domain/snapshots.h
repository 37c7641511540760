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
#include <vector>

#include "domain/order.h"
#include "storage/status.h"

namespace esd::domain {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

// The file format above, for any body: written atomically, read back only when both
// checksums hold and the format version is this one.
storage::Status WriteSnapshotFile(const std::filesystem::path& path, uint64_t version, const std::string& body);
struct SnapshotFile {
  uint64_t version = 0;
  std::string body;  // whole 8-byte words
};
std::optional<SnapshotFile> ReadSnapshotFile(const std::filesystem::path& path);

// A projection's orders and checkpoint to and from bytes (a ProjectionSnapshot message,
// whole words); nullopt when the bytes do not decode.
struct ProjectionState {
  uint64_t checkpoint = 0;
  std::vector<OrderState> orders;
};
std::string EncodeProjection(uint64_t checkpoint, const std::vector<const OrderState*>& orders);
// The order in an order snapshot's body (SnapshotFile::body); nullopt when it does not decode.
std::optional<OrderState> DecodeOrderSnapshot(const std::string& body);
std::optional<ProjectionState> DecodeProjection(const std::string& bytes);

// Every snapshot file under data_dir/snapshots, and whether it verifies (checksums and
// format version). Paths relative to data_dir.
struct SnapshotCheck {
  std::string file;
  bool ok = false;
};
std::vector<SnapshotCheck> CheckSnapshots(const std::filesystem::path& data_dir);

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
