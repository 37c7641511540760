// Bad input and bad clients end to end: each gets a clear error, the daemon and every other
// client carry on. And kill -9 under load loses no acknowledged append.
#include <arpa/inet.h>
#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include "client/client.h"
#include "protocol/esd.capnp.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

std::unique_ptr<Client> Connect(const EsdProcess& esd) { return Client::Connect(esd.rpc_address()); }

void ExpectStillServing(const EsdProcess& esd) {
  auto c = Connect(esd);
  auto r = c->Append("still-serving", Expected::Any(), {NewEvent::Json("Ping", "{}")});
  EXPECT_TRUE(r.ok()) << r.reason;
}

// A Cap'n Proto connection without esd::client, logged in, with the EventStore.
struct RawClient {
  explicit RawClient(const EsdProcess& esd)
      : io(kj::setupAsyncIo()),
        stream(io.provider->getNetwork().parseAddress(esd.rpc_address()).wait(io.waitScope)->connect().wait(io.waitScope)),
        rpc(*stream),
        store(rpc.bootstrap().castAs<rpc::Bootstrap>().loginRequest().send().getSession().eventStoreRequest().send().getStore()) {}
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient rpc;
  rpc::EventStore::Client store;
};


// A Subscriber that takes whatever it is sent.
class NoSubscriber final : public rpc::Subscriber::Server {};

TEST(Robustness, InvalidAppendsAreRejectedWithTheReasonAndTheConnectionGoesOn) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Connect(esd);
  auto reject = [&](const std::string& stream, std::vector<NewEvent> events) {
    auto r = c->Append(stream, Expected::Any(), events);
    EXPECT_EQ(r.outcome, client::AppendResult::Outcome::kRejected);
    EXPECT_EQ(r.reject_code, "invalid-argument");
    return r.reason;
  };
  EXPECT_NE(reject("s", {NewEvent::Json("E", std::string(2 << 20, 'x'))})
                .find("over the limit of 1048576 (esd --max-event-size)"),
            std::string::npos);
  EXPECT_NE(reject("bad\xff\xfe", {NewEvent::Json("E", "{}")}).find("UTF-8"), std::string::npos);
  EXPECT_NE(reject("$system", {NewEvent::Json("E", "{}")}).find("reserved"), std::string::npos);
  EXPECT_NE(reject("", {NewEvent::Json("E", "{}")}).find("stream name"), std::string::npos);
  reject("s", {});
  NewEvent nil = NewEvent::Json("E", "{}");
  nil.id = {};
  reject("s", {nil});
  EXPECT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok()) << "the same connection goes on";
}

TEST(Robustness, AbsurdCountsAreCapped) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Connect(esd);
  ASSERT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("E", "{}"), NewEvent::Json("E", "{}")}).ok());
  EXPECT_EQ(c->ReadAll(0, UINT32_MAX).events.size(), 2u);
  EXPECT_EQ(c->ReadStream("s", 0, UINT32_MAX)->size(), 2u);
  EXPECT_EQ(c->ReadStream("s", UINT64_MAX, UINT32_MAX, true)->size(), 2u);
  EXPECT_TRUE(c->ReadAll(UINT64_MAX, 10).end_of_log);
}

