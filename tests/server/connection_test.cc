// What one connection may take of the daemon (server/connection.h), end to end against a
// real esd: a client that floods appends is slowed to the disk's pace and the daemon's
// memory stays bounded while others are served; a client that does not take its answers
// stops being answered; requests that carry absurd lists are refused; and a graceful stop
// waits until each connection has taken the answers it was owed.
#include "server/connection.h"

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <string>
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

// The daemon's anonymous resident memory (heap, not mapped files), in bytes.
uint64_t AnonymousRss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) * 1024;  // "NNN kB"
  }
  return 0;
}

// A Cap'n Proto connection without esd::client, whose network we can see (how much it has
// not sent yet) and whose reading we can hold.
class RawConnection {
 public:
  explicit RawConnection(const EsdProcess& esd)
      : io_(kj::setupAsyncIo()),
        socket_(io_.provider->getNetwork().parseAddress(esd.rpc_address()).wait(io_.waitScope)->connect().wait(
            io_.waitScope)),
        gated_(*socket_, read_gate_),
        network_(gated_, capnp::rpc::twoparty::Side::CLIENT),
        rpc_(capnp::makeRpcClient(network_)) {
    capnp::word scratch[4];
    memset(scratch, 0, sizeof(scratch));
    capnp::MallocMessageBuilder message(scratch);
    auto vat = message.getRoot<capnp::rpc::twoparty::VatId>();
    vat.setSide(capnp::rpc::twoparty::Side::SERVER);
    auto session = rpc_.bootstrap(vat).castAs<rpc::Bootstrap>().loginRequest().send().getSession();
    store_ = session.eventStoreRequest().send().getStore();
  }

  kj::WaitScope& ws() { return io_.waitScope; }
  rpc::EventStore::Client& store() { return store_; }
  size_t unsent_bytes() { return network_.getCurrentQueueSize(); }
  // Returns once a message has been written to the socket (capnp writes one at a time).
  void WaitForAWrite() {
    auto paf = kj::newPromiseAndFulfiller<void>();
    read_gate_.write_waiter = kj::mv(paf.fulfiller);
    paf.promise.wait(io_.waitScope);
  }
  // While held, nothing is read from the socket: the daemon's answers pile up.
  void HoldReads() { read_gate_.held = true; }
  void ReleaseReads() {
    read_gate_.held = false;
    KJ_IF_MAYBE(f, read_gate_.waiting) {
      (*f)->fulfill();
      read_gate_.waiting = nullptr;
    }
  }

 private:
  struct ReadGate {
    bool held = false;
    kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> waiting;
    kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> write_waiter;  // told when a write completes
  };
  class GatedStream final : public kj::AsyncIoStream {
   public:
    GatedStream(kj::AsyncIoStream& inner, ReadGate& gate) : inner_(inner), gate_(gate) {}
    kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
      if (!gate_.held) return inner_.tryRead(buffer, min_bytes, max_bytes);
      auto paf = kj::newPromiseAndFulfiller<void>();
      gate_.waiting = kj::mv(paf.fulfiller);
      return paf.promise.then([this, buffer, min_bytes, max_bytes] { return tryRead(buffer, min_bytes, max_bytes); });
    }
    kj::Promise<void> write(const void* buffer, size_t size) override {
      return inner_.write(buffer, size).then([this] { Written(); });
    }
    kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
      return inner_.write(pieces).then([this] { Written(); });
    }
    kj::Promise<void> whenWriteDisconnected() override { return inner_.whenWriteDisconnected(); }
    void shutdownWrite() override { inner_.shutdownWrite(); }

   private:
    void Written() {
      KJ_IF_MAYBE(f, gate_.write_waiter) {
        (*f)->fulfill();
        gate_.write_waiter = nullptr;
      }
    }
    kj::AsyncIoStream& inner_;
    ReadGate& gate_;
  };

  kj::AsyncIoContext io_;
  kj::Own<kj::AsyncIoStream> socket_;
  ReadGate read_gate_;
  GatedStream gated_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;
  rpc::EventStore::Client store_ = nullptr;
};

