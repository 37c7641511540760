#include "domain/snapshots.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <fstream>

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

void Fill(orders::OrderSnapshot::Builder b, const OrderState& s) {
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
  b.setVersion(s.version.value_or(0));
  b.setLastPosition(s.last_position);
  b.setCreatedAt(s.created_at);
  b.setPlacedAt(s.placed_at);
  b.setCancelledAt(s.cancelled_at);
  b.setCancelReason(s.cancel_reason);
  b.setLastTimestamp(s.last_timestamp);
  auto cmds = b.initRecentCommands(s.recent_commands.size());
  for (size_t i = 0; i < s.recent_commands.size(); ++i) {
    const AppliedCommand& c = s.recent_commands[i];
    cmds[i].setCommandId(c.command_id);
    cmds[i].setFirstVersion(c.first_version);
    cmds[i].setLastVersion(c.last_version);
    cmds[i].setLastPosition(c.last_position);
    cmds[i].setFingerprint(c.fingerprint);
  }
}

std::optional<OrderState> Read(orders::OrderSnapshot::Reader r) {
  OrderState s;
  s.order_id = Str(r.getOrderId());
  s.customer_id = Str(r.getCustomerId());
  const auto status = static_cast<uint16_t>(r.getStatus());
  if (status > static_cast<uint16_t>(OrderStatus::kCancelled)) return std::nullopt;
  s.status = static_cast<OrderStatus>(status);
  for (auto l : r.getLines()) s.lines.push_back({Str(l.getSku()), l.getQuantity(), l.getUnitPriceCents()});
  s.total_cents = r.getTotalCents();
  s.version = r.getVersion();
  s.last_position = r.getLastPosition();
  s.created_at = r.getCreatedAt();
  s.placed_at = r.getPlacedAt();
  s.cancelled_at = r.getCancelledAt();
  s.cancel_reason = Str(r.getCancelReason());
  s.last_timestamp = r.getLastTimestamp();
  for (auto c : r.getRecentCommands()) {
    s.recent_commands.push_back(
        {Str(c.getCommandId()), c.getFirstVersion(), c.getLastVersion(), c.getLastPosition(), c.getFingerprint()});
  }
  return s;
}

std::string Flatten(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  return std::string(reinterpret_cast<const char*>(words.asBytes().begin()), words.asBytes().size());
}

// Runs `read` over `body` as a message; false when it does not decode, with `why` (if
// given) saying what capnp found.
template <typename F>
bool ReadMessage(const std::string& body, std::string* why, F&& read) {
  if (body.size() % sizeof(capnp::word) != 0) {
    if (why != nullptr) *why = "its body does not decode: not a whole number of 8-byte words";
    return false;
  }
  // In place when the bytes are word-aligned (a string's heap buffer is); a copy otherwise.
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(body.data()),
                                        body.size() / sizeof(capnp::word));
  if (reinterpret_cast<uintptr_t>(body.data()) % alignof(capnp::word) != 0) {
    copy = kj::heapArray<capnp::word>(words.size());
    std::memcpy(copy.begin(), body.data(), body.size());
    words = copy;
  }
  // capnp stops reading after 64 MiB by default, a guard against messages from strangers
  // that point at the same bytes over and over. The body is our own, vouched for by its
  // checksum, and may be larger (a projection of ~110,000 orders is): allow the words it
  // has, twice over so that a decoder reading a list twice still fits.
  capnp::ReaderOptions options;
  options.traversalLimitInWords = std::max<uint64_t>(options.traversalLimitInWords, 2 * words.size());
  bool ok = false;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words, options);
    ok = read(reader);
  })) {
    if (why != nullptr) *why = std::string("its body does not decode: ") + e->getDescription().cStr();
    return false;
  }
  if (!ok && why != nullptr) *why = "its body does not decode: a field holds a value no esd writes";
  return ok;
}

