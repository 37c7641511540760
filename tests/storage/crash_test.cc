// Crash tests: a real process (storage_crash_writer, see crash_writer.cc) appends with
// group commit until it is killed with SIGKILL at a point chosen by the number of
// acknowledgements read so far (never by time). Then this process reopens the store and
// checks what a process crash must not break:
//   - every acknowledged append is there, at the acknowledged positions and versions, with
//     the bytes that were written;
//   - $all is dense (positions 0..N-1) and every stream's versions are dense;
//   - no batch is visible in part, acknowledged or not;
//   - what one recovery made visible is still there, unchanged, after every later crash;
//   - ReadStream and GetStreamInfo agree with ReadAll.
// When a round fails, the damaged data directory (and a copy of its tail as it was before
// the checker reopened it) is kept under /tmp/crash-evidence-N.
//
// ESD_CRASH_SEED=<n> repeats a run; the seed is part of every failure message.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crash_recipe.h"
#include "storage/store.h"
#include "storage/verify.h"
#include "test_util.h"

#ifndef ESD_CRASH_WRITER
#error "ESD_CRASH_WRITER (the path of storage_crash_writer) must be defined by the build"
#endif

namespace esd::storage {
namespace {

namespace fs = std::filesystem;

using crash::BatchMetadata;
using crash::CrashEvent;
using crash::DataSize;
using crash::kStreams;
using crash::Mix;
using crash::StreamName;

int StreamIndex(std::string_view name) {
  for (int s = 0; s < kStreams; ++s) {
    if (name == StreamName(s)) return s;
  }
  return -1;
}

bool ParseMetadata(std::string_view m, uint64_t* first, uint64_t* count, uint64_t* salt) {
  std::string text(m);
  unsigned long long f = 0, c = 0, s = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "b=%llu/%llu s=%llu%n", &f, &c, &s, &consumed) != 3) return false;
  if (static_cast<size_t>(consumed) != text.size() || c == 0) return false;
  *first = f;
  *count = c;
  *salt = s;
  return BatchMetadata(f, c, s) == text;  // canonical form only
}

std::string Hex(std::string_view bytes, size_t max = 16) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    out += kDigits[static_cast<uint8_t>(bytes[i]) >> 4];
    out += kDigits[static_cast<uint8_t>(bytes[i]) & 15];
  }
  if (bytes.size() > max) out += "...";
  return out;
}

// --- What the test knows ---------------------------------------------------------------------

struct AckedBatch {
  uint64_t count = 0;
  uint64_t first_position = 0;
  uint64_t salt = 0;
  int round = 0;
};

// One event as a recovery showed it; later recoveries must show the same.
struct Fingerprint {
  int stream = -1;
  uint64_t version = 0;
  uint64_t first_version = 0;
  uint64_t count = 0;
  uint64_t salt = 0;
  bool operator==(const Fingerprint&) const = default;
};

std::string Describe(const Fingerprint& f) {
  return StreamName(f.stream) + "@" + std::to_string(f.version) + " (" +
         BatchMetadata(f.first_version, f.count, f.salt) + ")";
}

struct Model {
  // (stream, first_version) -> the acknowledged append.
  std::map<std::pair<int, uint64_t>, AckedBatch> acked;
  // What the last recovery showed, by position.
  std::vector<Fingerprint> history;
  // Every line the writers printed, with its round, for the evidence directory.
  std::vector<std::string> log;
};

struct VerifyStats {
  uint64_t events = 0;
  uint64_t batches = 0;
  uint64_t acked_checked = 0;
  uint64_t unacked_present = 0;
  uint64_t segments = 0;
  uint64_t torn_bytes = 0;  // what this recovery cut off as an unacknowledged torn tail
};

// --- The writer process --------------------------------------------------------------------

struct Ack {
  int stream = -1;
  uint64_t first_version = 0;
  uint64_t count = 0;
  uint64_t first_position = 0;
};

bool ParseAck(const std::string& line, Ack* ack) {
  std::istringstream in(line);
  std::string tag, stream;
  in >> tag >> stream >> ack->first_version >> ack->count >> ack->first_position;
  if (!in || tag != "ACK") return false;
  std::string rest;
  if (in >> rest) return false;
  ack->stream = StreamIndex(stream);
  return ack->stream >= 0 && ack->count >= 1;
}

