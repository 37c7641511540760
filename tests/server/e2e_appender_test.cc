// The framed client (client/appender.h) against a real esd: what a caller with many appends
// in flight on one connection sees when one of them is refused, and when the daemon goes.
#include <gtest/gtest.h>
#include <kj/vector.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "client/appender.h"
#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Appender;
using client::AppendResult;
using client::CommandOutcome;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

// Longer than this for an answer, or for a lost connection to fail what is in flight, is a
// client that hangs: a bound, not a timing test.
constexpr auto kHangBound = std::chrono::seconds(60);

client::ConnectOptions Options(const EsdProcess &esd) {
  client::ConnectOptions options;
  options.address = esd.rpc_address();
  return options;
}

NewEvent Event(int n) { return NewEvent::Json("Counted", "{\"n\":" + std::to_string(n) + "}"); }

NewEvent Bytes(size_t size) {
  NewEvent e;
  e.type = "Blob";
  e.content_type = "application/octet-stream";
  e.data.assign(size, 'x');
  return e;
}

// How one asynchronous call ended: its value, or the Error its rejection maps to.
template <typename T>
struct Settled {
  std::optional<T> value;
  std::optional<client::Error> error;
  bool done() const { return value || error; }
};

template <typename T>
kj::Promise<void> Track(kj::Promise<T> call, Settled<T> &out) {
  return call.then([&out](T v) { out.value = std::move(v); },
                   [&out](kj::Exception &&e) { out.error = client::ErrorOf(e); });
}

// Bytes received and not yet read on the established IPv4 TCP sockets whose local port is
// `port` (the daemon's ends of its connections), from /proc/net/tcp: its rx_queue column.
uint64_t UnreadBytesAtPort(uint16_t port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  uint64_t unread = 0;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    const size_t colon = local.find(':'), queue_colon = queues.find(':');
    if (colon == std::string::npos || queue_colon == std::string::npos || state != "01") continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
    unread += std::stoull(queues.substr(queue_colon + 1), nullptr, 16);
  }
  return unread;
}

TEST(Appender, ARefusedAppendFailsOnlyItselfAndTheConnectionGoesOn) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto appender = Appender::Connect(Options(esd));
  // In flight together: good, too large (the default --max-event-size is 1 MiB), good.
  std::vector<Settled<AppendResult>> results(3);
  kj::Vector<kj::Promise<void>> calls;
  calls.add(Track(appender->AppendAsync("a", Expected::NoStream(), {Event(0)}), results[0]));
  calls.add(Track(appender->AppendAsync("b", Expected::Any(), {Bytes((1u << 20) + 1)}), results[1]));
  calls.add(Track(appender->AppendAsync("a", Expected::Exact(0), {Event(1)}), results[2]));
  auto all = kj::joinPromises(calls.releaseAsArray()).eagerlyEvaluate(nullptr);
  ASSERT_TRUE(
      appender->RunUntil([&] { return results[0].done() && results[1].done() && results[2].done(); }, kHangBound));
  for (int i : {0, 2}) {
    ASSERT_TRUE(results[i].value.has_value()) << results[i].error->what();
    EXPECT_TRUE(results[i].value->ok()) << results[i].value->reason;
    EXPECT_EQ(results[i].value->first_version, i == 0 ? 0u : 1u);
  }
  ASSERT_TRUE(results[1].value.has_value())
      << "a refusal is an answer, not a failed call: " << results[1].error->what();
  EXPECT_EQ(results[1].value->outcome, AppendResult::Outcome::kRejected);
  EXPECT_EQ(results[1].value->reject_code, "invalid-argument") << results[1].value->reason;
  EXPECT_NE(results[1].value->reason.find("--max-event-size"), std::string::npos) << results[1].value->reason;

  // The same connection serves what follows, and nothing of the refused append was written.
  const AppendResult next = appender->Append("a", Expected::Exact(1), {Event(2)});
  EXPECT_TRUE(next.ok()) << next.reason;
  const AppendResult b = appender->Append("b", Expected::NoStream(), {Event(0)});
  EXPECT_TRUE(b.ok()) << "stream b was not created by the refused append: " << b.reason;
}