TEST(Robustness, ListsARequestCarriesAreCappedBeforeTheDaemonWorksOnThem) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  RawClient raw(esd);
  auto& ws = raw.io.waitScope;
  // A filter of 65 event types (or one too long) is a broken request: it names the limit.
  auto read = raw.store.readAllRequest();
  read.setCount(10);
  auto types = read.getFilter().initEventTypes(65);
  for (uint i = 0; i < types.size(); ++i) types.set(i, "T");
  try {
    read.send().wait(ws);
    ADD_FAILURE() << "a filter of 65 event types was taken";
  } catch (const kj::Exception& e) {
    EXPECT_NE(std::string(e.getDescription().cStr()).find("at most 64 event types"), std::string::npos)
        << e.getDescription().cStr();
  }
  auto prefix = raw.store.readAllRequest();
  prefix.setCount(10);
  prefix.getFilter().setStreamPrefix(std::string(300, 'p'));
  EXPECT_ANY_THROW(prefix.send().wait(ws));
  auto subscribe = raw.store.subscribeRequest();
  subscribe.getFrom().setStart();
  subscribe.getFilter().initEventTypes(1000);
  subscribe.setSubscriber(kj::heap<NoSubscriber>());
  EXPECT_ANY_THROW(subscribe.send().wait(ws));
  // An append of more events than the store takes is refused before it is copied.
  auto append = raw.store.appendRequest();
  append.setStream("many");
  auto events = append.initEvents(10'001);
  for (uint i = 0; i < events.size(); ++i) {
    const uint64_t id[2] = {i + 1, 7};
    memcpy(events[i].initId(16).begin(), id, 16);
    events[i].setType("E");
  }
  auto response = append.send().wait(ws);  // owns the message `result` reads
  auto result = response.getResult();
  ASSERT_TRUE(result.isRejected());
  EXPECT_EQ(result.getRejected().getCode(), rpc::RejectCode::INVALID_ARGUMENT);
  EXPECT_NE(std::string(result.getRejected().getReason().cStr()).find("at most 10000 events"), std::string::npos)
      << result.getRejected().getReason().cStr();
  // The connection goes on.
  auto info = raw.store.streamInfoRequest();
  info.setStream("many");
  EXPECT_TRUE(info.send().wait(ws).getInfo().isNotFound()) << "nothing of the refused append was written";
}

TEST(Robustness, GarbageAndTruncatedMessagesCloseOnlyThatConnection) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto other = Connect(esd);  // a client that was there before and must be unaffected
  // A segment table that claims 2^31 words, then garbage.
  int fd = testing::ConnectLoopback(esd.rpc_address());
  const uint32_t header[2] = {0, 0x7fffffff};
  (void)::write(fd, header, sizeof(header));
  (void)::write(fd, "garbage garbage garbage", 23);
  // The daemon may say why (an RPC Abort message), then closes: read to the end. The
  // receive timeout only turns a daemon that never closes into a failure instead of a hang.
  timeval guard{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
  }
  EXPECT_EQ(n, 0) << "the daemon closed the connection";
  ::close(fd);
  // A message cut off in the middle.
  fd = testing::ConnectLoopback(esd.rpc_address());
  const uint32_t partial[2] = {0, 100};
  (void)::write(fd, partial, sizeof(partial));
  (void)::write(fd, "only a few bytes", 16);
  ::close(fd);
  // Random bytes.
  fd = testing::ConnectLoopback(esd.rpc_address());
  std::string noise(4096, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>(i * 131 + 7);
  (void)::write(fd, noise.data(), noise.size());
  ::close(fd);
  EXPECT_TRUE(other->Append("other", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  ExpectStillServing(esd);
}

TEST(Robustness, UnknownEnumValuesAndUnionMembersAreBrokenRequests) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  RawClient raw(esd);  // to send what the typed client cannot
  auto& io = raw.io;
  auto& store = raw.store;
  auto read = store.readStreamRequest();
  read.setStream("s");
  read.setCount(10);
  read.setDirection(static_cast<rpc::Direction>(7));
  EXPECT_ANY_THROW(read.send().wait(io.waitScope));
  auto append = store.appendRequest();
  append.setStream("s");
  append.initEvents(1)[0].setType("E");  // no id
  auto r = append.send().wait(io.waitScope);
  EXPECT_TRUE(r.getResult().isRejected());
  EXPECT_EQ(r.getResult().getRejected().getCode(), rpc::RejectCode::INVALID_ARGUMENT);
  // The same connection still works.
  auto info = store.streamInfoRequest();
  info.setStream("s");
  EXPECT_TRUE(info.send().wait(io.waitScope).getInfo().isNotFound());
}

TEST(Robustness, AClientThatDisconnectsMidCallLeavesTheDaemonServing) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  {
    RawClient raw(esd);
    auto& io = raw.io;
    auto append = raw.store.appendRequest();
    append.setStream("gone");
    auto events = append.initEvents(100);
    for (uint i = 0; i < 100; ++i) {
      auto id = events[i].initId(16);
      id[0] = static_cast<capnp::byte>(i + 1);
      events[i].setType("E");
      events[i].setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>("xxxxxxxx"), 8));
    }
    auto pending = append.send();
    io.waitScope.poll();  // the request goes out; then the client vanishes without the answer
  }
  ExpectStillServing(esd);
}