class WriterProcess {
 public:
  WriterProcess(const fs::path& dir, uint64_t seed) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    // Everything the child needs is built before fork: after it only async-signal-safe calls.
    std::string a0 = ESD_CRASH_WRITER, a1 = dir.string(), a2 = std::to_string(seed);
    char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that died
      ::dup2(p[1], 1);                     // the copy on fd 1 is not close-on-exec
      ::execv(argv[0], argv);
      _exit(127);
    }
    ::close(p[1]);
    fd_ = p[0];
  }
  ~WriterProcess() {
    if (pid_ > 0) {
      Kill();
      Wait();
    }
    if (fd_ >= 0) ::close(fd_);
  }
  WriterProcess(const WriterProcess&) = delete;
  WriterProcess& operator=(const WriterProcess&) = delete;

  void Kill() {
    if (!killed_ && pid_ > 0) ::kill(pid_, SIGKILL);
    killed_ = true;
  }
  bool killed() const { return killed_; }

  // The next complete lines; empty at end of file. A writer that prints nothing for
  // `watchdog_ms` is taken as hung (that is a failure, not a synchronisation).
  std::vector<std::string> ReadLines(int watchdog_ms, bool* eof, bool* hung) {
    *eof = false;
    *hung = false;
    std::vector<std::string> lines;
    while (lines.empty()) {
      pollfd pfd{fd_, POLLIN, 0};
      int r = ::poll(&pfd, 1, watchdog_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) {
        *hung = true;
        return lines;
      }
      char buf[65536];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        *eof = true;
        if (!partial_.empty()) lines.push_back(std::move(partial_));  // a cut-off last line
        partial_.clear();
        return lines;
      }
      partial_.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines.push_back(partial_.substr(start, nl - start));
      }
      partial_.erase(0, start);
    }
    return lines;
  }

  // waitpid; returns the raw status.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool killed_ = false;
  std::string partial_;
};

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// --- Evidence ----------------------------------------------------------------------------------

// The segment files and everything else of the store, but of the .seg/.idx files only the
// last `keep_segments` (the tail is where recovery works). Cheap enough for every round.
void CopyStoreTail(const fs::path& from, const fs::path& to, size_t keep_segments) {
  std::set<std::string> keep_stems;
  std::error_code ec;
  if (fs::exists(from / "segments", ec)) {
    std::vector<fs::path> segs = testing::SegmentFiles(from);
    for (size_t i = segs.size() > keep_segments ? segs.size() - keep_segments : 0;
         i < segs.size(); ++i) {
      keep_stems.insert(segs[i].stem().string());
    }
  }
  for (auto it = fs::recursive_directory_iterator(from, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), from);
    if (it->is_directory()) {
      fs::create_directories(to / rel);
      continue;
    }
    const std::string ext = it->path().extension().string();
    if ((ext == ".seg" || ext == ".idx") && keep_stems.count(it->path().stem().string()) == 0) {
      continue;
    }
    fs::create_directories((to / rel).parent_path());
    fs::copy_file(it->path(), to / rel, fs::copy_options::overwrite_existing, ec);
  }
}

fs::path SaveEvidence(const fs::path& data_dir, const fs::path& pre_open_copy, const Model& model,
                      const std::vector<std::string>& problems, const std::string& header) {
  fs::path out;
  for (int n = 1;; ++n) {
    out = "/tmp/crash-evidence-" + std::to_string(n);
    std::error_code ec;
    if (fs::create_directory(out, ec)) break;
  }
  std::error_code ec;
  fs::copy(data_dir, out / "data-after-reopen", fs::copy_options::recursive, ec);
  fs::copy(pre_open_copy, out / "tail-before-reopen", fs::copy_options::recursive, ec);
  std::ofstream(out / "writer-output.txt") << [&] {
    std::string all;
    for (const std::string& l : model.log) all += l + "\n";
    return all;
  }();
  std::ofstream report(out / "problems.txt");
  report << header << "\n";
  for (const std::string& p : problems) report << p << "\n";
  return out;
}

// --- The checker -------------------------------------------------------------------------------

bool SameEvent(const EventView& a, const EventView& b) {
  return a.position == b.position && a.version == b.version && a.id == b.id &&
         a.timestamp == b.timestamp && a.stream == b.stream && a.type == b.type &&
         a.content_type == b.content_type && a.metadata == b.metadata && a.data == b.data;
}

std::string Where(const EventView& e) {
  return "position " + std::to_string(e.position.value) + " (" + std::string(e.stream) + "@" +
         std::to_string(e.version.value) + ")";
}

