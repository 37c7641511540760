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
//
// Snapshots and the log. A snapshot covers only events that are on disk: with
// Durability::kInterval or kNever the log reaches the disk after readers see it, and a
// snapshot written first would outlive, at a power loss, the events it covers. So every
// save syncs the log through the snapshot's last event first (SyncLogThrough), and fails
// without writing when that fails. And a snapshot is used only while the log still holds
// the event it ends with, at the same position with the same commit time
// (OrderSnapshotMismatch, ProjectionSnapshotMismatch): one that is ahead of the log (a store
// restored from an older copy, a log whose end was lost or salvaged away), or whose last
// version is now another event (the log lost its end and grew again), is ignored as if
// absent, with the reason told to the caller.
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
#include "storage/store.h"

namespace esd::domain {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

// The file format above, for any body: written atomically, read back only when both
// checksums hold and the format version is this one.
storage::Status WriteSnapshotFile(const std::filesystem::path& path, uint64_t version, const std::string& body);
struct SnapshotFile {
  uint64_t version = 0;
  std::string body;  // whole 8-byte words
};
// nullopt when there is no file (`why`, if given, is then "") or it is not one to use
// (`why` says which check failed, for the operator: unreadable, header damaged, other
// format version, cut short, body damaged).
std::optional<SnapshotFile> ReadSnapshotFile(const std::filesystem::path& path, std::string* why = nullptr);
// The same checks on a whole file's bytes already in memory (e.g. sent over RPC).
std::optional<SnapshotFile> ParseSnapshotFile(std::string_view file, std::string* why = nullptr);

// Makes the events before position `end` of `store` be on disk: Store::Sync when
// SyncedPosition() has not reached `end` yet. Fails (and nothing may be written) when the
// sync fails or `end` is past what the log holds. Blocks for one fdatasync when it syncs:
// not from an append callback.
storage::Status SyncLogThrough(storage::Store& store, uint64_t end);

// Why a snapshot must not be used with `store`'s log, or "" when it may: the log must hold
// the event the snapshot ends with, at the same place and with the same commit time. For an
// order's snapshot (of `stream`) that is the stream's event at state.version; for the
// projection's, the event before `checkpoint` (none for checkpoint 0); when that event was
// removed (a delete, a truncation, an expiry: storage/lifecycle.h), the next event the log
// holds must be no older than `last_timestamp`. O(log events + removed events passed).
std::string OrderSnapshotMismatch(const storage::Store& store, const std::string& stream, const OrderState& state);
std::string ProjectionSnapshotMismatch(const storage::Store& store, uint64_t checkpoint, uint64_t last_timestamp);

// DATA/snapshots/projections/orders.snap: where the order projection keeps its snapshot.
std::filesystem::path ProjectionSnapshotPath(const std::filesystem::path& data_dir);

// A projection's orders and checkpoint to and from bytes (a ProjectionSnapshot message,
// whole words); nullopt when the bytes do not decode, with `why` (if given) saying what
// capnp found. A body decodes at any size: its checksum vouches for it, so capnp's default
// read limit (64 MiB, against hostile messages) is lifted to the body's own size.
struct ProjectionState {
  uint64_t checkpoint = 0;
  uint64_t last_timestamp = 0;  // commit time of the event at checkpoint - 1
  std::vector<OrderState> orders;
};
std::string EncodeProjection(uint64_t checkpoint, uint64_t last_timestamp, const std::vector<const OrderState*>& orders);
// An order snapshot's body (SnapshotFile::body) to and from its state; nullopt when it does
// not decode.
std::string EncodeOrderSnapshot(const OrderState& state);
std::optional<OrderState> DecodeOrderSnapshot(const std::string& body, std::string* why = nullptr);
std::optional<ProjectionState> DecodeProjection(const std::string& bytes, std::string* why = nullptr);

// What a snapshot file holds, for listing and verifying: DATA/snapshots/orders/*.snap
// (aggregates) and DATA/snapshots/projections/*.snap.
struct SnapshotEntry {
  enum class Kind { kOrder, kProjection };
  std::string file;        // relative to the data directory
  uint64_t bytes = 0;
  bool ok = false;         // it would be loaded: checksums, format version and body hold, for
                           // an order the file is the one its stream's snapshot belongs in,
                           // and (when judged against a log) the log holds what it covers
  std::string problem;     // why not, when !ok
  Kind kind = Kind::kOrder;
  std::string name;        // kOrder: the stream ("" unless the file holds, on its own);
                           // kProjection: its name ("orders")
  uint64_t version = 0;    // kOrder: the stream version it covers; kProjection: the checkpoint
  uint64_t orders = 0;     // kProjection: orders in it
};
// One file, as listed below; `path` lies under data_dir/snapshots. With `log` (the store of
// data_dir, open), a snapshot the log does not hold what it covers of is not ok either.
SnapshotEntry InspectSnapshot(const std::filesystem::path& data_dir, const std::filesystem::path& path,
                              const storage::Store* log = nullptr);
// The same for a file's bytes already read (`bytes`, from `path`).
SnapshotEntry InspectSnapshotBytes(const std::filesystem::path& data_dir, const std::filesystem::path& path,
                                   std::string_view bytes, const storage::Store* log = nullptr);
// The store's snapshot files in file name order: those whose name (SnapshotEntry::file)
// sorts after `after`, at most `limit` of them. Only those are read. `log` as above.
std::vector<SnapshotEntry> ListSnapshots(const std::filesystem::path& data_dir, std::string_view after = "",
                                         size_t limit = SIZE_MAX, const storage::Store* log = nullptr);

class OrderSnapshots {
 public:
  // `data_dir` is the store's directory; snapshots go under data_dir/snapshots/orders.
  explicit OrderSnapshots(const std::filesystem::path& data_dir);

  // Syncs `log` through the state's last event (SyncLogThrough), then writes the snapshot.
  // Writes nothing (kInvalidArgument) for a stream that has metadata (deleted, truncated,
  // expiring: StreamInfo::has_metadata): such an order is always loaded from its events, and
  // a snapshot of a deleted one would keep what was erased.
  storage::Status Save(storage::Store& log, const std::string& stream, const OrderState& state) const;
  // Removes the stream's snapshot file and a leftover "<file>.tmp" of an interrupted write;
  // a file that is not there is no failure. SyncDirectory makes removals durable.
  storage::Status Remove(const std::string& stream) const;
  storage::Status SyncDirectory() const;
  // nullopt: none, or one that must not be used (damaged, other format, other stream; with
  // `log`, one the log does not hold the end of). `ignored` (if given) gets why a file that
  // is there is not used, or "".
  std::optional<OrderState> Load(const std::string& stream, const storage::Store* log = nullptr,
                                 std::string* ignored = nullptr) const;
  std::filesystem::path PathOf(const std::string& stream) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace esd::domain