TEST(Robustness, ConcurrentWritersOnOneStreamGetOneWinnerPerVersion) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  constexpr int kThreads = 4;
  constexpr uint64_t kVersions = 60;
  std::mutex mu;
  std::map<uint64_t, int> winners;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto c = Connect(esd);
      while (true) {
        auto info = c->GetStreamInfo("contended");
        const uint64_t next = info ? info->last_version + 1 : 0;
        if (next >= kVersions) return;
        auto r = c->Append("contended", info ? Expected::Exact(info->last_version) : Expected::NoStream(),
                           {NewEvent::Json("E", "{\"t\":" + std::to_string(t) + "}")});
        if (r.ok()) {
          std::lock_guard lock(mu);
          EXPECT_TRUE(winners.emplace(r.first_version, t).second);
        } else {
          ASSERT_EQ(r.outcome, client::AppendResult::Outcome::kWrongExpectedVersion) << r.reason;
          EXPECT_TRUE(r.actual_version.has_value() && *r.actual_version >= next);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto events = Connect(esd)->ReadStream("contended", 0, 1000);
  ASSERT_EQ(events->size(), winners.size());
  for (uint64_t v = 0; v < events->size(); ++v) {
    EXPECT_EQ((*events)[v].data, "{\"t\":" + std::to_string(winners[v]) + "}") << "version " << v;
  }
}

TEST(Robustness, KillNineUnderLoadLosesNoAcknowledgedAppend) {
  storage::testing::TempDir dir;
  struct Ack {
    std::string stream;
    uint64_t first_version, first_position, count;
  };
  std::mutex mu;
  std::vector<Ack> acks;
  {
    EsdProcess esd(dir.path() / "data");
    std::atomic<size_t> acked{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        auto c = Connect(esd);
        const std::string stream = "load-" + std::to_string(t);
        try {
          for (uint64_t i = 0;; ++i) {
            std::vector<NewEvent> events;
            for (uint64_t k = 0; k <= i % 5; ++k) events.push_back(NewEvent::Json("E", "{\"i\":" + std::to_string(i) + "}"));
            auto r = c->Append(stream, Expected::Any(), events);
            if (!r.ok()) return;
            std::lock_guard lock(mu);
            acks.push_back({stream, r.first_version, r.first_position, events.size()});
            ++acked;
          }
        } catch (const client::Error&) {
          // the daemon was killed
        }
      });
    }
    while (acked.load() < 400) std::this_thread::yield();
    esd.Kill();
    for (auto& w : writers) w.join();
  }
  EsdProcess restarted(dir.path() / "data");
  auto c = Connect(restarted);
  ASSERT_GE(acks.size(), 400u);
  for (const Ack& a : acks) {
    auto events = c->ReadStream(a.stream, a.first_version, static_cast<uint32_t>(a.count));
    ASSERT_TRUE(events.has_value());
    ASSERT_EQ(events->size(), a.count) << a.stream << "@" << a.first_version;
    for (uint64_t k = 0; k < a.count; ++k) EXPECT_EQ((*events)[k].position, a.first_position + k);
  }
  auto all = c->ReadAll(0, 10'000);
  for (size_t i = 0; i < all.events.size(); ++i) ASSERT_EQ(all.events[i].position, i) << "dense";
}