// The whole file, or nullopt: `why` is "" when there is no such file, else why it cannot be
// read.
std::optional<std::string> ReadWholeFile(const std::filesystem::path& path, std::string* why) {
  why->clear();
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    const int err = errno;
    std::error_code ec;
    if (std::filesystem::exists(path, ec) || ec) *why = std::string("it cannot be read: ") + std::strerror(err);
    return std::nullopt;
  }
  std::string bytes(static_cast<size_t>(f.tellg()), '\0');
  f.seekg(0);
  if (!f.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    *why = std::string("it cannot be read: ") + std::strerror(errno);
    return std::nullopt;
  }
  return bytes;
}

std::string Num(uint64_t v) { return std::to_string(v); }

// Why a body that decodes is not the snapshot its header says, or "".
std::string VersionProblem(uint64_t body_version, uint64_t header_version) {
  if (body_version == header_version) return "";
  return "its body covers version " + Num(body_version) + " but its header says " + Num(header_version);
}

// Why `file` (read from `path`) is not an order snapshot that Load would use, or "".
std::string OrderFileProblem(const std::filesystem::path& data_dir, const std::filesystem::path& path,
                             const SnapshotFile& file, std::optional<OrderState>* state) {
  std::string why;
  *state = DecodeOrderSnapshot(file.body, &why);
  if (!*state) return why;
  if (why = VersionProblem((*state)->version.value_or(0), file.version); !why.empty()) return why;
  // Load uses a snapshot only in the file its stream names: one elsewhere is never read.
  if (OrderSnapshots(data_dir).PathOf(OrderStream((*state)->order_id)) != path) {
    return "holds the snapshot of " + OrderStream((*state)->order_id) + ", which belongs in another file";
  }
  return "";
}

}  // namespace

storage::Status SyncLogThrough(storage::Store& store, uint64_t end) {
  if (store.SyncedPosition().value >= end) return storage::Status::Ok();
  if (end > store.DurablePosition().value) {
    return storage::Status::InvalidArgument("a snapshot may not cover position " + Num(end - 1) +
                                            ": the log ends at " + Num(store.DurablePosition().value));
  }
  if (auto s = store.Sync(); !s.ok()) {
    std::string why = "the log could not be synced through position " + Num(end - 1) +
                      ", so no snapshot of it was written: " + s.message();
    switch (s.code()) {  // the same kind of failure, with what it means here
      case storage::Status::Code::kOutOfSpace: return storage::Status::OutOfSpace(std::move(why));
      case storage::Status::Code::kClosed: return storage::Status::Closed(std::move(why));
      default: return storage::Status::IOError(std::move(why));
    }
  }
  if (store.SyncedPosition().value < end) {  // Sync's contract says it cannot happen
    return storage::Status::IOError("the log is not on disk through position " + Num(end - 1) +
                                    " after a sync, so no snapshot of it was written");
  }
  return storage::Status::Ok();
}

std::string OrderSnapshotMismatch(const storage::Store& store, const std::string& stream, const OrderState& state) {
  const uint64_t version = state.version.value_or(0);
  const std::string covers = "it covers " + stream + " up to version " + Num(version);
  const auto info = store.GetStreamInfo(stream);
  if (!info || info->last_version.value < version) {
    return covers + ", but the log holds " +
           (info ? "it up to version " + Num(info->last_version.value) : std::string("no event of it")) +
           ": the snapshot is ahead of the log";
  }
  if (state.last_timestamp == 0) {
    return covers + ", but it does not record when its last event was committed (an older esd wrote it), so "
                    "it cannot be checked against the log";
  }
  auto at = store.ReadStream(stream, storage::StreamVersion(version), 1);
  if (!at.ok() || at->empty() || (*at)[0].version.value != version) {
    return covers + ", but reading that version from the log failed: " +
           (at.ok() ? std::string("no event there") : at.status().ToString());
  }
  const storage::EventView& e = (*at)[0];
  if (e.position.value != state.last_position || e.timestamp != state.last_timestamp) {
    return covers + " (position " + Num(state.last_position) + ", committed at " + Num(state.last_timestamp) +
           " us), but that version in the log is another event (position " + Num(e.position.value) +
           ", committed at " + Num(e.timestamp) + " us): the log lost the snapshot's events and grew again";
  }
  return "";
}