// Reopens the store and checks it against the model; then records what it saw as the new
// history. Returns the problems found (empty: all good).
std::vector<std::string> VerifyStore(const fs::path& dir, Model& model, std::mt19937_64& rng,
                                     VerifyStats* stats) {
  std::vector<std::string> problems;
  auto problem = [&](std::string p) { problems.push_back(std::move(p)); };

  // Offline verify first, on the files as the crash left them: a crash is no damage, so it
  // must find no problem (a torn tail or a missing index is a note), and it never writes.
  auto verified = ::esd::storage::VerifyStore(dir);
  if (!verified.ok()) {
    problem("offline verify after the crash could not run: " + verified.status().ToString());
  } else {
    for (const auto& p : verified->problems) {
      problem("offline verify after the crash: " + p.file + " offset " + std::to_string(p.offset) + ": " + p.what);
    }
  }
  auto opened = Store::Open(dir, testing::SmallOptions());
  if (!opened.ok()) {
    problem("reopening the store failed: " + opened.status().ToString());
    return problems;
  }
  if (verified.ok() && opened.value()->recovery().notes != verified->notes) {
    problem("open's notes differ from verify's");
  }
  std::unique_ptr<Store> store = std::move(opened.value());
  const RecoveryReport& rep = store->recovery();

  // $all, in chunks.
  std::vector<EventView> all;
  for (;;) {
    const size_t before = all.size();
    Result<size_t> r = store->ReadAll(GlobalPosition(before), 4096, [&](const EventView& e) {
      all.push_back(e);
      return true;
    });
    if (!r.ok()) {
      problem("ReadAll from " + std::to_string(before) + " failed: " + r.status().ToString());
      return problems;
    }
    if (r.value() != all.size() - before) {
      problem("ReadAll from " + std::to_string(before) + " returned " + std::to_string(r.value()) +
              " but visited " + std::to_string(all.size() - before));
    }
    if (all.size() == before) break;
  }
  const uint64_t n = all.size();
  if (store->DurablePosition().value != n) {
    problem("DurablePosition " + std::to_string(store->DurablePosition().value) + " but $all has " +
            std::to_string(n) + " events");
  }
  if (rep.end_position.value != n) {
    problem("recovery end_position " + std::to_string(rep.end_position.value) + " but $all has " +
            std::to_string(n) + " events");
  }

  // Walk $all: density, batch completeness, bytes.
  struct FoundBatch {
    uint64_t count, first_position, salt;
  };
  std::map<std::pair<int, uint64_t>, FoundBatch> found;
  std::vector<Fingerprint> now(n);
  std::vector<std::vector<size_t>> by_stream(kStreams);
  struct OpenBatch {
    bool active = false;
    int stream = -1;
    uint64_t first = 0, count = 0, salt = 0, seen = 0, first_position = 0;
    TimestampMicros timestamp = 0;
  } open;
  TimestampMicros last_timestamp = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const EventView& e = all[i];
    if (e.position.value != i) {
      problem("$all is not dense: event " + std::to_string(i) + " has position " +
              std::to_string(e.position.value));
      break;  // everything after is shifted; one message is enough
    }
    const int s = StreamIndex(e.stream);
    uint64_t first = 0, count = 0, salt = 0;
    if (s < 0 || !ParseMetadata(e.metadata, &first, &count, &salt)) {
      problem("unknown event at " + Where(e) + ": metadata '" + std::string(e.metadata) + "'");
      open.active = false;
      continue;
    }
    const uint64_t v = e.version.value;
    if (v < first || v >= first + count) {
      problem("event at " + Where(e) + " says it is in batch " + std::string(e.metadata));
    }
    now[i] = Fingerprint{s, v, first, count, salt};
    by_stream[s].push_back(i);
    if (by_stream[s].size() - 1 != v) {
      problem("versions of " + StreamName(s) + " are not dense: " + Where(e) + " is its event #" +
              std::to_string(by_stream[s].size() - 1));
    }
    if (e.timestamp < last_timestamp) {
      problem("timestamp goes back at " + Where(e) + ": " + std::to_string(e.timestamp) + " < " +
              std::to_string(last_timestamp));
    }
    last_timestamp = std::max(last_timestamp, e.timestamp);

    // Bytes.
    const EventData want = CrashEvent(StreamName(s), v, first, count, salt);
    if (e.id != want.id) problem("id differs at " + Where(e) + ": " + e.id.ToString());
    if (e.type != want.type) problem("type differs at " + Where(e) + ": '" + std::string(e.type) + "'");
    if (e.content_type != want.content_type) {
      problem("content type differs at " + Where(e) + ": '" + std::string(e.content_type) + "'");
    }
    if (e.data != want.data) {
      problem("data differs at " + Where(e) + ": " + std::to_string(e.data.size()) + " bytes " +
              Hex(e.data) + ", want " + std::to_string(want.data.size()) + " bytes " + Hex(want.data));
    }

    // Batch membership: a batch is `count` consecutive positions of one stream.
    if (open.active && (open.stream != s || open.first != first || open.count != count ||
                        open.salt != salt)) {
      problem("partial batch: " + StreamName(open.stream) + " " +
              BatchMetadata(open.first, open.count, open.salt) + " from position " +
              std::to_string(open.first_position) + " has only " + std::to_string(open.seen) +
              " events before " + Where(e));
      open.active = false;
    }
    if (!open.active) {
      if (v != first) {
        problem("batch " + StreamName(s) + " " + std::string(e.metadata) +
                " is missing its start: first event present is " + Where(e));
      }
      open = OpenBatch{true, s, first, count, salt, 0, i, e.timestamp};
    }
    if (v != first + open.seen) {
      problem("batch " + StreamName(s) + " " + std::string(e.metadata) + " out of order at " +
              Where(e));
    }
    if (e.timestamp != open.timestamp) {
      problem("events of batch " + StreamName(s) + " " + std::string(e.metadata) +
              " have different timestamps at " + Where(e));
    }
    if (++open.seen == count) {
      found[{s, first}] = FoundBatch{count, open.first_position, salt};
      open.active = false;
    }
  }
  if (open.active) {
    problem("partial batch at the end of $all: " + StreamName(open.stream) + " " +
            BatchMetadata(open.first, open.count, open.salt) + " from position " +
            std::to_string(open.first_position) + " has only " + std::to_string(open.seen) +
            " events");
  }

  // What the last recovery showed must still be there, unchanged.
  if (n < model.history.size()) {
    problem("the store shrank: the last recovery had " + std::to_string(model.history.size()) +
            " events, this one " + std::to_string(n));
  }
  uint64_t changed = 0;
  for (uint64_t i = 0; i < std::min<uint64_t>(n, model.history.size()); ++i) {
    if (!(now[i] == model.history[i]) && changed++ < 5) {
      problem("position " + std::to_string(i) + " was " + Describe(model.history[i]) +
              " after the last recovery and is now " + Describe(now[i]));
    }
  }

  // Every acknowledged append, ever.
  uint64_t acked_events = 0;
  for (const auto& [key, ack] : model.acked) {
    const std::string what = StreamName(key.first) + " " + std::to_string(key.second) + "/" +
                             std::to_string(ack.count) + " acknowledged at position " +
                             std::to_string(ack.first_position) + " in round " +
                             std::to_string(ack.round) + " (salt " + std::to_string(ack.salt) + ")";
    auto it = found.find(key);
    if (it == found.end()) {
      std::string there;
      if (ack.first_position < n) there = "; position " + std::to_string(ack.first_position) +
                                          " now holds " + Describe(now[ack.first_position]);
      else there = "; the store ends at " + std::to_string(n);
      problem("acknowledged append lost: " + what + there);
      continue;
    }
    if (it->second.count != ack.count || it->second.first_position != ack.first_position ||
        it->second.salt != ack.salt) {
      problem("acknowledged append " + what + " is found as " +
              BatchMetadata(key.second, it->second.count, it->second.salt) + " at position " +
              std::to_string(it->second.first_position));
      continue;
    }
    acked_events += ack.count;
    ++stats->acked_checked;
  }

  // ReadStream and GetStreamInfo agree with $all.
  for (int s = 0; s < kStreams; ++s) {
    const std::string name = StreamName(s);
    const std::vector<size_t>& idx = by_stream[s];
    std::optional<StreamInfo> info = store->GetStreamInfo(name);
    if (idx.empty()) {
      if (info) problem("GetStreamInfo(" + name + ") has a stream that $all does not show");
      auto r = store->ReadStream(name, StreamVersion(0), 10);
      if (r.ok() || r.status().code() != Status::Code::kNotFound) {
        problem("ReadStream of the empty " + name + " did not return kNotFound");
      }
      continue;
    }
    const EventView& last = all[idx.back()];
    if (!info) {
      problem("GetStreamInfo(" + name + ") is empty, $all has " + std::to_string(idx.size()));
    } else if (info->event_count != idx.size() || info->last_version != last.version ||
               info->last_position != last.position) {
      problem("GetStreamInfo(" + name + "): " + std::to_string(info->event_count) + " events, last " +
              std::to_string(info->last_version.value) + " at " +
              std::to_string(info->last_position.value) + "; $all: " + std::to_string(idx.size()) +
              " events, last at " + std::to_string(last.position.value));
    }
    std::uniform_int_distribution<size_t> chunk_dist(1, 700);
    size_t got = 0;
    while (got < idx.size()) {
      const size_t chunk = chunk_dist(rng);
      auto r = store->ReadStream(name, StreamVersion(got), chunk);
      if (!r.ok()) {
        problem("ReadStream(" + name + ", " + std::to_string(got) + ") failed: " +
                r.status().ToString());
        break;
      }
      const size_t expect = std::min(chunk, idx.size() - got);
      if (r.value().size() != expect) {
        problem("ReadStream(" + name + ", " + std::to_string(got) + ", " + std::to_string(chunk) +
                ") returned " + std::to_string(r.value().size()) + " events, want " +
                std::to_string(expect));
        break;
      }
      for (const EventView& e : r.value()) {
        if (!SameEvent(e, all[idx[got]])) {
          problem("ReadStream(" + name + ") differs from $all at version " + std::to_string(got) +
                  ": " + Where(e) + " vs " + Where(all[idx[got]]));
        }
        ++got;
      }
    }
    auto past = store->ReadStream(name, StreamVersion(idx.size()), 10);
    if (!past.ok() || !past.value().empty()) {
      problem("ReadStream(" + name + ") past the end is not an empty result");
    }
    auto back = store->ReadStream(name, last.version, 37, Direction::kBackward);
    if (!back.ok()) {
      problem("backward ReadStream(" + name + ") failed: " + back.status().ToString());
    } else {
      const size_t expect = std::min<size_t>(37, idx.size());
      if (back.value().size() != expect) {
        problem("backward ReadStream(" + name + ") returned " +
                std::to_string(back.value().size()) + " events, want " + std::to_string(expect));
      } else {
        for (size_t k = 0; k < expect; ++k) {
          if (!SameEvent(back.value()[k], all[idx[idx.size() - 1 - k]])) {
            problem("backward ReadStream(" + name + ") differs from $all at " +
                    Where(back.value()[k]));
            break;
          }
        }
      }
    }
  }

  // ReadAll from the middle.
  if (n > 0) {
    const uint64_t from = std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
    auto r = store->ReadAll(GlobalPosition(from), 100);
    if (!r.ok()) {
      problem("ReadAll from " + std::to_string(from) + " failed: " + r.status().ToString());
    } else if (r.value().size() != std::min<uint64_t>(100, n - from)) {
      problem("ReadAll from " + std::to_string(from) + " returned " +
              std::to_string(r.value().size()) + " events");
    } else {
      for (size_t k = 0; k < r.value().size(); ++k) {
        if (!SameEvent(r.value()[k], all[from + k])) {
          problem("ReadAll from " + std::to_string(from) + " differs at " + Where(r.value()[k]));
          break;
        }
      }
    }
  }

  stats->events = n;
  stats->batches = found.size();
  stats->unacked_present = n - std::min(n, acked_events);
  stats->segments = testing::SegmentFiles(dir).size();
  stats->torn_bytes = rep.torn_bytes_discarded;
  model.history = std::move(now);
  return problems;
}