TEST(Robustness, MetricsAndHealthAreServed) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  ASSERT_TRUE(Connect(esd)->Append("m", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("200 OK"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("esd_appends_total{outcome=\"ok\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("esd_fsync_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics.find("esd_durable_position 1"), std::string::npos);
  EXPECT_NE(metrics.find("esd_connections"), std::string::npos);
  EXPECT_NE(testing::HttpGet(esd.http_address(), "/health").find("{\"status\":\"alive\"}"), std::string::npos);
}


TEST(Robustness, RunningOutOfDescriptorsOnceDoesNotEndAcceptingConnections) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  ASSERT_TRUE(Connect(esd)->Append("fd", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  // A few descriptors of room, then more connections than that: accept fails with EMFILE.
  rlimit normal{};
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, nullptr, &normal), 0) << std::strerror(errno);
  const rlimit low{esd.OpenFds() + 6, normal.rlim_max};
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  std::vector<int> spike;
  for (int i = 0; i < 40; ++i) spike.push_back(testing::ConnectLoopback(esd.rpc_address()));
  ASSERT_TRUE(esd.WaitForOutput("Too many open files")) << esd.Output();
  // The HTTP listener meets the same wall, and goes on too.
  spike.push_back(testing::ConnectLoopback(esd.http_address()));
  ASSERT_TRUE(esd.WaitForOutput("esd: accepting an HTTP connection failed")) << esd.Output();
  for (int fd : spike) ::close(fd);

  // Once its descriptors are back, a new client is served. (The bound only ends a hang.)
  auto served = std::async(std::launch::async, [&] {
    auto c = Connect(esd);
    return c->ReadStream("fd", 0, 10).has_value();
  });
  if (served.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "no new connection was accepted after the spike:\n" << esd.Output();
    esd.Kill();  // ends the hung call
  }
  EXPECT_TRUE(served.get());
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, &normal, nullptr), 0) << std::strerror(errno);
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("esd_accept_errors_total "), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("esd_accept_errors_total 0\n"), std::string::npos) << "the failures are counted";
  const std::string log = esd.Output();
  size_t lines = 0;
  for (size_t at = log.find("esd: accepting a connection failed"); at != std::string::npos;
       at = log.find("esd: accepting a connection failed", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << "logged once for the burst:\n" << log;
}

// A store of at least `segments` segments of 64 KiB, written by a daemon with descriptors to
// spare. esd keeps each segment file open.
void FillSegments(const std::filesystem::path& data, size_t segments) {
  EsdProcess esd(data, {"--segment-size", "65536", "--max-event-size", "16384"});
  auto c = Connect(esd);
  const std::string body = "\"" + std::string(8000, 'x') + "\"";
  auto count = [&] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(data / "segments")) n += e.path().extension() == ".seg";
    return n;
  };
  while (count() < segments) {
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(c->Append("big", Expected::Any(), {NewEvent::Json("E", body)}).ok());
  }
}

TEST(Robustness, AStoreOfMoreSegmentsThanTheSoftOpenFileLimitOpens) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  FillSegments(data, 120);
  rlimit normal{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &normal), 0);
  // A low soft limit under a high hard one, as a login shell leaves it (1024 of 524288): here
  // 64, under the test's own hard limit.
  EsdProcess esd(data, {"--segment-size", "65536", "--max-event-size", "16384"}, rlimit{64, normal.rlim_max});
  rlimit now{};
  ASSERT_EQ(::prlimit(esd.pid(), RLIMIT_NOFILE, nullptr, &now), 0) << std::strerror(errno);
  EXPECT_GT(now.rlim_cur, 64u);
  EXPECT_NE(esd.Output().find("raised the open-file limit (RLIMIT_NOFILE) from 64 to " + std::to_string(now.rlim_cur)),
            std::string::npos)
      << esd.Output();
  EXPECT_GT(esd.OpenFds(), 120u) << "it holds more files than the soft limit it started with";
  auto c = Connect(esd);
  EXPECT_EQ(c->ReadStream("big", 0, 5)->size(), 5u);
  EXPECT_TRUE(c->Append("big", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
}

TEST(Robustness, AnOpenFileLimitTooLowForTheStoreIsNamedWithItsFix) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  FillSegments(data, 120);
  try {
    EsdProcess esd(data, {"--segment-size", "65536", "--max-event-size", "16384"}, rlimit{64, 64});
    ADD_FAILURE() << "esd started with 64 descriptors for 120 segments:\n" << esd.Output();
  } catch (const std::runtime_error& e) {
    const std::string out = e.what();
    EXPECT_NE(out.find("cannot open the store"), std::string::npos) << out;
    EXPECT_NE(out.find("Too many open files"), std::string::npos) << out;
    EXPECT_NE(out.find("one open file per segment"), std::string::npos) << out;
    EXPECT_NE(out.find("ulimit -n"), std::string::npos) << out;
    EXPECT_NE(out.find("LimitNOFILE="), std::string::npos) << out;
  }
}

