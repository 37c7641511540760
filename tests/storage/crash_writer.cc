// storage_crash_writer DATA_DIR SEED
// storage_crash_writer DATA_DIR SEED scavenge KILL_AT
//
// Scavenge mode: opens the store, starts a scavenge and kills itself (SIGKILL) just before
// the KILL_AT-th file operation (storage/file.h) from then on, so that the crash lands at a
// chosen step: a chunk write, a sync, the unlink, a rename. If the scavenge ends first it
// prints "SCAVENGED ops=<file operations> state=<state>" and exits 0.
//
// The victim of tests/storage/crash_test.cc. Opens a Store on DATA_DIR with 64 KiB segments
// and appends to the streams "crash-0".."crash-4" until it is killed. Four threads own the
// streams between them (thread t owns every stream s with s % 4 == t) and keep one append
// in flight per stream, so the store's writer thread sees several appends at once and group
// commits them.
//
// Every batch is 1..50 events whose bytes are a function of (stream, version, salt = SEED)
// plus metadata "b=<first_version>/<count> s=<salt>" naming the batch: the checker can
// rebuild each event and tell which batch it belongs to without a copy (crash_recipe.h).
//
// Output on stdout (a pipe), one write(2) per line so lines never interleave:
//   OPEN end=<end_position> segments=<n> torn=<bytes discarded>   after recovery
//   ACK <stream> <first_version> <count> <first_position>         an acknowledged append
//   ERR <what>                                                      then exit status 1
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crash_recipe.h"
#include "storage/file.h"
#include "storage/store.h"

namespace esd::storage::crash {
namespace {

constexpr int kThreads = 4;
constexpr size_t kMaxBatch = 50;

// --- Output --------------------------------------------------------------------------------

void WriteLine(const std::string& line) {
  // A line is far below PIPE_BUF, so one write is atomic; a short write would be a bug of
  // the pipe, not of the store. EPIPE/SIGPIPE (the test went away) ends the process.
  ssize_t n = ::write(1, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) _exit(2);
}

[[noreturn]] void Fail(const std::string& what) {
  WriteLine("ERR " + what + "\n");
  std::fprintf(stderr, "storage_crash_writer: %s\n", what.c_str());
  _exit(1);
}

// --- Appenders -----------------------------------------------------------------------------

struct StreamState {
  std::string name;
  uint64_t next_version = 0;  // the version the next append starts at
};

// One in-flight append; the callback fills `result` and counts down `remaining`.
struct Pending {
  std::optional<AppendResult> result;
};

void AppendLoop(Store* store, std::vector<StreamState> streams, uint64_t seed, int thread) {
  std::mt19937_64 rng(Mix(seed * 131 + static_cast<uint64_t>(thread) + 1));
  std::uniform_int_distribution<size_t> batch_size(1, kMaxBatch);
  std::mutex mu;
  std::condition_variable cv;

  for (;;) {
    std::vector<Pending> pending(streams.size());
    std::vector<size_t> counts(streams.size());
    size_t remaining = streams.size();
    for (size_t i = 0; i < streams.size(); ++i) {
      const StreamState& s = streams[i];
      size_t count = batch_size(rng);
      counts[i] = count;
      std::vector<EventData> events;
      events.reserve(count);
      for (size_t k = 0; k < count; ++k) {
        events.push_back(CrashEvent(s.name, s.next_version + k, s.next_version, count, seed));
      }
      ExpectedVersion expected = s.next_version == 0
                                     ? ExpectedVersion::NoStream()
                                     : ExpectedVersion::Exact(StreamVersion(s.next_version - 1));
      store->Append(s.name, expected, std::move(events), [&, i](AppendResult r) {
        std::lock_guard<std::mutex> lock(mu);
        pending[i].result.emplace(std::move(r));
        if (--remaining == 0) cv.notify_one();
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return remaining == 0; });
    }
    for (size_t i = 0; i < streams.size(); ++i) {
      StreamState& s = streams[i];
      const AppendResult& r = *pending[i].result;
      const uint64_t count = counts[i];
      const std::string what = s.name + " " + std::to_string(s.next_version) + " " +
                               std::to_string(count);
      if (!r.ok()) Fail("append " + what + ": " + r.status().ToString());
      const AppendOk& ok = r.value();
      if (ok.already_written) Fail("append " + what + ": reported as already written");
      if (ok.first_version.value != s.next_version ||
          ok.last_version.value != s.next_version + count - 1) {
        Fail("append " + what + ": versions " + std::to_string(ok.first_version.value) + ".." +
             std::to_string(ok.last_version.value));
      }
      if (ok.last_position.value != ok.first_position.value + count - 1) {
        Fail("append " + what + ": positions " + std::to_string(ok.first_position.value) +
             ".." + std::to_string(ok.last_position.value));
      }
      WriteLine("ACK " + what + " " + std::to_string(ok.first_position.value) + "\n");
      s.next_version += count;
    }
  }
}

// Counts file operations and kills the process before the chosen one.
class KillAtOperation : public FileFaults {
 public:
  explicit KillAtOperation(uint64_t kill_at) : kill_at_(kill_at) {}
  InjectedFault Before(FileOp, const std::filesystem::path&) override {
    if (++count_ == kill_at_) ::kill(::getpid(), SIGKILL);
    return {};
  }
  uint64_t count() const { return count_.load(); }