std::string ProjectionSnapshotMismatch(const storage::Store& store, uint64_t checkpoint, uint64_t last_timestamp) {
  if (checkpoint == 0) return "";
  const uint64_t end = store.DurablePosition().value;
  const std::string covers = "it covers $all up to position " + Num(checkpoint - 1);
  if (checkpoint > end) {
    return covers + ", but the log ends at position " + Num(end) + ": the snapshot is ahead of the log";
  }
  if (last_timestamp == 0) {
    return covers + ", but it does not record when its last event was committed (an older esd wrote it), so "
                    "it cannot be checked against the log";
  }
  uint64_t found = 0;
  std::optional<uint64_t> at;
  auto n = store.ReadAll(storage::GlobalPosition(checkpoint - 1), 1, [&](const storage::EventView& e) {
    found = e.timestamp;
    at = e.position.value;
    return false;
  });
  if (n.ok() && at.value_or(UINT64_MAX) > checkpoint - 1) {
    // Removed since (deleted, truncated, expired: storage/lifecycle.h; ReadAll passes such
    // positions), or passed as removed when the snapshot was taken: nothing is there to
    // compare. The log still reaches past it (above), and what follows is no older than the
    // snapshot's last event, as along any log that did not lose its end.
    if (!at || found >= last_timestamp) return "";
    return covers + " (committed at " + Num(last_timestamp) + " us); the event there was removed, and the next " +
           "one in the log, at position " + Num(*at) + ", was committed earlier, at " + Num(found) +
           " us: the log lost the snapshot's events and grew again";
  }
  if (!n.ok() || at != checkpoint - 1) {
    return covers + ", but reading that position from the log failed: " +
           (n.ok() ? std::string("no event there") : n.status().ToString());
  }
  if (found != last_timestamp) {
    return covers + " (committed at " + Num(last_timestamp) + " us), but the event there in the log was committed at " +
           Num(found) + " us: the log lost the snapshot's events and grew again";
  }
  return "";
}

OrderSnapshots::OrderSnapshots(const std::filesystem::path& data_dir) : dir_(data_dir / "snapshots" / "orders") {}

std::filesystem::path OrderSnapshots::PathOf(const std::string& stream) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.snap",
                static_cast<unsigned long long>(XXH3_64bits(stream.data(), stream.size())));
  return dir_ / name;
}

storage::Status WriteSnapshotFile(const std::filesystem::path& path, uint64_t version, const std::string& body) {
  Header h{kMagic, kSnapshotFormatVersion, kHeaderSize, version, body.size(), XXH3_64bits(body.data(), body.size()), 0};
  h.header_checksum = XXH3_64bits(&h, offsetof(Header, header_checksum));
  std::vector<uint8_t> file(kHeaderSize + body.size());
  std::memcpy(file.data(), &h, kHeaderSize);
  if (!body.empty()) std::memcpy(file.data() + kHeaderSize, body.data(), body.size());
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return storage::Status::IOError("create " + path.parent_path().string() + ": " + ec.message());
  return storage::WriteFileAtomically(path, file);
}

namespace {

// The file's header when every check of ParseSnapshotFile holds; else nullopt and why not.
std::optional<Header> CheckSnapshotFile(std::string_view file, std::string& reason) {
  reason.clear();
  Header h{};
  if (file.size() >= kHeaderSize) std::memcpy(&h, file.data(), kHeaderSize);
  if (file.size() < kHeaderSize || h.magic != kMagic) {
    reason = "it is not a snapshot file (no " + Num(kHeaderSize) + "-byte ESDSNAP1 header)";
  } else if (h.header_checksum != XXH3_64bits(&h, offsetof(Header, header_checksum))) {
    reason = "its header is damaged (checksum mismatch)";
  } else if (h.format_version != kSnapshotFormatVersion || h.header_size != kHeaderSize) {
    reason = "it is of format version " + Num(h.format_version) + "; this esd reads version " +
             Num(kSnapshotFormatVersion);
  } else if (h.body_size != file.size() - kHeaderSize) {
    reason = "its body is " + Num(file.size() - kHeaderSize) + " bytes but its header says " + Num(h.body_size) +
             ": cut short or appended to";
  } else if (h.body_size % sizeof(capnp::word) != 0) {
    reason = "its header says the body is " + Num(h.body_size) + " bytes, not whole 8-byte words";
  } else if (h.body_checksum != XXH3_64bits(file.data() + kHeaderSize, h.body_size)) {
    reason = "its body is damaged (checksum mismatch)";
  } else {
    return h;
  }
  return std::nullopt;
}

}  // namespace