// --- A run of rounds ---------------------------------------------------------------------------

uint64_t TestSeed() {
  if (const char* env = std::getenv("ESD_CRASH_SEED")) return std::strtoull(env, nullptr, 10);
  return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

// Decides after each acknowledgement (and once before the first, with acks = 0) whether to
// kill the writer now.
using KillPolicy = std::function<bool(uint64_t acks)>;

struct RunTotals {
  int rounds = 0;
  uint64_t acks = 0;
  uint64_t acked_checked = 0;  // last round: acknowledged appends found intact
  uint64_t events = 0;
  uint64_t unacked_present = 0;
  uint64_t segments = 0;
  int torn_recoveries = 0;  // recoveries that cut off a torn tail
};

class CrashTest : public ::testing::Test {
 protected:
  // One round: start the writer, kill it when `policy` says so, read the acknowledgements
  // it had already sent, then reopen and check. False when the round failed.
  bool Round(int round, uint64_t writer_seed, const KillPolicy& policy, RunTotals* totals) {
    const std::string tag = "round " + std::to_string(round) + " writer seed " +
                            std::to_string(writer_seed);
    SCOPED_TRACE(tag);
    bool ok = true;
    std::vector<std::string> round_problems;
    {
      WriterProcess writer(dir_.path(), writer_seed);
      uint64_t acks = 0;
      if (policy(0)) writer.Kill();
      for (;;) {
        bool eof = false, hung = false;
        std::vector<std::string> lines = writer.ReadLines(60'000, &eof, &hung);
        if (hung) {
          round_problems.push_back("the writer printed nothing for 60 s (hung?); killed it");
          writer.Kill();
          continue;
        }
        for (const std::string& line : lines) {
          model_.log.push_back(std::to_string(round) + ": " + line);
          Ack ack;
          if (ParseAck(line, &ack)) {
            ++acks;
            ++totals->acks;
            auto [it, inserted] = model_.acked.try_emplace(
                {ack.stream, ack.first_version},
                AckedBatch{ack.count, ack.first_position, writer_seed, round});
            if (!inserted) {
              round_problems.push_back("version " + std::to_string(ack.first_version) + " of " +
                                       StreamName(ack.stream) + " acknowledged again (" + line +
                                       "), first in round " + std::to_string(it->second.round));
            }
            if (!writer.killed() && policy(acks)) writer.Kill();
          } else if (line.rfind("OPEN ", 0) != 0) {
            round_problems.push_back("writer: " + line);
          }
        }
        if (eof) break;
      }
      const int status = writer.Wait();
      if (!writer.killed() || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        round_problems.push_back("the writer ended on its own: " + DescribeStatus(status));
      }
    }

    // A copy of the tail as the crash left it, before the checker's recovery touches it.
    const fs::path pre_open = scratch_.path() / "tail-before-reopen";
    std::error_code ec;
    fs::remove_all(pre_open, ec);
    CopyStoreTail(dir_.path(), pre_open, 3);

    VerifyStats stats;
    std::vector<std::string> problems = VerifyStore(dir_.path(), model_, rng_, &stats);
    problems.insert(problems.begin(), round_problems.begin(), round_problems.end());
    ++totals->rounds;
    totals->acked_checked = stats.acked_checked;
    totals->events = stats.events;
    totals->unacked_present = stats.unacked_present;
    totals->segments = stats.segments;
    if (stats.torn_bytes > 0) ++totals->torn_recoveries;
    if (!problems.empty()) {
      ok = false;
      const std::string header = "test seed " + std::to_string(seed_) + ", " + tag + ": " +
                                 std::to_string(problems.size()) + " problems";
      const fs::path evidence = SaveEvidence(dir_.path(), pre_open, model_, problems, header);
      std::string text = header + " (evidence kept in " + evidence.string() + ")";
      for (size_t i = 0; i < problems.size() && i < 30; ++i) text += "\n  " + problems[i];
      if (problems.size() > 30) text += "\n  ...";
      ADD_FAILURE() << text;
    }
    return ok;
  }

  uint64_t seed_ = TestSeed();
  std::mt19937_64 rng_{seed_};
  testing::TempDir dir_;      // the store
  testing::TempDir scratch_;  // the pre-reopen copy of the tail
  Model model_;
};

#define ESD_CRASH_SEED_TRACE() \
  SCOPED_TRACE("test seed " + std::to_string(seed_) + " (rerun with ESD_CRASH_SEED=" + \
               std::to_string(seed_) + ")")

TEST_F(CrashTest, AcknowledgedAppendsSurviveKill9) {
  ESD_CRASH_SEED_TRACE();
  constexpr int kRounds = 30;
  RunTotals totals;
  for (int round = 1; round <= kRounds; ++round) {
    const uint64_t target = std::uniform_int_distribution<uint64_t>(0, 300)(rng_);
    const uint64_t writer_seed = rng_() >> 16;
    if (!Round(round, writer_seed, [&](uint64_t acks) { return acks >= target; }, &totals)) break;
  }
  std::cout << "[ crash    ] seed " << seed_ << ": " << totals.rounds << " rounds, " << totals.acks
            << " acknowledged appends, " << totals.acked_checked
            << " checked intact after the last crash; " << totals.events << " events ("
            << totals.unacked_present << " in unacknowledged batches) in " << totals.segments
            << " segments; " << totals.torn_recoveries << " recoveries cut a torn tail\n";
  if (!HasFailure()) {
    EXPECT_EQ(totals.acked_checked, model_.acked.size());
  }
  // The segments are 64 KiB: the run must have crossed many segment boundaries.
  if (totals.rounds == kRounds) {
    EXPECT_GE(totals.segments, 3u);
  }

  // The store still takes appends after the last crash.
  if (!HasFailure()) {
    auto opened = Store::Open(dir_.path(), testing::SmallOptions());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = *opened.value();
    for (int s = 0; s < kStreams; ++s) {
      const std::string name = StreamName(s);
      std::optional<StreamInfo> info = store.GetStreamInfo(name);
      const uint64_t next = info ? info->last_version.value + 1 : 0;
      std::vector<EventData> events;
      for (uint64_t k = 0; k < 3; ++k) events.push_back(CrashEvent(name, next + k, next, 3, 1));
      AppendResult r = store.AppendSync(
          name, info ? ExpectedVersion::Exact(info->last_version) : ExpectedVersion::NoStream(),
          std::move(events));
      ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
      EXPECT_EQ(r.value().first_version.value, next);
      auto read = store.ReadStream(name, StreamVersion(next), 10);
      ASSERT_TRUE(read.ok()) << read.status().ToString();
      ASSERT_EQ(read.value().size(), 3u);
      EXPECT_EQ(read.value()[2].data, CrashEvent(name, next + 2, next, 3, 1).data);
    }
  }
}

// Kills the writer right when the segment directory changes (a segment was created,
// sealed or indexed), or one or two acknowledgements later.
TEST_F(CrashTest, AcknowledgedAppendsSurviveKill9DuringSegmentRollover) {
  ESD_CRASH_SEED_TRACE();
  constexpr int kRounds = 15;
  auto listing = [&] {
    std::set<std::string> names;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir_.path() / "segments", ec);
         it != fs::directory_iterator(); it.increment(ec)) {
      names.insert(it->path().filename().string());
    }
    return names;
  };
  RunTotals totals;
  int killed_at_rollover = 0;
  for (int round = 1; round <= kRounds; ++round) {
    const uint64_t extra = std::uniform_int_distribution<uint64_t>(0, 2)(rng_);
    const uint64_t writer_seed = rng_() >> 16;
    std::optional<std::set<std::string>> baseline;
    std::optional<uint64_t> changed_at;
    auto policy = [&](uint64_t acks) {
      if (acks == 0) return false;
      if (!changed_at) {
        std::set<std::string> names = listing();
        if (!baseline) {
          baseline = std::move(names);
        } else if (names != *baseline) {
          changed_at = acks;
        }
      }
      if (changed_at) return acks >= *changed_at + extra;
      return acks >= 3000;  // never saw a rollover: stop anyway (counted below)
    };
    if (!Round(round, writer_seed, policy, &totals)) break;
    if (changed_at) ++killed_at_rollover;
  }
  std::cout << "[ crash    ] seed " << seed_ << ": " << totals.rounds << " rounds ("
            << killed_at_rollover << " killed at a rollover), " << totals.acks
            << " acknowledged appends; " << totals.events << " events in " << totals.segments
            << " segments; " << totals.torn_recoveries << " recoveries cut a torn tail\n";
  if (!HasFailure()) {
    EXPECT_EQ(totals.acked_checked, model_.acked.size());
  }
  if (totals.rounds == kRounds) {
    EXPECT_GE(totals.segments, 3u);
    EXPECT_GE(killed_at_rollover, kRounds / 2) << "the kills did not land at segment rollovers";
  }
}

