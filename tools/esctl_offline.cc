#include "tools/esctl_offline.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "domain/maintenance.h"
#include "domain/projections.h"
#include "domain/snapshots.h"
#include "tools/esctl_order.h"
#include "tools/esctl_output.h"
#include "tools/esctl_progress.h"
#include "tools/esctl_text.h"
#include "storage/file.h"
#include "storage/format.h"
#include "storage/segment.h"
#include "storage/store.h"
#include "storage/verify.h"

namespace esd::esctl {

namespace {

void Note(const std::string& s) { std::fprintf(stderr, "esctl: %s\n", s.c_str()); }

}  // namespace

bool RequireStore(const std::filesystem::path& dir) {
  if (std::filesystem::is_directory(dir / "segments")) return true;
  Note(dir.string() + " holds no store (no segments/ in it); is --data-dir the directory esd was started with?");
  return false;
}

std::unique_ptr<storage::Store> OpenOffline(const std::filesystem::path& dir) {
  auto store = storage::Store::Open(dir, storage::Options{});
  if (!store.ok()) {
    Note("cannot open the store in " + dir.string() + ": " + store.status().message());
    return nullptr;
  }
  return std::move(store).value();
}

int VerifyOffline(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  if (dir.empty()) {
    Note("verify checks a stopped store's files: give its directory with --data-dir DIR");
    return kExitUsage;
  }
  if (!RequireStore(dir)) return kExitFailure;
  // Holding the LOCK keeps esd off these files while they are read, and names it if it runs.
  auto lock = storage::DirectoryLock::Acquire(dir);
  if (!lock.ok()) {
    Note(lock.status().message());
    return kExitFailure;
  }
  Progress progress("verify", Progress::Unit::kBytes);
  auto checked = domain::VerifyWithSnapshots(dir, [&](uint64_t done, uint64_t total) { progress(done, total); });
  if (!checked.ok()) {
    Note(checked.status().message() + "; is --data-dir the directory esd was started with?");
    return kExitFailure;
  }
  progress.Finish();
  const storage::VerifyReport& report = checked->report;
  client::Client::VerifyReport out;
  out.segments = report.segments;
  out.batches = report.batches;
  out.events = report.events;
  out.index_files = report.index_files;
  out.snapshots = checked->snapshots;
  out.torn_tail = report.torn_tail.value_or("");
  out.notes = report.notes;
  for (const auto& p : report.problems) out.problems.push_back({p.file, p.offset, p.position, p.what});
  return PrintVerify(out, inv.global.json);
}

int PrintVerify(const client::Client::VerifyReport& r, bool json) {
  const bool ok = r.problems.empty();
  // A daemon older than the notes sends only the torn tail.
  std::vector<std::string> notes = r.notes;
  if (notes.empty() && !r.torn_tail.empty()) notes.push_back(r.torn_tail);
  if (json) {
    std::vector<std::string> note_texts, problems;
    for (const auto& n : notes) note_texts.push_back(JsonString(n));
    for (const auto& p : r.problems) {
      JsonObject o;
      o.String("file", p.file).Number("offset", p.offset);
      if (p.position) o.Number("position", *p.position);
      else o.Null("position");
      problems.push_back(o.String("what", p.what).Done());
    }
    JsonObject o;
    o.Bool("ok", ok)
        .Number("segments", r.segments)
        .Number("batches", r.batches)
        .Number("events", r.events)
        .Number("indexFiles", r.index_files)
        .Number("snapshots", r.snapshots);
    if (r.torn_tail.empty()) o.Null("tornTail");
    else o.String("tornTail", r.torn_tail);
    std::printf("%s\n", o.Raw("notes", JsonArray(note_texts)).Raw("problems", JsonArray(problems)).Done().c_str());
  } else {
    for (const auto& p : r.problems) {
      std::printf("BAD %s offset %llu%s: %s\n", p.file.c_str(), static_cast<unsigned long long>(p.offset),
                  p.position ? (" (position " + std::to_string(*p.position) + ")").c_str() : "", p.what.c_str());
    }
    for (const auto& note : notes) std::printf("note: %s\n", note.c_str());
    const std::string noted = notes.empty() ? std::string()
                                            : ", " + std::to_string(notes.size()) + " note" +
                                                  (notes.size() == 1 ? "" : "s") + " (repaired by the next start)";
    std::printf("%s: %llu segments, %llu batches, %llu events, %llu index files, %llu snapshots checked; "
                "%zu problem%s%s\n",
                ok ? "clean" : "DAMAGED", static_cast<unsigned long long>(r.segments),
                static_cast<unsigned long long>(r.batches), static_cast<unsigned long long>(r.events),
                static_cast<unsigned long long>(r.index_files), static_cast<unsigned long long>(r.snapshots),
                r.problems.size(), r.problems.size() == 1 ? "" : "s", noted.c_str());
  }
  if (!ok) {
    Note("damage found. Keep a copy of the directory; a damaged snapshot file can be deleted (it is rebuilt); a "
         "damaged segment needs the copy from a backup");
  }
  return ok ? 0 : kExitDamage;
}

int ReplayOffline(const Invocation& inv) {
  const std::string& name = inv.positional.at(0);
  if (name != "orders") {
    Note("unknown projection '" + name + "' (there is one: orders)");
    return kExitFailure;
  }
  const std::filesystem::path dir = inv.global.data_dir;
  if (!RequireStore(dir)) return kExitFailure;
  auto store = OpenOffline(dir);
  if (!store) return kExitFailure;
  const uint64_t total = store->DurablePosition().value;
  Progress progress("replay", Progress::Unit::kEvents);
  domain::OrderProjection projection;
  while (projection.checkpoint() < total) {
    auto n = projection.CatchUp(*store, 100'000);
    if (!n.ok()) {
      Note("reading $all failed at position " + std::to_string(projection.checkpoint()) + ": " + n.status().message());
      return kExitFailure;
    }
    progress(projection.checkpoint(), total);
    if (*n == 0) break;
  }
  progress.Finish();
  const auto path = domain::ProjectionSnapshotPath(dir);
  if (auto saved = projection.SaveSnapshot(*store, path); !saved.ok()) {
    Note("could not write " + path.string() + ": " + saved.message());
    return kExitFailure;
  }
  if (inv.global.json) {
    std::printf("%s\n", JsonObject()
                           .String("projection", "orders")
                           .Number("eventsRead", projection.checkpoint())
                           .Number("orders", projection.order_count())
                           .Number("checkpoint", projection.checkpoint())
                           .Done()
                           .c_str());
  } else {
    std::printf("replayed orders: %llu events, %zu orders; snapshot written at checkpoint %llu\n",
                static_cast<unsigned long long>(projection.checkpoint()), projection.order_count(),
                static_cast<unsigned long long>(projection.checkpoint()));
  }
  return 0;
}

void PrintBackup(const std::string& dest, uint64_t position, uint64_t bytes, bool json) {
  if (json) {
    std::printf("%s\n", JsonObject().String("dest", dest).Number("position", position).Number("bytes", bytes).Done().c_str());
  } else {
    std::printf("backed up every event below position %llu (%llu bytes of log) into %s; to restore, start esd with "
                "--data-dir %s\n",
                static_cast<unsigned long long>(position), static_cast<unsigned long long>(bytes), dest.c_str(),
                dest.c_str());
  }
}

int BackupOffline(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  const std::string& dest = inv.positional.at(0);
  if (!RequireStore(dir)) return kExitFailure;
  auto store = OpenOffline(dir);
  if (!store) return kExitFailure;
  Progress progress("backup", Progress::Unit::kBytes);
  uint64_t bytes = 0;
  auto upto = domain::BackupWithSnapshots(*store, dir, dest, std::ref(progress), &bytes);
  if (!upto.ok()) {
    Note("the backup failed: " + upto.status().message());
    return kExitFailure;
  }
  progress.Finish();
  PrintBackup(dest, upto->value, bytes, inv.global.json);
  return kExitOk;
}

int Dump(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  const auto position = inv.Value("position");
  if (dir.empty() || (inv.positional.empty() == !position)) {
    Note("dump needs --data-dir DIR and either a SEGMENT or --position P");
    return kExitUsage;
  }
  std::optional<uint64_t> want;
  if (position) want = ParseNumber("--position", *position);
  // The segment: named, or the last one whose first position is at or before P.
  std::filesystem::path file;
  if (!inv.positional.empty()) {
    file = inv.positional[0];
    if (!std::filesystem::exists(file)) file = dir / "segments" / inv.positional[0];
  } else {
    std::vector<std::filesystem::path> segs;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir / "segments", ec)) {
      if (e.path().extension() == ".seg") segs.push_back(e.path());
    }
    std::sort(segs.begin(), segs.end());
    for (const auto& p : segs) {
      if (std::stoull(p.stem().string()) <= *want) file = p;
    }
  }
  if (file.empty()) {
    Note("no segment holds position " + *position);
    return kExitFailure;
  }
  // Mapped, not read: a listing for one position touches only the pages it walks.
  auto segment = storage::Segment::OpenReadOnly(file);
  if (!segment.ok()) {
    const bool damaged = segment.status().code() == storage::Status::Code::kCorruption;  // a bad header
    Note(std::filesystem::exists(file) ? "cannot read " + file.string() + ": " + segment.status().message()
                                       : "no segment file " + file.string());
    return damaged ? kExitDamage : kExitFailure;
  }
  const std::span<const uint8_t> bytes = (*segment)->bytes();
  const uint8_t* data = bytes.data();
  uint64_t off = storage::format::kSegmentHeaderSize;
  bool found = !want;
  auto status_of = [](storage::format::BatchCheck c) { return std::string(storage::format::BatchCheckName(c)); };
  while (off < bytes.size()) {
    storage::format::BatchHeader h{};
    auto check = storage::format::CheckBatch(std::span(data + off, bytes.size() - off), true, &h);
    if (check == storage::format::BatchCheck::kEndOfLog) break;
    if (check != storage::format::BatchCheck::kOk) std::memcpy(&h, data + off, std::min<size_t>(sizeof(h), bytes.size() - off));
    const uint64_t last = h.first_position + (h.event_count == 0 ? 0 : h.event_count - 1);
    const bool print = !want || (check == storage::format::BatchCheck::kOk && *want >= h.first_position && *want <= last) ||
                       check != storage::format::BatchCheck::kOk;
    if (print) {
      found = found || check == storage::format::BatchCheck::kOk;
      char sum[17];
      std::snprintf(sum, sizeof(sum), "%016llx", static_cast<unsigned long long>(h.checksum));
      const std::string status = storage::format::BatchCheckName(check);
      if (inv.global.json) {
        std::printf("%s\n", JsonObject()
                               .String("file", file.filename().string())
                               .Number("offset", off)
                               .Number("size", h.batch_size)
                               .Number("events", h.event_count)
                               .Number("firstPosition", h.first_position)
                               .Number("lastPosition", last)
                               .Number("segmentId", h.segment_id)
                               .String("timestamp", FormatTimestamp(h.timestamp_micros))
                               .String("checksum", sum)
                               .String("status", status)
                               .Done()
                               .c_str());
      } else {
        std::printf("offset %-10llu size %-7u events %-5u positions %llu..%llu  segment %llu  %s  xxh3 %s  %s\n",
                    static_cast<unsigned long long>(off), h.batch_size, h.event_count,
                    static_cast<unsigned long long>(h.first_position), static_cast<unsigned long long>(last),
                    static_cast<unsigned long long>(h.segment_id), FormatTimestamp(h.timestamp_micros).c_str(), sum,
                    status.c_str());
      }
    }
    if (check != storage::format::BatchCheck::kOk) {
      // What follows cannot be framed: report where, and that it is damage.
      Note("the batch at offset " + std::to_string(off) + " of " + file.filename().string() + " does not hold (" +
           status_of(check) + "); the rest of the segment cannot be listed. `esctl verify` tells what else is damaged");
      return kExitDamage;
    }
    if (want && *want <= last) break;
    off += h.batch_size;
  }
  if (!found) {
    Note("position " + *position + " is not in " + file.filename().string() + " (past the end of the log?)");
    return kExitFailure;
  }
  return 0;
}

