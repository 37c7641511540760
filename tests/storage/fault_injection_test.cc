// Fault injection at every file call (storage/file.h FileFaults), in the spirit of leveldb's
// fault-injection Env and RocksDB's FaultInjectionTestFS.
//
// A deterministic workload runs against a small store while one file call fails: the Nth
// open, pwrite, fdatasync, directory fsync, rename, unlink, ftruncate or mmap made by one
// part of the store (the writer's group commits, its segment roll, the preallocator, the
// index job, recovery at open, a backup). Afterwards the faults are removed, the store is
// reopened and judged: every acknowledged event is there unchanged, nothing of an append
// that failed is visible, versions and positions are dense, verify and open agree and find
// no damage, the store takes new appends, and a backup that reported success is whole.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/file.h"
#include "storage/format.h"
#include "storage/store.h"
#include "storage/verify.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvents;
using testing::SmallOptions;

// ---- Where a file call comes from ----

// The part of the store that makes a call. Each background part is one thread, so the
// calls of one site come in a deterministic order even though the sites run concurrently.
enum class Site : uint8_t {
  kOpen,          // Store::Open on the test thread: directories, LOCK, recovery
  kGroupCommit,   // the writer thread on a segment file: group pwrite, fdatasync, zeroing
  kRoll,          // the writer thread otherwise: taking the spare, activating it
  kPreallocator,  // the thread that zero-fills spares and the active segment ahead of the writer
  kIndexJob,      // the thread that writes index files of sealed segments
  kBackup,        // Store::Backup on the test thread
  kOther,         // the test thread outside Open and Backup (nothing expected)
};
constexpr int kSiteCount = 7;

const char* SiteName(Site s) {
  switch (s) {
    case Site::kOpen: return "open";
    case Site::kGroupCommit: return "group-commit";
    case Site::kRoll: return "roll";
    case Site::kPreallocator: return "preallocator";
    case Site::kIndexJob: return "index-job";
    case Site::kBackup: return "backup";
    case Site::kOther: return "other";
  }
  return "?";
}

enum class FaultKind : uint8_t { kNoSpace, kIoError, kShortWriteNoSpace };

const char* FaultKindName(FaultKind k) {
  switch (k) {
    case FaultKind::kNoSpace: return "ENOSPC";
    case FaultKind::kIoError: return "EIO";
    case FaultKind::kShortWriteNoSpace: return "short write + ENOSPC";
  }
  return "?";
}

InjectedFault Injected(FaultKind k) {
  switch (k) {
    case FaultKind::kNoSpace: return {ENOSPC, false};
    case FaultKind::kIoError: return {EIO, false};
    case FaultKind::kShortWriteNoSpace: return {ENOSPC, true};
  }
  return {};
}

bool IsSegmentFile(const std::filesystem::path& p) { return p.extension() == ".seg"; }

// Counts every file call by site and op, and fails the Nth call that matches the trigger,
// once. Thread-safe: Before runs on whichever thread makes the call.
class CountingFaults final : public FileFaults {
 public:
  struct Trigger {
    FileOp op = FileOp::kWrite;
    std::optional<Site> site;                                        // empty: any site
    std::function<bool(const std::filesystem::path&)> path_matches;  // empty: any path
    uint64_t nth = 1;                                                // 1-based, among matching calls
    FaultKind kind = FaultKind::kNoSpace;
  };
  using Counts = std::array<std::array<uint64_t, kFileOpCount>, kSiteCount>;

  CountingFaults() : test_thread_(std::this_thread::get_id()), generation_(++generations_) {}

  void Arm(Trigger t) {
    std::lock_guard lock(mu_);
    trigger_ = std::move(t);
    matched_ = 0;
    fired_.reset();
  }
  // What the test thread is doing: its calls belong to that site.
  void SetPhase(Site s) {
    if (s == Site::kOpen) {
      // A new store process numbers its spares afresh (from spare-0 when none was left).
      std::lock_guard lock(mu_);
      activated_.clear();
    }
    phase_.store(s, std::memory_order_relaxed);
  }

  uint64_t Count(Site s, FileOp op) const {
    std::lock_guard lock(mu_);
    return counts_[static_cast<int>(s)][static_cast<int>(op)];
  }
  Counts AllCounts() const {
    std::lock_guard lock(mu_);
    return counts_;
  }
  // The call that failed ("pwrite of segments/00..0.seg (group-commit)"), if one did.
  std::optional<std::string> fired() const {
    std::lock_guard lock(mu_);
    return fired_;
  }

  InjectedFault Before(FileOp op, const std::filesystem::path& path) override {
    std::lock_guard lock(mu_);
    const Site site = SiteOf(op, path);
    ++counts_[static_cast<int>(site)][static_cast<int>(op)];
    const bool fire = Matches(op, site, path);
    if (site == Site::kRoll && op == FileOp::kRename && !fire) activated_.insert(path);
    if (!fire) return {};
    fired_ = std::string(FileOpName(op)) + " of " + path.parent_path().filename().string() + "/" +
             path.filename().string() + " (" + SiteName(site) + ")";
    return Injected(trigger_->kind);
  }

 private:
  bool Matches(FileOp op, Site site, const std::filesystem::path& path) {
    if (!trigger_ || fired_ || op != trigger_->op) return false;
    if (trigger_->site && *trigger_->site != site) return false;
    if (trigger_->path_matches && !trigger_->path_matches(path)) return false;
    return ++matched_ == trigger_->nth;
  }

  Site SiteOf(FileOp op, const std::filesystem::path& path) const {
    if (std::this_thread::get_id() == test_thread_) return phase_.load(std::memory_order_relaxed);
    // A background thread is known by the first file it touches: the preallocator makes
    // spare-N.tmp or opens the active segment by name to fill it ahead of the writer, the
    // index job X.idx.tmp, the writer a segment or a ready spare.
    struct Role {
      uint64_t generation = 0;
      Site site = Site::kOther;
    };
    thread_local Role role;
    if (role.generation != generation_) {
      const std::string name = path.filename().string();
      role.generation = generation_;
      const bool fills = (name.rfind("spare-", 0) == 0 && path.extension() == ".tmp") ||
                         (op == FileOp::kOpen && IsSegmentFile(path));
      role.site = fills                                                      ? Site::kPreallocator
                  : name.find(".idx") != std::string::npos                   ? Site::kIndexJob
                                                                             : Site::kGroupCommit;
    }
    if (role.site != Site::kGroupCommit) return role.site;
    // The writer keeps writing to an activated spare through the File it opened as
    // spare-N.ready, so the fault hook sees that name after the rename to <first>.seg too.
    const bool segment = IsSegmentFile(path) || activated_.count(path) != 0;
    return segment && (op == FileOp::kWrite || op == FileOp::kSync) ? Site::kGroupCommit : Site::kRoll;
  }