TEST(Robustness, AConnectionPastMaxConnectionsIsToldWhyAndTheOthersAreServed) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--max-connections", "3", "--log-level", "debug"});
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(Connect(esd));
    ASSERT_TRUE(held.back()->Append("c", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  }
  // The fourth is accepted, told why and closed: its first call fails with the reason.
  try {
    auto fourth = Connect(esd);
    (void)fourth->ReadStream("c", 0, 10);
    ADD_FAILURE() << "a fourth connection was served";
  } catch (const client::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.kind(), client::Error::Kind::kConnect) << what;
    EXPECT_EQ(e.connect_problem(), client::Error::ConnectProblem::kTooManyConnections) << what;
    EXPECT_NE(what.find("too many connections: esd serves at most 3 connections at once (--max-connections), and 3 "
                        "are open: retry later"),
              std::string::npos)
        << what;
  }
  ASSERT_TRUE(esd.WaitForOutput("esd: refused a connection: 3 are open, the most --max-connections 3 allows"))
      << esd.Output();
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("esd_connections_refused_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("esd_connections 3\n"), std::string::npos) << metrics;

  // The three are served on; once one goes, a new client is served.
  for (auto& c : held) EXPECT_EQ(c->ReadStream("c", 0, 10)->size(), 3u);
  held.pop_back();
  ASSERT_TRUE(esd.WaitForOutput("esd: a connection closed: 2 are open")) << esd.Output();
  auto next = Connect(esd);
  EXPECT_EQ(next->ReadStream("c", 0, 10)->size(), 3u);
}

TEST(Robustness, MaxConnectionsIsLoweredToWhatTheOpenFileLimitLeavesAndSaysSo) {
  storage::testing::TempDir dir;
  // 400 files, soft and hard: the default 10,000 connections do not fit beside the store.
  EsdProcess esd(dir.path() / "data", {"--log-level", "debug"}, rlimit{400, 400});
  const std::string out = esd.Output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(--max-connections 10000 does not fit the open-file limit of 400 )"
                                                   R"(\((\d+) files are open, 256 are kept for new segments and files\): )"
                                                   R"(serving at most (\d+) connections)")))
      << out;
  const uint64_t open = std::stoull(m[1]), most = std::stoull(m[2]);
  EXPECT_EQ(most, 400 - 256 - open);
  EXPECT_NE(out.find("raise the limit (ulimit -n, or LimitNOFILE= in esd's systemd unit)"), std::string::npos) << out;

  std::vector<int> held;
  for (uint64_t i = 0; i < most; ++i) held.push_back(testing::ConnectLoopback(esd.rpc_address()));
  ASSERT_TRUE(esd.WaitForOutput("esd: a connection opened: " + std::to_string(most) + " are open")) << esd.Output();
  try {
    auto c = Connect(esd);
    (void)c->ReadStream("s", 0, 1);
    ADD_FAILURE() << "a connection past the lowered limit was served";
  } catch (const client::Error& e) {
    EXPECT_EQ(e.connect_problem(), client::Error::ConnectProblem::kTooManyConnections) << e.what();
    EXPECT_NE(std::string(e.what()).find("esd serves at most " + std::to_string(most) +
                                         " connections at once (--max-connections 10000, lowered to fit its "
                                         "open-file limit)"),
              std::string::npos)
        << e.what();
  }
  for (int fd : held) ::close(fd);
}

// A client whose machine loses power or its network sends no FIN and no reset: without
// keepalive, its connection would hold a slot (--max-connections) and a descriptor until esd
// restarts, since esd writes nothing to an idle connection. Here the client's socket drops
// everything that arrives for it, so esd's probes go unanswered, as they would to a
// powered-off machine: esd ends the connection after 1 s idle and 3 probes 1 s apart.
TEST(Robustness, AConnectionWhoseClientVanishedSilentlyIsClosedByKeepaliveAndFreesItsSlot) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--max-connections", "1", "--tcp-keepalive", "1", "--log-level", "debug"});
  const int fd = testing::ConnectLoopback(esd.rpc_address());
  ASSERT_TRUE(esd.WaitForOutput("esd: a connection opened: 1 are open")) << esd.Output();
  testing::DropEverythingArriving(fd);

  ASSERT_TRUE(esd.WaitForOutput("esd: a connection closed: 0 are open")) << esd.Output();
  ::close(fd);
  auto next = Connect(esd);
  EXPECT_TRUE(next->Append("k", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
}

}  // namespace
}  // namespace esd