std::optional<SnapshotFile> ReadSnapshotFile(const std::filesystem::path& path, std::string* why) {
  std::string local;
  std::string& reason = why != nullptr ? *why : local;
  auto file = ReadWholeFile(path, &reason);
  if (!file) return std::nullopt;
  const auto header = CheckSnapshotFile(*file, reason);
  if (!header) return std::nullopt;
  file->erase(0, kHeaderSize);  // in place: a projection's body may be hundreds of MiB
  return SnapshotFile{header->stream_version, std::move(*file)};
}

std::optional<SnapshotFile> ParseSnapshotFile(std::string_view file, std::string* why) {
  std::string local;
  const auto header = CheckSnapshotFile(file, why != nullptr ? *why : local);
  if (!header) return std::nullopt;
  return SnapshotFile{header->stream_version, std::string(file.substr(kHeaderSize))};
}

std::filesystem::path ProjectionSnapshotPath(const std::filesystem::path& data_dir) {
  return data_dir / "snapshots" / "projections" / "orders.snap";
}

std::string EncodeProjection(uint64_t checkpoint, uint64_t last_timestamp, const std::vector<const OrderState*>& states) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<orders::ProjectionSnapshot>();
  b.setCheckpoint(checkpoint);
  b.setLastTimestamp(last_timestamp);
  auto list = b.initOrders(states.size());
  for (size_t i = 0; i < states.size(); ++i) Fill(list[i], *states[i]);
  return Flatten(message);
}