  static inline std::atomic<uint64_t> generations_{0};
  const std::thread::id test_thread_;
  const uint64_t generation_;
  std::atomic<Site> phase_{Site::kOther};
  mutable std::mutex mu_;
  Counts counts_{};
  std::optional<Trigger> trigger_;
  uint64_t matched_ = 0;
  std::optional<std::string> fired_;
  std::set<std::filesystem::path> activated_;  // spares the writer renamed to a segment name
};

// Installs a FileFaults for the lifetime of the object.
class InstalledFaults {
 public:
  explicit InstalledFaults(FileFaults* f) { SetFileFaults(f); }
  ~InstalledFaults() { SetFileFaults(nullptr); }
  InstalledFaults(const InstalledFaults&) = delete;
  InstalledFaults& operator=(const InstalledFaults&) = delete;
};

// The sweep opens and closes a store hundreds of times, and fdatasync on a real disk
// (~1 ms here) would make that minutes; the faults are injected, so the medium does not
// matter. A directory on tmpfs (/dev/shm) when there is one, else testing::TempDir (and
// the sweep samples fewer calls).
class ScratchDir {
 public:
  static bool OnTmpfs() { return ::access("/dev/shm", W_OK) == 0; }

  ScratchDir() {
    std::string tmpl = "/dev/shm/esd-fault-XXXXXX";
    if (OnTmpfs() && ::mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
    } else {
      fallback_ = std::make_unique<testing::TempDir>();
      path_ = fallback_->path();
    }
  }
  ~ScratchDir() {
    if (!fallback_) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::unique_ptr<testing::TempDir> fallback_;
  std::filesystem::path path_;
};

std::string Describe(const AppendResult& r) {
  if (!r.ok()) return r.status().ToString();
  std::ostringstream s;
  s << "ok v" << r->first_version.value << "..v" << r->last_version.value << " @" << r->first_position.value << ".."
    << r->last_position.value << (r->already_written ? " (already written)" : "");
  return s.str();
}

uint64_t BatchBytes(const std::string& stream, const std::vector<EventData>& events) {
  uint64_t n = format::kBatchHeaderSize;
  for (const EventData& e : events) n += format::EventRecordSize(stream, {e.id, e.type, e.content_type, e.metadata, e.data});
  return n;
}

struct SegmentEnd {
  uint64_t log_end;  // offset past the last batch
  uint64_t size;     // of the file
};

// Where the log ends in the newest segment, read from its file. Only while the writer is
// idle (between appends, or held in a callback): bytes below the end never change.
SegmentEnd ActiveSegmentEnd(const std::filesystem::path& dir) {
  const auto files = testing::SegmentFiles(dir);
  const std::vector<uint8_t> bytes = testing::ReadFileBytes(files.back());
  SegmentEnd end{format::kSegmentHeaderSize, bytes.size()};
  for (uint64_t off : testing::BatchOffsets(files.back())) {
    format::BatchHeader h;
    std::memcpy(&h, bytes.data() + off, sizeof(h));
    end.log_end = off + h.batch_size;
  }
  return end;
}

std::string SegmentName(GlobalPosition first) {
  std::string digits = std::to_string(first.value);
  return std::string(20 - digits.size(), '0') + digits + ".seg";
}

// ---- The workload ----

// One append as the client means it: these events, this stream, this expectation. It may
// be submitted more than once (a retry after an error, or a retry of an acknowledged one).
struct LoggedAppend {
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  std::vector<EventData> events;
  std::vector<AppendResult> attempts;  // every submission's result, in order
  int acked_in_process = -1;           // which store process acknowledged it first

  const AppendOk* FirstOk() const {
    for (const auto& a : attempts) {
      if (a.ok()) return &a.value();
    }
    return nullptr;
  }
  std::string What(size_t index) const {
    return "append #" + std::to_string(index) + " (" + std::to_string(events.size()) + " events to '" + stream +
           "', expected " + expected.ToString() + ")";
  }
};

bool MeansTheStoreStopped(const Status& s) {
  return s.code() == Status::Code::kIOError || s.code() == Status::Code::kClosed;
}

// A deterministic client: a few hundred appends over several streams (no-stream, exact,
// any, stream-exists; one to three events of 40 B to 14 KB), groups of several appends that
// depend on each other, retries with the same event ids (after an error, and of appends
// already acknowledged), a restart half way, and a backup at the end. It keeps what it was
// told, and what a client would call wrong at once (anomalies).
class Workload {
 public:
  static constexpr int kSteps = 180;

  Workload(std::filesystem::path dir, std::filesystem::path backup_dir, CountingFaults* faults)
      : dir_(std::move(dir)), backup_dir_(std::move(backup_dir)), faults_(faults) {}

  void Run() {
    if (!Open()) return;
    for (int step = 0; step < kSteps && store_ != nullptr; ++step) {
      if (step == kSteps / 2) Restart();  // recovery over sealed segments and index files
      if (store_ == nullptr) break;
      if (step % 15 == 14) {
        GroupOfSeveral(step);
      } else if (step % 10 == 4) {
        RetryAnAcknowledgedAppend(step);
      } else {
        const std::string stream = step % 7 == 6 ? "any-" + std::to_string(step % 2) : "s" + std::to_string(step % 5);
        const size_t i = NewAppend(stream, NextExpected(stream, step), 1 + step % 3, kSizes[(step / 3) % 4]);
        Record(i, store_->AppendSync(appends[i].stream, appends[i].expected, appends[i].events), false);
        Settle(i);
      }
    }
    // The backup copies the index files that exist when it starts; after a restart every
    // sealed segment has one, so the backup's calls do not depend on the index job's timing.
    if (store_ != nullptr) Restart();
    if (store_ == nullptr) return;
    faults_->SetPhase(Site::kBackup);
    backup = store_->Backup(backup_dir_);
    faults_->SetPhase(Site::kOther);
    store_.reset();  // finishes the index job; faults still apply
  }

  std::vector<LoggedAppend> appends;
  std::optional<Result<GlobalPosition>> backup;
  std::vector<std::string> anomalies;
  std::vector<Status> open_failures;
  // Group-commit calls made while a group of several appends was decided (first, last],
  // per op: where a flush happens in the middle of a group.
  std::vector<std::pair<uint64_t, uint64_t>> grouped_writes, grouped_syncs;
  int groups_at_a_roll = 0;  // groups whose X2 began a new segment right after X1

 private:
  static constexpr size_t kSizes[4] = {40, 300, 900, 2000};

  bool Open() {
    faults_->SetPhase(Site::kOpen);
    // A client that cannot open tries once more: the fault is spent by then.
    for (int attempt = 0; attempt < 2 && store_ == nullptr; ++attempt) {
      auto opened = Store::Open(dir_, SmallOptions());
      if (opened.ok()) {
        store_ = std::move(opened).value();
      } else {
        open_failures.push_back(opened.status());
      }
    }
    faults_->SetPhase(Site::kOther);
    ++process_;
    needs_restart_ = false;
    if (store_ == nullptr) {
      anomalies.push_back("the store did not open again after a failed open: " + open_failures.back().ToString());
    }
    return store_ != nullptr;
  }