// --- Scavenge, killed at every kind of step --------------------------------------------------
//
// A store where deleted, hard-deleted and truncated streams hold the secret payload beside
// kept streams is copied fresh for each round; storage_crash_writer in scavenge mode kills
// itself before its Nth file operation of the scavenge (N drawn from all of them: chunk
// writes, syncs, the unlink, the renames), twice, the second time on what the first left.
// Then: the store opens, no *.scav or *.retired file is left, every kept event reads back
// identical and in order, no removed one is served, verify is clean; a scavenge finishes and
// no byte of the payload remains. ESD_SCAVENGE_CRASH_ROUNDS sets the rounds (default 40).

constexpr std::string_view kScavengeSecret = "SCAVENGE-CRASH-SECRET";

// Runs the crash writer in scavenge mode; returns its stdout and its wait status.
std::pair<std::string, int> RunScavenger(const fs::path& dir, uint64_t kill_at) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::string a0 = ESD_CRASH_WRITER, a1 = dir.string(), a2 = "1", a3 = "scavenge", a4 = std::to_string(kill_at);
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(p[1], 1);
    ::execv(argv[0], argv);
    _exit(127);
  }
  ::close(p[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {out, status};
}

struct KeptEvent {
  uint64_t position, version;
  std::string stream, data;
  bool operator==(const KeptEvent&) const = default;
};

std::vector<KeptEvent> Served(const Store& store) {
  std::vector<KeptEvent> out;
  auto n = store.ReadAll(GlobalPosition(0), SIZE_MAX, [&](const EventView& e) {
    out.push_back({e.position.value, e.version.value, std::string(e.stream), std::string(e.data)});
    return true;
  });
  if (!n.ok()) out.push_back({UINT64_MAX, 0, "read failed", n.status().ToString()});
  return out;
}

bool AnyFileHolds(const fs::path& dir, std::string_view needle) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const auto bytes = testing::ReadFileBytes(entry.path());
    if (std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()).find(needle) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

TEST(ScavengeCrash, KilledAtAnyStepLosesNothingKeptAndResumes) {
  int rounds = 40;
  if (const char* env = std::getenv("ESD_SCAVENGE_CRASH_ROUNDS")) rounds = std::atoi(env);
  const uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  testing::TempDir work;
  const fs::path pristine = work.path() / "pristine";
  std::vector<KeptEvent> kept;
  {
    auto store = Store::Open(pristine, testing::SmallOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (int r = 0; r < 60; ++r) {
      for (const std::string s : {"keep-a", "keep-b", "gone-soft", "gone-hard", "cut"}) {
        std::vector<EventData> events = testing::MakeEvents(s, r * 3, 3, 0, 400);
        if (!s.starts_with("keep")) {
          for (auto& e : events) e.data = std::string(kScavengeSecret) + s + "#" + std::to_string(r) + "#" + e.data;
        }
        ASSERT_TRUE((*store)->AppendSync(s, ExpectedVersion::Any(), std::move(events)).ok());
      }
    }
    ASSERT_TRUE((*store)->DeleteStreamSync("gone-soft", ExpectedVersion::Any(), false).ok());
    ASSERT_TRUE((*store)->DeleteStreamSync("gone-hard", ExpectedVersion::Any(), true).ok());
    // "cut" keeps its last 3 events, which hold the payload too: grep for the removed ones.
    ASSERT_TRUE((*store)->TruncateStreamSync("cut", StreamVersion(177)).ok());
    kept = Served(**store);
  }
  ASSERT_GT(testing::SegmentFiles(pristine).size(), 5u);
  const std::string removed_marker = std::string(kScavengeSecret) + "cut#58#";  // versions 174..176

  // How many file operations a whole scavenge makes, so that kills are drawn from all of them.
  uint64_t total_ops = 0;
  {
    const fs::path dir = work.path() / "count";
    fs::copy(pristine, dir, fs::copy_options::recursive);
    auto [out, status] = RunScavenger(dir, UINT64_MAX);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    const auto at = out.find("SCAVENGED ops=");
    ASSERT_NE(at, std::string::npos) << out;
    total_ops = std::strtoull(out.c_str() + at + 14, nullptr, 10);
    ASSERT_NE(out.find("state=finished"), std::string::npos) << out;
    ASSERT_GT(total_ops, 10u);
  }

  int killed = 0;
  for (int round = 0; round < rounds && !HasFailure(); ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    const fs::path dir = work.path() / "round";
    fs::remove_all(dir);
    fs::copy(pristine, dir, fs::copy_options::recursive);
    for (int kill = 0; kill < 2; ++kill) {
      const uint64_t at = std::uniform_int_distribution<uint64_t>(1, total_ops)(rng);
      auto [out, status] = RunScavenger(dir, at);
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        ++killed;
      } else {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "kill at " << at << ": " << out;
      }
    }
    auto store = Store::Open(dir, testing::SmallOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (const auto& entry : fs::directory_iterator(dir / "segments")) {
      const auto ext = entry.path().extension();
      EXPECT_TRUE(ext != ".scav" && ext != ".retired" && ext != ".tmp") << entry.path();
    }
    EXPECT_EQ(Served(**store), kept) << "every kept event, identical and in order; nothing removed";
    EXPECT_EQ((*store)->ReadStream("gone-soft", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
    EXPECT_EQ((*store)->ReadStream("gone-hard", StreamVersion(0), 10).status().code(), Status::Code::kStreamDeleted);
    (*store).reset();
    auto report = storage::VerifyStore(dir);
    ASSERT_TRUE(report.ok());
    for (const auto& p : report->problems) ADD_FAILURE() << p.file << ": " << p.what;
    // And it can finish.
    auto [out, status] = RunScavenger(dir, UINT64_MAX);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(out.find("state=finished"), std::string::npos) << out;
    EXPECT_FALSE(AnyFileHolds(dir, removed_marker));
    EXPECT_FALSE(AnyFileHolds(dir, std::string(kScavengeSecret) + "gone-"));
    auto reopened = Store::Open(dir, testing::SmallOptions());
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EXPECT_EQ(Served(**reopened), kept);
    auto next = (*reopened)->AppendSync("gone-soft", ExpectedVersion::NoStream(), testing::MakeEvents("gone-soft", 180, 1));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->first_version, StreamVersion(180)) << "a soft-deleted stream continues after its last version";
  }
  std::cout << "[ crash    ] scavenge seed " << seed << ": " << rounds << " rounds, " << killed
            << " kills within " << total_ops << " file operations of a scavenge\n";
  EXPECT_GT(killed, rounds / 2) << "the kills did not land inside the scavenge";
}

}  // namespace
}  // namespace esd::storage