std::optional<ProjectionState> DecodeProjection(const std::string& bytes, std::string* why) {
  ProjectionState out;
  const bool ok = ReadMessage(bytes, why, [&](capnp::MessageReader& reader) {
    auto r = reader.getRoot<orders::ProjectionSnapshot>();
    out.checkpoint = r.getCheckpoint();
    out.last_timestamp = r.getLastTimestamp();
    for (auto o : r.getOrders()) {
      auto s = Read(o);
      if (!s) return false;
      out.orders.push_back(std::move(*s));
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return out;
}

std::string EncodeOrderSnapshot(const OrderState& state) {
  capnp::MallocMessageBuilder message;
  Fill(message.initRoot<orders::OrderSnapshot>(), state);
  return Flatten(message);
}

std::optional<OrderState> DecodeOrderSnapshot(const std::string& body, std::string* why) {
  std::optional<OrderState> out;
  ReadMessage(body, why, [&](capnp::MessageReader& reader) {
    out = Read(reader.getRoot<orders::OrderSnapshot>());
    return out.has_value();
  });
  return out;
}

SnapshotEntry InspectSnapshot(const std::filesystem::path& data_dir, const std::filesystem::path& path,
                              const storage::Store* log) {
  std::string why;
  const auto bytes = ReadWholeFile(path, &why);
  if (!bytes) {
    SnapshotEntry e = InspectSnapshotBytes(data_dir, path, "", log);
    e.problem = why.empty() ? "it was deleted while being read" : why;
    return e;
  }
  return InspectSnapshotBytes(data_dir, path, *bytes, log);
}

SnapshotEntry InspectSnapshotBytes(const std::filesystem::path& data_dir, const std::filesystem::path& path,
                                   std::string_view bytes, const storage::Store* log) {
  SnapshotEntry e;
  std::error_code ec;
  e.file = std::filesystem::relative(path, data_dir, ec).string();
  e.bytes = bytes.size();
  e.kind = path.parent_path().filename() == "projections" ? SnapshotEntry::Kind::kProjection : SnapshotEntry::Kind::kOrder;
  if (e.kind == SnapshotEntry::Kind::kProjection) e.name = path.stem().string();  // known from the file name
  const auto file = ParseSnapshotFile(bytes, &e.problem);
  if (!file) return e;
  if (e.kind == SnapshotEntry::Kind::kProjection) {
    const auto state = DecodeProjection(file->body, &e.problem);
    if (!state) return e;
    if (e.problem = VersionProblem(state->checkpoint, file->version); !e.problem.empty()) return e;
    e.version = state->checkpoint;
    e.orders = state->orders.size();
    e.problem = log != nullptr ? ProjectionSnapshotMismatch(*log, state->checkpoint, state->last_timestamp) : "";
  } else {
    std::optional<OrderState> state;
    e.problem = OrderFileProblem(data_dir, path, *file, &state);
    if (!e.problem.empty()) return e;
    e.name = OrderStream(state->order_id);
    e.version = file->version;
    if (log != nullptr) e.problem = OrderSnapshotMismatch(*log, e.name, *state);
  }
  e.ok = e.problem.empty();
  return e;
}

std::vector<SnapshotEntry> ListSnapshots(const std::filesystem::path& data_dir, std::string_view after,
                                         size_t limit, const storage::Store* log) {
  std::vector<std::pair<std::string, std::filesystem::path>> files;  // (relative name, path)
  for (const char* sub : {"orders", "projections"}) {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(data_dir / "snapshots" / sub, ec)) {
      if (f.path().extension() != ".snap") continue;
      std::string name = std::filesystem::relative(f.path(), data_dir, ec).string();
      if (name > after) files.emplace_back(std::move(name), f.path());
    }
  }
  const size_t n = std::min(limit, files.size());
  std::partial_sort(files.begin(), files.begin() + n, files.end());
  std::vector<SnapshotEntry> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(InspectSnapshot(data_dir, files[i].second, log));
  return out;
}

storage::Status OrderSnapshots::Save(storage::Store& log, const std::string& stream, const OrderState& s) const {
  if (!s.version) return storage::Status::InvalidArgument("an order without events has no snapshot");
  // Checked on the thread that writes, after the delete was acknowledged if it came first:
  // a snapshot of a deleted order is never written after ForgetOrders removed the last one.
  if (auto info = log.GetStreamInfo(stream); info && info->has_metadata) {
    return storage::Status::InvalidArgument("stream '" + stream +
                                            "' has metadata (it was deleted, truncated or expires): its order is "
                                            "always loaded from its events, never from a snapshot");
  }
  if (auto synced = SyncLogThrough(log, s.last_position + 1); !synced.ok()) return synced;
  return WriteSnapshotFile(PathOf(stream), *s.version, EncodeOrderSnapshot(s));
}

storage::Status OrderSnapshots::Remove(const std::string& stream) const {
  const std::filesystem::path path = PathOf(stream);
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  for (const auto& p : {path, tmp}) {
    std::error_code ec;
    std::filesystem::remove(p, ec);
    if (ec) return storage::Status::IOError("remove " + p.string() + ": " + ec.message());
  }
  return storage::Status::Ok();
}

storage::Status OrderSnapshots::SyncDirectory() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) return storage::Status::Ok();  // no snapshot was ever written
  return storage::SyncDirectory(dir_);
}

std::optional<OrderState> OrderSnapshots::Load(const std::string& stream, const storage::Store* log,
                                               std::string* ignored) const {
  std::string local;
  std::string& why = ignored != nullptr ? *ignored : local;
  why.clear();
  const auto path = PathOf(stream);
  auto file = ReadSnapshotFile(path, &why);
  if (!file) return std::nullopt;
  std::optional<OrderState> out = DecodeOrderSnapshot(file->body, &why);
  if (!out) return std::nullopt;
  why = VersionProblem(out->version.value_or(0), file->version);
  if (why.empty() && OrderStream(out->order_id) != stream) {
    why = "holds the snapshot of " + OrderStream(out->order_id) + ", not of " + stream;
  }
  if (why.empty() && log != nullptr) why = OrderSnapshotMismatch(*log, stream, *out);
  if (!why.empty()) return std::nullopt;
  return out;
}

}  // namespace esd::domain