 private:
  const uint64_t kill_at_;
  std::atomic<uint64_t> count_{0};
};

class Finished : public EventListener {
 public:
  void OnScavengeFinished(const ScavengeStatus& s) override {
    std::lock_guard lock(mu_);
    status_ = s;
    cv_.notify_all();
  }
  ScavengeStatus Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return status_.has_value(); });
    return *status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ScavengeStatus> status_;
};

int ScavengeMain(const std::string& dir, uint64_t kill_at) {
  Finished finished;
  Options options = testing::SmallOptions();
  options.listener = &finished;
  options.scavenge_retire_after = std::chrono::milliseconds(0);
  auto opened = Store::Open(dir, options);
  if (!opened.ok()) Fail("open " + dir + ": " + opened.status().ToString());
  std::unique_ptr<Store> store = std::move(opened.value());
  WriteLine("OPEN end=" + std::to_string(store->recovery().end_position.value) + "\n");
  KillAtOperation killer(kill_at);
  SetFileFaults(&killer);
  if (Status s = store->StartScavenge(); !s.ok()) Fail("scavenge: " + s.ToString());
  const ScavengeStatus st = finished.Wait();
  SetFileFaults(nullptr);
  WriteLine("SCAVENGED ops=" + std::to_string(killer.count()) + " state=" + ScavengeStatus::StateName(st.state) +
            (st.error.ok() ? std::string() : " error=" + st.error.ToString()) + "\n");
  store.reset();
  _exit(0);  // no more file operations
}

int Main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[3]) == "scavenge") {
    return ScavengeMain(argv[1], std::strtoull(argv[4], nullptr, 10));
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR SEED\n", argv[0]);
    return 64;
  }
  const std::string dir = argv[1];
  char* end = nullptr;
  const uint64_t seed = std::strtoull(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0') {
    std::fprintf(stderr, "bad SEED: %s\n", argv[2]);
    return 64;
  }

  auto opened = Store::Open(dir, testing::SmallOptions());
  if (!opened.ok()) Fail("open " + dir + ": " + opened.status().ToString());
  std::unique_ptr<Store> store = std::move(opened.value());
  const RecoveryReport& rep = store->recovery();
  WriteLine("OPEN end=" + std::to_string(rep.end_position.value) +
            " segments=" + std::to_string(rep.segments) +
            " torn=" + std::to_string(rep.torn_bytes_discarded) + "\n");

  std::vector<std::vector<StreamState>> owned(kThreads);
  for (int s = 0; s < kStreams; ++s) {
    StreamState st;
    st.name = StreamName(s);
    std::optional<StreamInfo> info = store->GetStreamInfo(st.name);
    st.next_version = info ? info->last_version.value + 1 : 0;
    if (info && info->event_count != st.next_version) {
      Fail("stream info of " + st.name + ": last_version " +
           std::to_string(info->last_version.value) + " but event_count " +
           std::to_string(info->event_count));
    }
    owned[s % kThreads].push_back(std::move(st));
  }

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(AppendLoop, store.get(), owned[t], seed, t);
  }
  for (std::thread& t : threads) t.join();  // never: the loops run until the kill
  return 0;
}

}  // namespace
}  // namespace esd::storage::crash

int main(int argc, char** argv) { return esd::storage::crash::Main(argc, argv); }