// A client that writes Cap'n Proto RPC messages to a plain socket, built once and patched
// for each send: it produces appends as fast as loopback takes them, far faster than any
// disk, which a client building each message could not.
class RawFlood {
 public:
  // Appends of `events` events of `bytes` bytes each to `stream`.
  RawFlood(const EsdProcess& esd, const std::string& stream, uint32_t events, size_t bytes)
      : fd_(testing::ConnectLoopback(esd.rpc_address())) {
    {  // the bootstrap capability (question 0), logged in (1), its EventStore (2)
      capnp::MallocMessageBuilder m;
      m.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
      Write(capnp::messageToFlatArray(m).asBytes());
    }
    {
      capnp::MallocMessageBuilder m;
      auto call = m.initRoot<capnp::rpc::Message>().initCall();
      call.setQuestionId(1);
      call.initTarget().initPromisedAnswer().setQuestionId(0);
      call.setInterfaceId(capnp::typeId<rpc::Bootstrap>());
      call.setMethodId(0);
      call.initParams().getContent().initAs<rpc::Bootstrap::LoginParams>().setToken("");
      Write(capnp::messageToFlatArray(m).asBytes());
    }
    {
      capnp::MallocMessageBuilder m;
      auto call = m.initRoot<capnp::rpc::Message>().initCall();
      call.setQuestionId(2);
      auto target = call.initTarget().initPromisedAnswer();
      target.setQuestionId(1);
      target.initTransform(1)[0].setGetPointerField(0);  // the session
      call.setInterfaceId(capnp::typeId<rpc::Session>());
      call.setMethodId(1);
      call.initParams().getContent().initAs<rpc::Session::EventStoreParams>();
      Write(capnp::messageToFlatArray(m).asBytes());
    }
    capnp::MallocMessageBuilder m(events * (bytes / 8 + 16) + 256);
    auto call = m.initRoot<capnp::rpc::Message>().initCall();
    call.setQuestionId(kQuestionMarker);
    auto target = call.initTarget().initPromisedAnswer();
    target.setQuestionId(2);
    target.initTransform(1)[0].setGetPointerField(0);  // the store
    call.setInterfaceId(capnp::typeId<rpc::EventStore>());
    call.setMethodId(0);
    auto append = call.initParams().getContent().initAs<rpc::EventStore::AppendParams>();
    append.setStream(stream);
    append.getExpected().setAny();
    auto list = append.initEvents(events);
    for (uint32_t i = 0; i < events; ++i) {
      auto id = list[i].initId(16);
      const uint64_t marker[2] = {kIdMarker, i};
      memcpy(id.begin(), marker, 16);
      list[i].setType("Flood");
      memset(list[i].initData(bytes).begin(), 'f', bytes);
    }
    append_ = capnp::messageToFlatArray(m);
    // Where the question id and each event id sit in the bytes.
    auto bytes_of = append_.asBytes();
    for (size_t at = 0; at + 16 <= bytes_of.size(); at += 4) {
      uint32_t v;
      memcpy(&v, bytes_of.begin() + at, 4);
      if (v == kQuestionMarker && question_at_ == 0) question_at_ = at;
      uint64_t w[2];
      if (at % 8 == 0) {
        memcpy(w, bytes_of.begin() + at, 16);
        if (w[0] == kIdMarker) id_at_.push_back(at);
      }
    }
    KJ_ASSERT(question_at_ != 0 && id_at_.size() == events);
  }
  ~RawFlood() { ::close(fd_); }

  // Sends append number `n` (ids unique per n); blocks while the daemon does not read.
  void SendAppend(uint32_t n) {
    auto bytes = append_.asBytes();
    const uint32_t question = 3 + n;
    memcpy(bytes.begin() + question_at_, &question, 4);
    for (size_t at : id_at_) memcpy(bytes.begin() + at + 12, &question, 4);  // beside the event index
    Write(bytes);
  }

  // Reads the answers to the three set-up calls and `appends` appends; returns how many
  // appends were answered ok.
  int CountOkAnswers(uint32_t appends) {
    int ok = 0;
    for (uint32_t seen = 0; seen < 3 + appends;) {
      capnp::StreamFdMessageReader reader(fd_);
      auto message = reader.getRoot<capnp::rpc::Message>();
      if (!message.isReturn()) continue;  // e.g. a Resolve
      ++seen;
      auto ret = message.getReturn();
      if (ret.getAnswerId() < 3) continue;
      if (!ret.isResults()) {
        ADD_FAILURE() << "append " << ret.getAnswerId() - 3 << " failed";
        continue;
      }
      auto result = ret.getResults().getContent().getAs<rpc::EventStore::AppendResults>().getResult();
      if (result.isRejected()) ADD_FAILURE() << result.getRejected().getReason().cStr();
      ok += result.isOk();
    }
    return ok;
  }