TEST(Appender, CallsInFlightWhenTheDaemonIsKilledFailAsDisconnectedAndSoDoLaterOnes) {
  storage::testing::TempDir dir;
  auto esd = std::make_unique<EsdProcess>(dir.path() / "data");
  auto appender = Appender::Connect(Options(*esd));
  ASSERT_TRUE(appender->Append("s", Expected::NoStream(), {Event(0)}).ok());

  // Stopped, the daemon reads nothing more: what is sent now stays in flight. It is this
  // process's child, so waitpid with WUNTRACED returns once all its threads have stopped.
  ASSERT_EQ(::kill(esd->pid(), SIGSTOP), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(esd->pid(), &status, WUNTRACED), esd->pid()) << std::strerror(errno);
  ASSERT_TRUE(WIFSTOPPED(status)) << "the daemon ended instead: status " << status;
  std::vector<Settled<AppendResult>> appends(16);
  Settled<CommandOutcome> command;
  kj::Vector<kj::Promise<void>> calls;
  for (size_t i = 0; i < appends.size(); ++i) {
    calls.add(Track(appender->AppendAsync("s", Expected::Any(), {Event(static_cast<int>(i) + 1)}), appends[i]));
  }
  calls.add(Track(appender->CreateOrderAsync("o1", "ann"), command));
  auto all = kj::joinPromises(calls.releaseAsArray()).eagerlyEvaluate(nullptr);
  // The requests are written in one write on a turn of the client's loop: once they wait in
  // the stopped daemon's socket, they are in flight, unanswered.
  const auto port = static_cast<uint16_t>(std::stoul(esd->rpc_address().substr(esd->rpc_address().rfind(':') + 1)));
  ASSERT_TRUE(appender->RunUntil([&] { return UnreadBytesAtPort(port) > 0; }, kHangBound))
      << "the requests did not reach the daemon's socket";
  for (const auto& a : appends) ASSERT_FALSE(a.done());
  ASSERT_FALSE(command.done());
  esd->Kill();  // with unread bytes: its end resets the connection

  auto settled = [&] {
    for (const auto& a : appends) {
      if (!a.done()) return false;
    }
    return command.done();
  };
  ASSERT_TRUE(appender->RunUntil(settled, kHangBound)) << "calls in flight still wait on a closed connection";
  for (size_t i = 0; i < appends.size(); ++i) {
    ASSERT_TRUE(appends[i].error.has_value()) << "append " << i << " was answered by a stopped daemon";
    EXPECT_EQ(appends[i].error->kind(), client::Error::Kind::kDisconnected) << appends[i].error->what();
  }
  ASSERT_TRUE(command.error.has_value());
  EXPECT_EQ(command.error->kind(), client::Error::Kind::kDisconnected) << command.error->what();

  // Later calls fail at once, the same way, the synchronous ones by throwing.
  Settled<AppendResult> later;
  auto tracked = Track(appender->AppendAsync("s", Expected::Any(), {Event(99)}), later).eagerlyEvaluate(nullptr);
  ASSERT_TRUE(appender->RunUntil([&] { return later.done(); }, kHangBound));
  ASSERT_TRUE(later.error.has_value());
  EXPECT_EQ(later.error->kind(), client::Error::Kind::kDisconnected) << later.error->what();
  try {
    appender->Append("s", Expected::Any(), {Event(100)});
    ADD_FAILURE() << "an append on a lost connection returned";
  } catch (const client::Error &e) {
    EXPECT_EQ(e.kind(), client::Error::Kind::kDisconnected) << e.what();
  }

  // The stopped daemon read none of them: after a restart the stream holds its first event
  // only.
  esd.reset();
  EsdProcess again(dir.path() / "data");
  auto reader = client::Client::Connect(again.rpc_address());
  const auto events = reader->ReadStream("s", 0, 100);
  ASSERT_TRUE(events.has_value());
  EXPECT_EQ(events->size(), 1u);
}

}  // namespace
}  // namespace esd