void PrintStream(const std::string& name, uint64_t last_version, uint64_t events, uint64_t last_position,
                 uint64_t last_write_micros, bool json) {
  if (json) {
    std::printf("%s\n", JsonObject()
                           .String("stream", name)
                           .Number("lastVersion", last_version)
                           .Number("events", events)
                           .Number("lastPosition", last_position)
                           .String("lastWrite", FormatTimestamp(last_write_micros))
                           .Done()
                           .c_str());
  } else {
    std::printf("%-40s version %-8llu events %-8llu position %-10llu %s\n", name.c_str(),
                static_cast<unsigned long long>(last_version), static_cast<unsigned long long>(events),
                static_cast<unsigned long long>(last_position), FormatTimestamp(last_write_micros).c_str());
  }
}

int StreamsOffline(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  if (!RequireStore(dir)) return kExitFailure;
  auto store = OpenOffline(dir);
  if (!store) return kExitFailure;
  const std::string prefix = inv.Value("prefix").value_or("");
  // Page by page, as online: a store of millions of streams is never held in memory at once.
  std::string after;
  while (true) {
    const auto page = store->ListStreams(prefix, after, 1000);
    for (const auto& [name, info] : page.streams) {
      PrintStream(name, info.last_version.value, info.event_count, info.last_position.value, info.last_write,
                  inv.global.json);
    }
    if (!page.more || page.streams.empty()) break;
    after = page.streams.back().first;
  }
  return 0;
}