 private:
  static constexpr uint32_t kQuestionMarker = 0x5eed5eed;
  static constexpr uint64_t kIdMarker = 0x1d1d1d1d1d1d1d1dull;
  void Write(kj::ArrayPtr<const kj::byte> bytes) {
    while (bytes.size() > 0) {
      const ssize_t n = ::write(fd_, bytes.begin(), bytes.size());
      KJ_ASSERT(n > 0, "the daemon closed the connection", strerror(errno));
      bytes = bytes.slice(static_cast<size_t>(n), bytes.size());
    }
  }
  int fd_;
  kj::Array<capnp::word> append_;
  size_t question_at_ = 0;
  std::vector<size_t> id_at_;
};

// AddressSanitizer keeps freed memory in quarantine (256 MiB): under it (make asan), the
// daemon's resident memory says nothing about what it holds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMemoryIsMeasurable = false;
#else
constexpr bool kMemoryIsMeasurable = true;
#endif

TEST(ConnectionBounds, AFloodOfAppendsFromOneConnectionKeepsTheDaemonsMemoryBoundedAndOthersServed) {
  if (!kMemoryIsMeasurable) GTEST_SKIP() << "AddressSanitizer's quarantine: the daemon's memory is not measurable";
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--segment-size", std::to_string(256 << 20)});
  const uint64_t before = AnonymousRss(esd.pid());
  // 32 appends of 32 MB written as fast as loopback takes them: 1 GB, faster than the disk
  // takes it. The daemon may hold about what two appends need: the one it is reading, the
  // one the writer has (its message and the copy for the writer), and what malloc keeps of
  // freed ones (94-124 MiB above this when measured). Unbounded, it held the part of the
  // flood the disk had not taken yet (247-309 MiB, growing with the flood).
  constexpr uint32_t kAppends = 32, kEventsPerAppend = 32;
  constexpr size_t kEventBytes = 1'000'000;
  constexpr uint64_t kAllowed = 6 * kEventsPerAppend * kEventBytes;  // 192 MB
  RawFlood flood(esd, "flood", kEventsPerAppend, kEventBytes);
  uint64_t peak = before;  // sampled each time the daemon has taken another append's bytes
  for (uint32_t i = 0; i < kAppends; ++i) {
    flood.SendAppend(i);
    peak = std::max(peak, AnonymousRss(esd.pid()));
    if (i == kAppends / 2) {  // in the middle of it, another client appends and is answered
      auto c = Client::Connect(esd.rpc_address());
      for (int k = 0; k < 5; ++k) {
        auto r = c->Append("other", Expected::Any(), {NewEvent::Json("Small", "{}")});
        EXPECT_TRUE(r.ok()) << r.reject_code << ": " << r.reason;
      }
    }
  }
  EXPECT_EQ(flood.CountOkAnswers(kAppends), static_cast<int>(kAppends)) << "every append was taken, at the disk's pace";
  std::printf("the daemon's anonymous memory: %llu MiB before the flood, at most %llu MiB during it\n",
              static_cast<unsigned long long>(before >> 20), static_cast<unsigned long long>(peak >> 20));
  EXPECT_LT(peak - before, kAllowed) << "the daemon took " << ((peak - before) >> 20)
                                     << " MiB more for one flooding connection";
}