  void Restart() {
    store_.reset();
    Open();
  }

  size_t NewAppend(const std::string& stream, ExpectedVersion expected, size_t count, size_t data_size) {
    LoggedAppend a;
    a.stream = stream;
    a.expected = expected;
    a.events = MakeEvents(stream, 0, count, ++salt_, data_size);  // the salt makes every id new
    appends.push_back(std::move(a));
    return appends.size() - 1;
  }

  ExpectedVersion NextExpected(const std::string& stream, int step) {
    if (stream.rfind("any-", 0) == 0) return ExpectedVersion::Any();
    const uint64_t next = next_version_[stream];
    if (next == 0) return ExpectedVersion::NoStream();
    switch (step % 4) {
      case 2: return ExpectedVersion::Any();
      case 3: return ExpectedVersion::StreamExists();
      default: return ExpectedVersion::Exact(StreamVersion(next - 1));
    }
  }

  // `may_conflict`: the append depends on another one in its group, so a wrong expected
  // version is a fair answer when that one failed.
  void Record(size_t i, AppendResult r, bool may_conflict) {
    LoggedAppend& a = appends[i];
    const AppendOk* before = a.FirstOk();
    if (!r.ok() && MeansTheStoreStopped(r.status())) needs_restart_ = true;
    if (r.ok() && !r->already_written && stopped_in_process_ == process_) {
      anomalies.push_back(a.What(i) + " was written and acknowledged (" + Describe(r) +
                          ") after the store had answered '" + stopped_because_ + "'");
    }
    if (!r.ok() && r.status().message().find("no longer accepts writes") != std::string::npos &&
        stopped_in_process_ != process_) {
      stopped_in_process_ = process_;  // docs/storage.md: every later append gets the error
      stopped_because_ = r.status().ToString();
    }
    if (before != nullptr) {
      if (r.ok() && (!r->already_written || r->first_position != before->first_position ||
                     r->last_position != before->last_position || r->first_version != before->first_version)) {
        anomalies.push_back("a retry of acknowledged " + a.What(i) + " came back as " + Describe(r) +
                            " instead of the original " + Describe(*before));
      } else if (!r.ok() && r.status().code() != Status::Code::kOutOfSpace && !MeansTheStoreStopped(r.status())) {
        anomalies.push_back("a retry of acknowledged " + a.What(i) + " got " + r.status().ToString());
      }
    } else if (r.ok()) {
      uint64_t& next = next_version_[a.stream];
      if (r->first_version.value != next) {
        anomalies.push_back(a.What(i) + " was written at version " + std::to_string(r->first_version.value) +
                            ", but the acknowledged history of the stream has " + std::to_string(next) + " events");
      }
      next = std::max(next, r->last_version.value + 1);
      a.acked_in_process = process_;
    } else if (r.status().code() == Status::Code::kWrongExpectedVersion && !may_conflict) {
      anomalies.push_back(a.What(i) + " got " + r.status().ToString() + ", but the acknowledged history of the stream has " +
                          std::to_string(next_version_[a.stream]) + " events");
    } else if (r.status().code() == Status::Code::kIdempotencyConflict ||
               r.status().code() == Status::Code::kInvalidArgument || r.status().code() == Status::Code::kCorruption) {
      anomalies.push_back(a.What(i) + " got " + r.status().ToString());
    }
    a.attempts.push_back(std::move(r));
  }

  // A client's answer to an error: retry the same events once, after a restart if the
  // store stopped.
  void Settle(size_t i) {
    LoggedAppend& a = appends[i];
    if (a.FirstOk() != nullptr) return;
    const Status& last = a.attempts.back().status();
    if (last.code() != Status::Code::kOutOfSpace && !MeansTheStoreStopped(last)) return;
    if (needs_restart_) Restart();
    if (store_ == nullptr) return;
    Record(i, store_->AppendSync(a.stream, a.expected, a.events), true);
  }

  void RetryAnAcknowledgedAppend(int step) {
    // Any and StreamExists retries are recognised only by the id window of the running
    // process (docs/storage.md); exact and no-stream retries at any distance.
    std::optional<size_t> pick;
    for (size_t k = appends.size(); k-- > 0 && !pick;) {
      const LoggedAppend& a = appends[k];
      if (a.FirstOk() == nullptr) continue;
      const auto kind = a.expected.kind();
      const bool by_version = kind == ExpectedVersion::Kind::kExact || kind == ExpectedVersion::Kind::kNoStream;
      if (by_version || (step % 20 == 4 && a.acked_in_process == process_)) pick = k;
    }
    if (!pick) return;
    const LoggedAppend& a = appends[*pick];
    Record(*pick, store_->AppendSync(a.stream, a.expected, a.events), false);
  }

