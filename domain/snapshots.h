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

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
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
// The same checks on a whole file's bytes already in memory (e.g. sent over RPC).
std::optional<SnapshotFile> ParseSnapshotFile(std::string_view file);

// DATA/snapshots/projections/orders.snap: where the order projection keeps its snapshot.
std::filesystem::path ProjectionSnapshotPath(const std::filesystem::path& data_dir);

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

// What a snapshot file holds, for listing and verifying: DATA/snapshots/orders/*.snap
// (aggregates) and DATA/snapshots/projections/*.snap.
struct SnapshotEntry {
  enum class Kind { kOrder, kProjection };
  std::string file;        // relative to the data directory
  uint64_t bytes = 0;
  bool ok = false;         // checksums, format version and body hold (and, for an order, the
                           // file is the one its stream's snapshot belongs in)
  Kind kind = Kind::kOrder;
  std::string name;        // kOrder: the stream ("" unless ok); kProjection: its name ("orders")
  uint64_t version = 0;    // kOrder: the stream version it covers; kProjection: the checkpoint
  uint64_t orders = 0;     // kProjection: orders in it
};
// One file, as listed below; `path` lies under data_dir/snapshots.
SnapshotEntry InspectSnapshot(const std::filesystem::path& data_dir, const std::filesystem::path& path);
// The store's snapshot files in file name order: those whose name (SnapshotEntry::file)
// sorts after `after`, at most `limit` of them. Only those are read.
std::vector<SnapshotEntry> ListSnapshots(const std::filesystem::path& data_dir, std::string_view after = "",
                                         size_t limit = SIZE_MAX);

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