// An append of `events` events of `bytes` bytes to `stream`, ids made from `salt`.
capnp::Request<rpc::EventStore::AppendParams, rpc::EventStore::AppendResults> AppendRequest(
    rpc::EventStore::Client& store, const std::string& stream, uint32_t events, size_t bytes, uint64_t salt) {
  auto request = store.appendRequest();
  request.setStream(stream);
  request.getExpected().setAny();
  auto list = request.initEvents(events);
  for (uint32_t i = 0; i < events; ++i) {
    const uint64_t id[2] = {storage::testing::Mix(salt * 100'003 + i + 1), salt};  // never nil
    memcpy(list[i].initId(16).begin(), id, 16);
    list[i].setType("E");
    memset(list[i].initData(bytes).begin(), 'e', bytes);
  }
  return request;
}

// esd::client runs on an event loop of its thread's own, which a RawConnection on the same
// thread would collide with: these run on a thread of their own.

// `count` events of about 1 MB in stream "big": a readAll of them answers ~16 MiB.
void AppendBigEvents(const EsdProcess& esd, int count) {
  std::async(std::launch::async, [&] {
    auto c = Client::Connect(esd.rpc_address());
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(c->Append("big", Expected::Any(), {NewEvent::Json("Big", std::string(1'000'000, 'b'))}).ok());
    }
  }).get();
}

// Returns once `stream` holds an event: a barrier on the daemon having taken an append.
void WaitUntilWritten(const EsdProcess& esd, const std::string& stream) {
  std::async(std::launch::async, [&] {
    auto c = Client::Connect(esd.rpc_address());
    bool seen = false;
    auto sub = c->Subscribe(client::SubscribeFrom::Stream(stream, 0), {},
                            [&](const std::vector<client::RecordedEvent>&) { seen = true; });
    ASSERT_TRUE(c->RunUntil([&] { return seen; }, std::chrono::seconds(60)));
  }).get();
}

capnp::Request<rpc::EventStore::ReadAllParams, rpc::EventStore::ReadAllResults> ReadAllRequest(RawConnection& c) {
  auto request = c.store().readAllRequest();
  request.setFromPosition(0);
  request.setCount(10'000);
  return request;
}

TEST(ConnectionBounds, AClientThatDoesNotTakeItsAnswersStopsBeingAnswered) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendBigEvents(esd, 20);
  RawConnection c(esd);
  c.HoldReads();
  // Ten reads of ~16 MiB each, then an append: the daemon takes requests in order, so once
  // the append is in the log it has seen every read.
  kj::Vector<kj::Promise<size_t>> reads;
  for (int i = 0; i < 10; ++i) {
    reads.add(ReadAllRequest(c).send().then([](auto&& r) { return static_cast<size_t>(r.getEvents().size()); }));
  }
  auto sentinel = AppendRequest(c.store(), "sentinel", 1, 10, 1).send();
  while (c.unsent_bytes() > 0) c.WaitForAWrite();
  WaitUntilWritten(esd, "sentinel");
  // Answered all at once, the reads would hold ~160 MiB of answers in the daemon.
  const uint64_t held = AnonymousRss(esd.pid());
  if (kMemoryIsMeasurable) {
    EXPECT_LT(held, uint64_t{96} << 20) << "the daemon holds " << (held >> 20) << " MiB of answers nobody takes";
  }
  // Once the client reads again, every read is answered in full.
  c.ReleaseReads();
  for (auto& read : reads) EXPECT_GE(read.wait(c.ws()), 16u);
  EXPECT_TRUE(sentinel.wait(c.ws()).getResult().isOk());
}

TEST(GracefulStop, WaitsUntilEachClientHasTakenTheAnswersItIsOwed) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendBigEvents(esd, 20);
  RawConnection c(esd);
  c.HoldReads();
  // A ~16 MiB answer, more than the sockets hold, and behind it the answer to an append.
  auto read = ReadAllRequest(c).send();
  auto append = AppendRequest(c.store(), "late", 1, 10, 2).send();
  while (c.unsent_bytes() > 0) c.WaitForAWrite();
  WaitUntilWritten(esd, "late");
  ASSERT_EQ(::kill(esd.pid(), SIGTERM), 0);
  // This connection at least; the subscriber of WaitUntilWritten may count too when its close
  // has not reached the daemon before the stop told it `dropped`.
  EXPECT_TRUE(esd.WaitForOutput("connection(s) to take their answers")) << esd.Output();
  c.ReleaseReads();
  EXPECT_GE(read.wait(c.ws()).getEvents().size(), 16u);
  EXPECT_TRUE(append.wait(c.ws()).getResult().isOk()) << "the append's answer reached the client before the close";
  EXPECT_EQ(esd.Stop(0), 0) << esd.Output();
}

}  // namespace
}  // namespace esd