  // Several appends decided in one group: the gate append's callback holds the writer
  // thread until all of them are queued, so the writer takes them together. X2 depends on
  // X1, X3 repeats X1 in the same group, R repeats an acknowledged append, and a big one
  // rolls the segment now and then. Every other group is placed at the end of a segment
  // (issue 9): X1 fits, X2 does not, so the writer flushes X1 and rolls before X2.
  void GroupOfSeveral(int step) {
    const bool at_roll = (step / 15) % 2 == 1;
    const std::string stream = "g" + std::to_string(step % 3);
    const auto x1_events = MakeEvents(stream, 0, 2, salt_ + 1, 300);
    const uint64_t x1_bytes = BatchBytes(stream, x1_events);
    constexpr uint64_t kNearTheEnd = 14 << 10;  // X2 can be made bigger than what is left
    while (at_roll && store_ != nullptr) {
      const SegmentEnd end = ActiveSegmentEnd(dir_);
      if (end.size - end.log_end < kNearTheEnd + x1_bytes) break;
      const size_t i = NewAppend("fill", ExpectedVersion::Any(), 1, 6000);
      Record(i, store_->AppendSync(appends[i].stream, appends[i].expected, appends[i].events), false);
      Settle(i);
    }
    if (store_ == nullptr) return;

    const std::thread::id test_thread = std::this_thread::get_id();
    std::promise<void> entered, gate;
    std::shared_future<void> gate_open = gate.get_future().share();
    std::vector<std::pair<size_t, std::future<AppendResult>>> results;
    std::vector<bool> may_conflict;
    auto submit = [&](size_t i, bool hold, bool conflict) {
      auto done = std::make_shared<std::promise<AppendResult>>();
      results.emplace_back(i, done->get_future());
      may_conflict.push_back(conflict);
      const LoggedAppend& a = appends[i];
      store_->Append(a.stream, a.expected, a.events, [=, &entered](AppendResult r) {
        if (hold) {
          entered.set_value();
          if (std::this_thread::get_id() != test_thread) gate_open.wait();
        }
        done->set_value(std::move(r));
      });
    };
    submit(NewAppend("gate", ExpectedVersion::Any(), 1, 40), true, false);
    entered.get_future().wait();  // the writer sits in the gate's callback, idle
    const uint64_t writes0 = faults_->Count(Site::kGroupCommit, FileOp::kWrite);
    const uint64_t syncs0 = faults_->Count(Site::kGroupCommit, FileOp::kSync);

    size_t x2_data = 900;
    if (at_roll) {
      const SegmentEnd end = ActiveSegmentEnd(dir_);
      const uint64_t left = end.size - end.log_end;
      if (left > x1_bytes && left - x1_bytes < kNearTheEnd + 1024) {
        // One byte more than fits after X1; `overhead` may be up to 7 bytes of padding high.
        const uint64_t overhead = BatchBytes(stream, MakeEvents(stream, 0, 1, 0, 0));
        x2_data = static_cast<size_t>(left - x1_bytes + 8 - std::min(overhead, left - x1_bytes));
      }
    }
    const uint64_t next = next_version_[stream];
    const size_t x1 = NewAppend(stream, NextExpected(stream, step), 2, 300);
    submit(x1, false, false);
    const size_t x2 = NewAppend(stream, ExpectedVersion::Exact(StreamVersion(next + 1)), 1, x2_data);
    submit(x2, false, true);
    submit(x1, false, false);  // X3: the same events again, in the same group
    for (size_t k = appends.size(); k-- > 0;) {
      const auto kind = appends[k].expected.kind();
      if (appends[k].FirstOk() != nullptr &&
          (kind == ExpectedVersion::Kind::kExact || kind == ExpectedVersion::Kind::kNoStream)) {
        submit(k, false, false);
        break;
      }
    }
    submit(NewAppend("big-" + std::to_string(step % 2), ExpectedVersion::Any(), 1, 6000 + 100 * (step % 10)), false,
           false);
    gate.set_value();
    for (size_t k = 0; k < results.size(); ++k) Record(results[k].first, results[k].second.get(), may_conflict[k]);
    grouped_writes.emplace_back(writes0, faults_->Count(Site::kGroupCommit, FileOp::kWrite));
    grouped_syncs.emplace_back(syncs0, faults_->Count(Site::kGroupCommit, FileOp::kSync));
    if (const AppendOk* ok = appends[x2].FirstOk(); ok != nullptr && appends[x1].FirstOk() != nullptr) {
      std::error_code ec;
      groups_at_a_roll += std::filesystem::exists(dir_ / "segments" / SegmentName(ok->first_position), ec);
    }
    std::set<size_t> settled;
    for (const auto& [i, unused] : results) {
      if (settled.insert(i).second) Settle(i);
    }
  }