int StatusOffline(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  if (!RequireStore(dir)) return kExitFailure;
  auto store = OpenOffline(dir);
  if (!store) return kExitFailure;
  const uint64_t durable = store->DurablePosition().value;
  const uint64_t bytes = storage::StoreFileBytes(dir);
  const auto stats = store->stats();
  uint64_t snapshots = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir / "snapshots", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    snapshots += it->path().extension() == ".snap";
  }
  const auto projection = domain::ReadSnapshotFile(domain::ProjectionSnapshotPath(dir));
  const uint64_t checkpoint = projection ? projection->version : 0;
  const size_t streams = store->StreamCount();
  const auto& rec = store->recovery();
  if (inv.global.json) {
    std::printf("{\"dataDir\":%s,\"durablePosition\":%llu,\"segments\":%llu,\"bytes\":%llu,\"streams\":%zu,"
                "\"logBytes\":%llu,\"allocatedBytes\":%llu,"
                "\"snapshots\":%llu,\"projections\":[{\"name\":\"orders\",\"checkpoint\":%llu,\"lag\":%llu,"
                "\"snapshot\":%s}]}\n",
                QuoteJson(dir.string()).c_str(), static_cast<unsigned long long>(durable),
                static_cast<unsigned long long>(rec.segments), static_cast<unsigned long long>(bytes), streams,
                static_cast<unsigned long long>(stats.log_bytes), static_cast<unsigned long long>(stats.allocated_bytes),
                static_cast<unsigned long long>(snapshots), static_cast<unsigned long long>(checkpoint),
                static_cast<unsigned long long>(durable - std::min(durable, checkpoint)), projection ? "true" : "false");
  } else {
    std::printf("data dir          %s (offline)\n", dir.string().c_str());
    std::printf("durable position  %llu (events in the store)\n", static_cast<unsigned long long>(durable));
    std::printf("segments          %llu, %llu bytes with index files\n", static_cast<unsigned long long>(rec.segments),
                static_cast<unsigned long long>(bytes));
    std::printf("log               %s\n", DiskUseText(stats.log_bytes, stats.allocated_bytes).c_str());
    std::printf("streams           %zu\n", streams);
    std::printf("snapshots         %llu files\n", static_cast<unsigned long long>(snapshots));
    std::printf("projection orders %s\n",
                projection ? ("checkpoint " + std::to_string(checkpoint) + ", " +
                              std::to_string(durable - std::min(durable, checkpoint)) +
                              " events to catch up at the next start").c_str()
                           : "no snapshot: rebuilt from position 0 at the next start");
    // What opening the store repaired, in the words verify and the daemon's log use.
    for (const std::string& note : rec.notes) std::printf("recovery          %s\n", note.c_str());
  }
  return 0;
}

}  // namespace esd::esctl