  const std::filesystem::path dir_, backup_dir_;
  CountingFaults* const faults_;
  std::unique_ptr<Store> store_;
  std::map<std::string, uint64_t> next_version_;  // per stream, from what was acknowledged
  uint64_t salt_ = 0;
  int process_ = 0;  // store processes opened so far
  bool needs_restart_ = false;
  int stopped_in_process_ = -1;  // the process whose store said it no longer accepts writes
  std::string stopped_because_;
};

// ---- Judging the store after a run ----

struct SeenEvent {
  GlobalPosition position;
  StreamVersion version;
  EventId id;
  TimestampMicros timestamp;
  std::string stream, type, content_type, metadata, data;
};

std::vector<SeenEvent> Copy(const std::vector<EventView>& views) {
  std::vector<SeenEvent> out;
  out.reserve(views.size());
  for (const EventView& v : views) {
    out.push_back({v.position, v.version, v.id, v.timestamp, std::string(v.stream), std::string(v.type),
                   std::string(v.content_type), std::string(v.metadata), std::string(v.data)});
  }
  return out;
}

bool SameContent(const SeenEvent& a, const SeenEvent& b) {
  return a.position == b.position && a.version == b.version && a.id == b.id && a.stream == b.stream &&
         a.type == b.type && a.content_type == b.content_type && a.metadata == b.metadata && a.data == b.data;
}

std::string VerifyProblems(const VerifyReport& r) {
  std::string out;
  for (const auto& p : r.problems) {
    out += "\n      " + p.file + " offset " + std::to_string(p.offset) +
           (p.position ? " position " + std::to_string(*p.position) : std::string()) + ": " + p.what;
  }
  return out;
}

// Every event of the store at `dir`, with the problems of the log itself (gaps, versions).
struct LogRead {
  std::vector<SeenEvent> events;
  std::vector<std::string> problems;
};

LogRead ReadWholeLog(const Store& store) {
  LogRead out;
  auto all = store.ReadAll(GlobalPosition(0), 1u << 30);
  if (!all.ok()) {
    out.problems.push_back("reading $all fails: " + all.status().ToString());
    return out;
  }
  out.events = Copy(*all);
  if (out.events.size() != store.DurablePosition().value) {
    out.problems.push_back("$all holds " + std::to_string(out.events.size()) + " events, the durable position is " +
                           std::to_string(store.DurablePosition().value));
  }
  std::map<std::string, uint64_t> next;
  std::set<EventId> ids;
  TimestampMicros last_time = 0;
  for (size_t k = 0; k < out.events.size(); ++k) {
    const SeenEvent& e = out.events[k];
    if (e.position.value != k) {
      out.problems.push_back("$all event " + std::to_string(k) + " has position " + std::to_string(e.position.value));
    }
    uint64_t& v = next[e.stream];
    if (e.version.value != v) {
      out.problems.push_back("stream '" + e.stream + "' goes from version " + std::to_string(v) + " to " +
                             std::to_string(e.version.value) + " at position " + std::to_string(e.position.value));
    }
    v = e.version.value + 1;
    if (!ids.insert(e.id).second) {
      out.problems.push_back("event id " + e.id.ToString() + " is in the log twice (again at position " +
                             std::to_string(e.position.value) + ")");
    }
    if (e.timestamp < last_time) out.problems.push_back("timestamps go backwards at position " + std::to_string(k));
    last_time = e.timestamp;
  }
  // The per-stream index must agree with $all.
  for (const auto& [stream, count] : next) {
    auto read = store.ReadStream(stream, StreamVersion(0), count + 1);
    auto info = store.GetStreamInfo(stream);
    if (!read.ok()) {
      out.problems.push_back("stream '" + stream + "' does not read: " + read.status().ToString());
      continue;
    }
    if (read->size() != count || !info || info->last_version.value + 1 != count) {
      out.problems.push_back("stream '" + stream + "' reads " + std::to_string(read->size()) + " events, $all has " +
                             std::to_string(count));
      continue;
    }
    for (const EventView& v : *read) {
      if (v.position.value >= out.events.size() || out.events[v.position.value].id != v.id) {
        out.problems.push_back("stream '" + stream + "' version " + std::to_string(v.version.value) +
                               " differs from $all at position " + std::to_string(v.position.value));
        break;
      }
    }
  }
  return out;
}

// What broke after one run, in words; empty when the store came through.
std::vector<std::string> Judge(const Workload& w, const std::filesystem::path& dir,
                               const std::filesystem::path& backup_dir, const std::string& ambiguity) {
  std::vector<std::string> problems = w.anomalies;
  auto verified = VerifyStore(dir);
  auto opened = Store::Open(dir, SmallOptions());
  if (!opened.ok()) {
    problems.push_back("the store does not reopen: " + opened.status().ToString());
    if (verified.ok() && verified->ok()) problems.push_back("open refuses what verify accepts");
    return problems;
  }
  if (verified.ok() && !verified->ok()) {
    problems.push_back("open accepts the store, but verify reports:" + VerifyProblems(*verified));
  } else if (!verified.ok() && verified.status().code() != Status::Code::kNotFound) {
    problems.push_back("verify fails: " + verified.status().ToString());
  }
  std::unique_ptr<Store> store = std::move(opened).value();
  LogRead log = ReadWholeLog(*store);
  problems.insert(problems.end(), log.problems.begin(), log.problems.end());
  std::unordered_map<EventId, GlobalPosition, EventIdHash> where;
  for (const SeenEvent& e : log.events) where.emplace(e.id, e.position);

  for (size_t i = 0; i < w.appends.size(); ++i) {
    const LoggedAppend& a = w.appends[i];
    std::string tried;
    for (const auto& r : a.attempts) tried += (tried.empty() ? "" : ", then ") + Describe(r);
    const AppendOk* ok = a.FirstOk();
    if (ok == nullptr) {
      for (const EventData& e : a.events) {
        if (auto it = where.find(e.id); it != where.end()) {
          problems.push_back(a.What(i) + " got " + tried + ", yet its event " + e.id.ToString() +
                             " is in the log at position " + std::to_string(it->second.value) + ambiguity);
          break;
        }
      }
      continue;
    }
    if (ok->already_written && !a.attempts.front().ok()) {
      problems.push_back(a.What(i) + " got " + tried + ": the error was wrong, the events had been written" +
                         ambiguity);
    }
    for (size_t k = 0; k < a.events.size(); ++k) {
      const uint64_t pos = ok->first_position.value + k;
      const EventData& want = a.events[k];
      const SeenEvent expected{GlobalPosition(pos), ok->first_version + k, want.id, 0, a.stream, want.type,
                               want.content_type, want.metadata, want.data};
      if (pos >= log.events.size()) {
        problems.push_back("acknowledged " + a.What(i) + " (" + tried + "): position " + std::to_string(pos) +
                           " is past the end of the log (" + std::to_string(log.events.size()) + ")");
        break;
      }
      if (!SameContent(log.events[pos], expected)) {
        problems.push_back("acknowledged " + a.What(i) + " (" + tried + "): event " + std::to_string(k) +
                           " at position " + std::to_string(pos) + " is now '" + log.events[pos].stream + "' v" +
                           std::to_string(log.events[pos].version.value) + " id " + log.events[pos].id.ToString());
        break;
      }
    }
  }

  // The store takes new appends: a new stream, and one that goes on from where it stands.
  const GlobalPosition end = store->DurablePosition();
  auto fresh = store->AppendSync("after-the-fault", ExpectedVersion::NoStream(), MakeEvents("after-the-fault", 0, 2));
  if (!fresh.ok() || fresh->first_position != end) {
    problems.push_back("the reopened store does not take a new append: " + Describe(fresh));
  }
  if (!log.events.empty()) {
    const std::string& stream = log.events.back().stream;
    auto info = store->GetStreamInfo(stream);
    auto more = store->AppendSync(stream, ExpectedVersion::Exact(info ? info->last_version : StreamVersion(0)),
                                  MakeEvents(stream, 0, 1, 999'999));
    if (!more.ok()) problems.push_back("the reopened store does not go on with '" + stream + "': " + Describe(more));
  }

  // The backup: whole if it said so; if it did not, never a store that lies.
  if (w.backup.has_value()) {
    const bool backup_ok = w.backup->ok();
    auto copy_verified = VerifyStore(backup_dir);
    auto copy = Store::Open(backup_dir, SmallOptions());
    if (backup_ok && copy_verified.ok() && !copy_verified->ok()) {
      problems.push_back("the backup reported success, but verify reports:" + VerifyProblems(*copy_verified));
    }
    if (!copy.ok()) {
      if (backup_ok) problems.push_back("the backup reported success but does not open: " + copy.status().ToString());
    } else {
      const uint64_t upto = backup_ok ? w.backup->value().value : 0;
      LogRead copied = ReadWholeLog(**copy);
      problems.insert(problems.end(), copied.problems.begin(), copied.problems.end());
      if (copied.events.size() < upto) {
        problems.push_back("the backup reported position " + std::to_string(upto) + " but holds " +
                           std::to_string(copied.events.size()) + " events");
      }
      for (const SeenEvent& e : copied.events) {
        if (e.position.value >= log.events.size() || !SameContent(e, log.events[e.position.value])) {
          problems.push_back(std::string(backup_ok ? "the backup" : "a failed backup that opens") +
                             " differs from the store at position " + std::to_string(e.position.value));
          break;
        }
      }
    }
  }

  store.reset();
  auto after = VerifyStore(dir);
  if (!after.ok() || !after->ok()) {
    problems.push_back("verify of the reopened store reports:" +
                       (after.ok() ? VerifyProblems(*after) : after.status().ToString()));
  }
  return problems;
}

// ---- The sweep ----

struct RunResult {
  std::optional<std::string> fired;
  std::vector<std::string> problems;
  CountingFaults::Counts counts{};
  std::vector<std::pair<uint64_t, uint64_t>> grouped_writes, grouped_syncs;
  size_t acknowledged = 0, failed = 0, segments = 0;
  int groups_at_a_roll = 0;
};

RunResult RunWorkload(const std::optional<CountingFaults::Trigger>& trigger) {
  ScratchDir scratch;
  const auto dir = scratch.path() / "data";
  const auto backup_dir = scratch.path() / "backup";
  CountingFaults faults;
  if (trigger) faults.Arm(*trigger);
  Workload w(dir, backup_dir, &faults);
  {
    InstalledFaults installed(&faults);
    w.Run();
  }
  RunResult out;
  out.fired = faults.fired();
  out.counts = faults.AllCounts();
  out.grouped_writes = w.grouped_writes;
  out.grouped_syncs = w.grouped_syncs;
  out.groups_at_a_roll = w.groups_at_a_roll;
  for (const auto& a : w.appends) (a.FirstOk() != nullptr ? out.acknowledged : out.failed) += 1;
  // An fdatasync that fails with EIO leaves it unknown whether the bytes reached the disk.
  const std::string ambiguity = trigger && trigger->op == FileOp::kSync && trigger->kind == FaultKind::kIoError
                                    ? " [EIO from fdatasync: genuinely ambiguous, the bytes may be on disk]"
                                    : "";
  out.problems = Judge(w, dir, backup_dir, ambiguity);
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir / "segments", ec)) out.segments += IsSegmentFile(f.path());
  return out;
}

// Which calls of one op to fail: every one when there are few, else evenly spaced ones
// (first and last included) plus `focus`, the calls made inside groups of several appends.
// On a real disk (no tmpfs) a few of each, to stay within a minute.
std::vector<uint64_t> CallsToFail(uint64_t count, const std::set<uint64_t>& focus) {
  const bool fast = ScratchDir::OnTmpfs();
  const uint64_t kEvery = fast ? 16 : 3;
  std::set<uint64_t> ns;
  if (fast) ns.insert(focus.begin(), focus.end());
  if (count <= kEvery) {
    for (uint64_t n = 1; n <= count; ++n) ns.insert(n);
  } else {
    for (uint64_t k = 0; k < kEvery; ++k) ns.insert(1 + k * (count - 1) / (kEvery - 1));
  }
  return {ns.begin(), ns.end()};
}

class FaultInjectionSweep : public ::testing::TestWithParam<Site> {};

TEST_P(FaultInjectionSweep, EveryAcknowledgedAppendSurvivesAFaultAtAnyFileCall) {
  const Site site = GetParam();
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult census = RunWorkload(std::nullopt);
  ASSERT_TRUE(census.problems.empty()) << "without faults:\n  " << ::testing::PrintToString(census.problems);
  ASSERT_EQ(census.failed, 0u) << "without faults every append succeeds";
  ASSERT_GE(census.groups_at_a_roll, 3) << "the workload places groups of appends at the end of a segment";

  int runs = 0, fired = 0, broken = 0;
  std::string not_fired;  // calls that a run did not make (the count varied)
  for (int op_index = 0; op_index < kFileOpCount; ++op_index) {
    const FileOp op = static_cast<FileOp>(op_index);
    const uint64_t count = census.counts[static_cast<int>(site)][op_index];
    std::set<uint64_t> focus;
    if (site == Site::kGroupCommit && (op == FileOp::kWrite || op == FileOp::kSync)) {
      for (const auto& [from, to] : op == FileOp::kWrite ? census.grouped_writes : census.grouped_syncs) {
        for (uint64_t n = from + 1; n <= to; ++n) focus.insert(n);
      }
    }
    std::vector<FaultKind> kinds = {FaultKind::kNoSpace, FaultKind::kIoError};
    if (op == FileOp::kWrite) kinds.push_back(FaultKind::kShortWriteNoSpace);
    for (uint64_t n : CallsToFail(count, focus)) {
      for (FaultKind kind : kinds) {
        CountingFaults::Trigger t;
        t.op = op;
        t.site = site;
        t.nth = n;
        t.kind = kind;
        const RunResult r = RunWorkload(t);
        ++runs;
        if (r.fired) {
          ++fired;
        } else {
          not_fired += std::string(" ") + FileOpName(op) + "#" + std::to_string(n) + "/" + FaultKindName(kind);
        }
        if (!r.problems.empty()) {
          ++broken;
          std::string list;
          for (const auto& p : r.problems) list += "\n  - " + p;
          ADD_FAILURE() << FileOpName(op) << " #" << n << " of " << SiteName(site) << " failing with "
                        << FaultKindName(kind) << " (" << r.fired.value_or("the fault never fired") << "), after "
                        << r.acknowledged << " acknowledged and " << r.failed << " failed appends:" << list;
        }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string census_line;
  for (int op = 0; op < kFileOpCount; ++op) {
    if (uint64_t c = census.counts[static_cast<int>(site)][op]) {
      census_line += std::string(" ") + FileOpName(static_cast<FileOp>(op)) + "=" + std::to_string(c);
    }
  }
  std::cout << "[sweep " << SiteName(site) << "] workload: " << census.acknowledged << " appends, "
            << census.segments << " segments, " << census.groups_at_a_roll << " groups across a roll; calls:" << census_line << "; " << runs << " runs (" << fired
            << " faults fired), " << broken << " broken, " << seconds << " s"
            << (not_fired.empty() ? "" : "; not made:" + not_fired) << "\n";
  EXPECT_GT(fired, 0) << "no fault ever fired at " << SiteName(site);
}

// Issue 9: the flush that the writer makes just before rolling to a new segment failed with
// ENOSPC; the append after it in the same group had been decided against the dropped batch
// and was written as version 1 of a stream that has no version 0.
TEST(FaultInjection, AFailedFlushBeforeARollFailsEveryAppendDecidedAgainstIt) {
  ScratchDir scratch;
  const auto dir = scratch.path() / "data";
  const Options options = SmallOptions();
  CountingFaults faults;
  InstalledFaults installed(&faults);
  auto opened = Store::Open(dir, options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> store = std::move(opened).value();

  const auto gate_events = MakeEvents("filler", 1000, 1, 0, 40);
  const auto a1 = MakeEvents("orders", 0, 1, 1, 40);
  const auto a2 = MakeEvents("orders", 1, 1, 2, 12'000);
  // Fill the first segment so that, after the gate append, A1 fits and A1 + A2 does not.
  uint64_t offset = format::kSegmentHeaderSize;
  for (uint64_t v = 0;; ++v) {
    auto filler = MakeEvents("filler", v, 1, 0, 1000);
    const uint64_t bytes = BatchBytes("filler", filler);
    if (offset + bytes + BatchBytes("filler", gate_events) + BatchBytes("orders", a1) + 4096 > options.segment_size) break;
    ASSERT_TRUE(store->AppendSync("filler", ExpectedVersion::Any(), std::move(filler)).ok());
    offset += bytes;
  }
  offset += BatchBytes("filler", gate_events);
  ASSERT_LE(offset + BatchBytes("orders", a1), options.segment_size) << "A1 fits";
  ASSERT_GT(offset + BatchBytes("orders", a1) + BatchBytes("orders", a2), options.segment_size) << "A2 does not";

  // The gate's callback holds the writer until A1 and A2 are queued: one group decides both.
  std::promise<void> entered, gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  store->Append("filler", ExpectedVersion::Any(), gate_events, [&](AppendResult r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    entered.set_value();
    gate_open.wait();
  });
  entered.get_future().wait();
  std::promise<AppendResult> r1, r2;
  store->Append("orders", ExpectedVersion::NoStream(), a1, [&](AppendResult r) { r1.set_value(std::move(r)); });
  store->Append("orders", ExpectedVersion::Exact(StreamVersion(0)), a2,
                [&](AppendResult r) { r2.set_value(std::move(r)); });
  CountingFaults::Trigger fail_next_flush;
  fail_next_flush.op = FileOp::kWrite;
  fail_next_flush.site = Site::kGroupCommit;
  fail_next_flush.path_matches = IsSegmentFile;  // not the preallocator's spare
  fail_next_flush.nth = 1;
  fail_next_flush.kind = FaultKind::kNoSpace;
  faults.Arm(fail_next_flush);
  gate.set_value();
  const AppendResult first = r1.get_future().get();
  const AppendResult second = r2.get_future().get();
  SetFileFaults(nullptr);

  ASSERT_TRUE(faults.fired().has_value()) << "the flush before the roll was not failed";
  EXPECT_EQ(first.status().code(), Status::Code::kOutOfSpace) << "A1 NoStream: " << Describe(first);
  ASSERT_FALSE(second.ok()) << "A2 Exact(0) was acknowledged (" << Describe(second)
                            << ") though A1, the version 0 it expects, got out-of-space";
  EXPECT_EQ(second.status().code(), Status::Code::kWrongExpectedVersion) << second.status().ToString();
  EXPECT_EQ(second.status().actual_version(), std::nullopt) << "the stream does not exist";
  EXPECT_EQ(testing::SegmentFiles(dir).size(), 2u) << "the writer rolled to a new segment";

  // The stream is simply absent: not corrupt, not half there.
  auto read = store->ReadStream("orders", StreamVersion(0), 10);
  EXPECT_EQ(read.status().code(), Status::Code::kNotFound) << read.status().ToString();
  EXPECT_FALSE(store->GetStreamInfo("orders").has_value());
  LogRead log = ReadWholeLog(*store);
  EXPECT_TRUE(log.problems.empty()) << ::testing::PrintToString(log.problems);
  for (const SeenEvent& e : log.events) EXPECT_NE(e.stream, "orders") << "at position " << e.position.value;

  // Writes resume: the client's retries land where they should.
  auto again1 = store->AppendSync("orders", ExpectedVersion::NoStream(), a1);
  ASSERT_TRUE(again1.ok()) << again1.status().ToString();
  EXPECT_EQ(again1->first_version, StreamVersion(0));
  EXPECT_FALSE(again1->already_written);
  auto again2 = store->AppendSync("orders", ExpectedVersion::Exact(StreamVersion(0)), a2);
  ASSERT_TRUE(again2.ok()) << again2.status().ToString();
  EXPECT_EQ(again2->first_version, StreamVersion(1));

  store.reset();
  auto verified = VerifyStore(dir);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->ok()) << VerifyProblems(*verified);
  auto reopened = Store::Open(dir, options);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto orders = (*reopened)->ReadStream("orders", StreamVersion(0), 10);
  ASSERT_TRUE(orders.ok()) << orders.status().ToString();
  ASSERT_EQ(orders->size(), 2u);
  EXPECT_EQ((*orders)[0].id, a1[0].id);
  EXPECT_EQ((*orders)[1].id, a2[0].id);
  EXPECT_EQ((*orders)[1].data, a2[0].data);
}

// A retry of an append of the same group makes the writer flush the group so far before it
// compares (CheckRetry). When that flush fails with EIO the store stops accepting writes:
// "every later append gets the error" (docs/storage.md). The retry must not be written.
TEST(FaultInjection, NothingIsWrittenAfterAnIOErrorStopsTheStoreInTheMiddleOfAGroup) {
  for (const FileOp op : {FileOp::kWrite, FileOp::kSync}) {
    SCOPED_TRACE(std::string("EIO from ") + FileOpName(op));
    ScratchDir scratch;
    const auto dir = scratch.path() / "data";
    CountingFaults faults;
    InstalledFaults installed(&faults);
    auto opened = Store::Open(dir, SmallOptions());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<Store> store = std::move(opened).value();
    ASSERT_TRUE(store->AppendSync("before", ExpectedVersion::NoStream(), MakeEvents("before", 0, 3)).ok());

    std::promise<void> entered, gate;
    std::shared_future<void> gate_open = gate.get_future().share();
    store->Append("before", ExpectedVersion::Any(), MakeEvents("before", 3, 1), [&](AppendResult) {
      entered.set_value();
      gate_open.wait();
    });
    entered.get_future().wait();
    const GlobalPosition durable = store->DurablePosition();
    const auto a1 = MakeEvents("orders", 0, 2, 1);
    std::promise<AppendResult> first, retry, later;
    store->Append("orders", ExpectedVersion::NoStream(), a1, [&](AppendResult r) { first.set_value(std::move(r)); });
    store->Append("orders", ExpectedVersion::NoStream(), a1, [&](AppendResult r) { retry.set_value(std::move(r)); });
    store->Append("other", ExpectedVersion::Any(), MakeEvents("other", 0, 1),
                  [&](AppendResult r) { later.set_value(std::move(r)); });
    CountingFaults::Trigger fail_next;
    fail_next.op = op;
    fail_next.site = Site::kGroupCommit;
    fail_next.kind = FaultKind::kIoError;
    faults.Arm(fail_next);
    gate.set_value();
    const AppendResult r1 = first.get_future().get();
    const AppendResult r2 = retry.get_future().get();
    const AppendResult r3 = later.get_future().get();
    SetFileFaults(nullptr);

    ASSERT_TRUE(faults.fired().has_value());
    EXPECT_EQ(r1.status().code(), Status::Code::kIOError) << Describe(r1);
    EXPECT_FALSE(r2.ok()) << "the retry in the same group was written and acknowledged (" << Describe(r2)
                          << ") after the store had answered: " << r1.status().ToString();
    EXPECT_EQ(r3.status().code(), Status::Code::kIOError) << Describe(r3);
    EXPECT_EQ(store->DurablePosition(), durable) << "nothing was published after the I/O error";
    EXPECT_FALSE(store->GetStreamInfo("orders").has_value());
    auto after = store->AppendSync("other", ExpectedVersion::Any(), MakeEvents("other", 0, 1, 2));
    EXPECT_EQ(after.status().code(), Status::Code::kIOError) << Describe(after);

    store.reset();
    auto verified = VerifyStore(dir);
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_TRUE(verified->ok()) << VerifyProblems(*verified);
    auto reopened = Store::Open(dir, SmallOptions());
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    auto again = (*reopened)->AppendSync("orders", ExpectedVersion::NoStream(), a1);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
  }
}

// Segment::Activate renames spare-N.ready to <first>.seg, but the writer goes on with the
// File it opened under the spare's name, so the error of a later write names a file that
// no longer exists (and the fault hook sees that name too).
TEST(FaultInjection, AnErrorWritingARolledSegmentNamesTheSegmentFile) {
  ScratchDir scratch;
  const auto dir = scratch.path() / "data";
  CountingFaults faults;
  InstalledFaults installed(&faults);
  auto opened = Store::Open(dir, SmallOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> store = std::move(opened).value();
  for (uint64_t v = 0; testing::SegmentFiles(dir).size() < 2; ++v) {
    ASSERT_LT(v, 100u) << "no roll";
    ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", v, 1, 0, 4000)).ok());
  }
  CountingFaults::Trigger fail_next;
  fail_next.op = FileOp::kWrite;
  fail_next.site = Site::kGroupCommit;
  fail_next.kind = FaultKind::kNoSpace;
  faults.Arm(fail_next);
  const AppendResult r = store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 1000, 1));
  SetFileFaults(nullptr);
  ASSERT_EQ(r.status().code(), Status::Code::kOutOfSpace) << Describe(r);
  const std::string segment = testing::SegmentFiles(dir).back().filename().string();
  EXPECT_NE(r.status().message().find(segment), std::string::npos)
      << "the error names another file than the segment " << segment << ": " << r.status().message();
}

// Scavenge: every file call it makes (chunk writes, syncs, the index, the unlink, link and
// renames, the recycled spare's zero-fill), failed in turn with EIO, ENOSPC or a short
// write. The store keeps serving every kept event, identical, opens again with the same,
// verifies clean, and a scavenge without faults then finishes.
class ScavengeEnded : public EventListener {
 public:
  void OnScavengeFinished(const ScavengeStatus& s) override {
    std::lock_guard lock(mu_);
    last_ = s;
    cv_.notify_all();
  }
  ScavengeStatus Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return last_.has_value(); });
    ScavengeStatus s = *last_;
    last_.reset();
    return s;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ScavengeStatus> last_;
};

std::vector<std::string> ServedLog(const Store& store) {
  std::vector<std::string> out;
  auto n = store.ReadAll(GlobalPosition(0), SIZE_MAX, [&](const EventView& e) {
    // The data as its hash: a failure prints short lines.
    out.push_back(std::to_string(e.position.value) + " " + std::string(e.stream) + " " +
                  std::to_string(e.version.value) + " " + std::to_string(std::hash<std::string_view>()(e.data)));
    return true;
  });
  if (!n.ok()) out.push_back("error: " + n.status().ToString());
  return out;
}

TEST(FaultInjection, AFaultAtAnyFileCallOfAScavengeLosesNothingKept) {
  testing::TempDir work;
  const auto pristine = work.path() / "pristine";
  std::vector<std::string> kept;
  {
    auto store = Store::Open(pristine, SmallOptions());
    ASSERT_TRUE(store.ok());
    for (int r = 0; r < 12; ++r) {
      for (const std::string s : {"keep", "gone", "cut"}) {
        ASSERT_TRUE((*store)->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, r * 4, 4, 0, 400)).ok());
      }
    }
    ASSERT_TRUE((*store)->DeleteStreamSync("gone", ExpectedVersion::Any(), false).ok());
    ASSERT_TRUE((*store)->TruncateStreamSync("cut", StreamVersion(30)).ok());
    kept = ServedLog(**store);
  }
  auto open = [&](const std::filesystem::path& dir, ScavengeEnded* ended) {
    Options o = SmallOptions();
    o.listener = ended;
    o.scavenge_retire_after = std::chrono::milliseconds(0);
    auto store = Store::Open(dir, o);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  };
  // How many file calls a whole scavenge makes.
  uint64_t total = 0;
  {
    const auto dir = work.path() / "count";
    std::filesystem::copy(pristine, dir, std::filesystem::copy_options::recursive);
    ScavengeEnded ended;
    auto store = open(dir, &ended);
    ASSERT_NE(store, nullptr);
    testing::ScriptedFaults count([&](FileOp, const std::filesystem::path&) {
      ++total;
      return InjectedFault{};
    });
    ASSERT_TRUE(store->StartScavenge().ok());
    ASSERT_EQ(ended.Wait().state, ScavengeStatus::State::kFinished);
  }
  ASSERT_GT(total, 10u);
  int failed_scavenges = 0;
  // Every call when there are few; else an even sample of 150 of them, the last one included.
  const uint64_t stride = std::max<uint64_t>(1, total / 150);
  for (uint64_t n = 1; n <= total; n = (n + stride <= total || n == total) ? n + stride : total) {
    for (const InjectedFault fault : {InjectedFault{EIO, false}, InjectedFault{ENOSPC, false}, InjectedFault{EIO, true}}) {
      SCOPED_TRACE("call " + std::to_string(n) + " of " + std::to_string(total) + ", errno " +
                   std::to_string(fault.error) + (fault.short_write ? " (short write)" : ""));
      const auto dir = work.path() / "round";
      std::filesystem::remove_all(dir);
      std::filesystem::copy(pristine, dir, std::filesystem::copy_options::recursive);
      ScavengeEnded ended;
      auto store = open(dir, &ended);
      ASSERT_NE(store, nullptr);
      ScavengeStatus status;
      {
        uint64_t calls = 0;
        testing::ScriptedFaults faults([&](FileOp op, const std::filesystem::path&) {
          if (++calls != n || (fault.short_write && op != FileOp::kWrite)) return InjectedFault{};
          return fault;
        });
        ASSERT_TRUE(store->StartScavenge().ok());
        status = ended.Wait();
      }
      if (status.state == ScavengeStatus::State::kFailed) ++failed_scavenges;
      EXPECT_EQ(ServedLog(*store), kept) << "while open";
      store.reset();
      store = open(dir, &ended);
      ASSERT_NE(store, nullptr);
      EXPECT_EQ(ServedLog(*store), kept) << "after reopening";
      ASSERT_TRUE(store->StartScavenge().ok());
      EXPECT_EQ(ended.Wait().state, ScavengeStatus::State::kFinished);
      EXPECT_EQ(ServedLog(*store), kept) << "after a scavenge without faults";
      store.reset();
      auto report = VerifyStore(dir);
      ASSERT_TRUE(report.ok());
      EXPECT_EQ(VerifyProblems(*report), "");
      if (HasFailure()) return;
    }
  }
  std::cout << "[sweep scavenge] " << total << " file calls per scavenge, each failed 3 ways; " << failed_scavenges
            << " scavenges failed, none lost a kept event\n";
  EXPECT_GT(failed_scavenges, 0);
}

INSTANTIATE_TEST_SUITE_P(FaultInjection, FaultInjectionSweep,
                         ::testing::Values(Site::kOpen, Site::kGroupCommit, Site::kRoll, Site::kPreallocator,
                                           Site::kIndexJob, Site::kBackup),
                         [](const ::testing::TestParamInfo<Site>& info) {
                           // "group-commit" -> "GroupCommit"
                           std::string name;
                           bool upper = true;
                           for (char c : std::string(SiteName(info.param))) {
                             if (c == '-') {
                               upper = true;
                               continue;
                             }
                             name += upper ? static_cast<char>(std::toupper(c)) : c;
                             upper = false;
                           }
                           return name;
                         });

}  // namespace
}  // namespace esd::storage
