// server/framed_connection.cc, end to end: a real esd, spoken to through
// esd::client::Appender (client/appender.cc) and, for what a well-behaved client never
// sends, through raw frames on a socket.
#include "server/framed_connection.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <capnp/rpc.capnp.h>
#include <capnp/schema.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/appender.h"
#include "client/client.h"
#include "protocol/frames.capnp.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::AppendResult;
using client::Appender;
using client::Client;
using client::Error;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

std::unique_ptr<Appender> ConnectAppender(const EsdProcess& esd, const std::string& token = "") {
  client::ConnectOptions options;
  options.address = esd.rpc_address();
  options.token = token;
  return Appender::Connect(options);
}

// A raw connection that has sent the framed protocol's magic.
class RawFrames {
 public:
  // receive_buffer_bytes: see testing::ConnectLoopback.
  explicit RawFrames(const EsdProcess& esd, int receive_buffer_bytes = 0)
      : fd_(testing::ConnectLoopback(esd.rpc_address(), receive_buffer_bytes)) {
    SendBytes("ESF1");
  }
  ~RawFrames() { ::close(fd_); }

  void SendBytes(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }
  void Send(capnp::MessageBuilder& message) {
    auto words = capnp::messageToFlatArray(message);
    auto bytes = words.asBytes();
    SendBytes(std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
  }
  // The next whole answer, or nullopt once the daemon closed the connection first.
  std::optional<std::vector<capnp::word>> Next() {
    while (true) {
      if (buffer_.size() >= 8) {
        const size_t expected = capnp::expectedSizeInWordsFromPrefix(
            kj::arrayPtr(reinterpret_cast<const capnp::word*>(buffer_.data()), buffer_.size() / 8));
        if (buffer_.size() >= expected * 8) {
          std::vector<capnp::word> words(expected);
          std::memcpy(words.data(), buffer_.data(), expected * 8);
          buffer_.erase(0, expected * 8);
          return words;
        }
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  int fd() const { return fd_; }
  // True once the daemon has closed the connection (after any answers still unread).
  bool ClosedByDaemon() {
    while (Next()) {
    }
    return true;
  }

 private:
  int fd_;
  std::string buffer_;
};

capnp::MallocMessageBuilder& AppendRequest(capnp::MallocMessageBuilder& m, uint64_t id, const std::string& stream) {
  auto request = m.initRoot<rpc::frames::Request>();
  request.setId(id);
  auto append = request.initAppend();
  append.setStream(stream);
  append.initExpected().setAny();
  auto events = append.initEvents(1);
  const auto event_id = client::NewEventId();
  events[0].setId(capnp::Data::Reader(event_id.data(), event_id.size()));
  events[0].setType("E");
  events[0].setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>("{}"), 2));
  return m;
}

// A command request for `order_id`, its kind still to set.
rpc::frames::OrderCommand::Builder CommandRequest(capnp::MallocMessageBuilder& m, uint64_t id,
                                                  const std::string& order_id) {
  auto request = m.initRoot<rpc::frames::Request>();
  request.setId(id);
  auto command = request.initCommand();
  command.setOrderId(order_id);
  return command;
}

// The next `n` answers by id: "error: <text>", "append" (an ok one), "?" (anything else), or
// "closed" under id UINT64_MAX when the daemon closed the connection first.
std::map<uint64_t, std::string> TakeAnswers(RawFrames& raw, int n) {
  std::map<uint64_t, std::string> answers;
  for (int i = 0; i < n; ++i) {
    auto words = raw.Next();
    if (!words) {
      answers[UINT64_MAX] = "closed";
      break;
    }
    capnp::FlatArrayMessageReader message(kj::arrayPtr(words->data(), words->size()));
    auto response = message.getRoot<rpc::frames::Response>();
    answers[response.getId()] = response.isError() ? "error: " + std::string(response.getError().cStr())
                                                   : (response.isAppend() && response.getAppend().isOk() ? "append" : "?");
  }
  return answers;
}

TEST(FramedConnection, AnAppendIsAnsweredAsEventStoreAppendAnswersIt) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto appender = ConnectAppender(esd);
  EXPECT_EQ(appender->Role(), "admin") << "without --auth every connection is trusted, as over RPC";

  std::vector<NewEvent> events = {NewEvent::Json("Opened", "{\"a\":1}"), NewEvent::Json("Added", "{\"b\":2}")};
  const AppendResult first = appender->Append("cart-1", Expected::NoStream(), events);
  ASSERT_TRUE(first.ok()) << first.reason;
  EXPECT_EQ(first.first_version, 0u);
  EXPECT_EQ(first.last_version, 1u);

  const AppendResult retried = appender->Append("cart-1", Expected::NoStream(), events);
  ASSERT_TRUE(retried.ok()) << retried.reason;
  EXPECT_TRUE(retried.already_written);
  EXPECT_EQ(retried.first_position, first.first_position);

  const AppendResult wrong = appender->Append("cart-1", Expected::Exact(7), {NewEvent::Json("X", "{}")});
  EXPECT_EQ(wrong.outcome, AppendResult::Outcome::kWrongExpectedVersion);
  EXPECT_EQ(wrong.actual_version, std::optional<uint64_t>(1));

  const AppendResult bad_name = appender->Append("$all", Expected::Any(), {NewEvent::Json("X", "{}")});
  EXPECT_EQ(bad_name.outcome, AppendResult::Outcome::kRejected);
  EXPECT_EQ(bad_name.reject_code, "invalid-argument") << bad_name.reason;

  // What was acknowledged is what an RPC client reads back, and nothing else was written.
  auto reader = Client::Connect(esd.rpc_address());
  auto read = reader->ReadStream("cart-1", 0, 10);
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].type, "Opened");
  EXPECT_EQ((*read)[1].data, "{\"b\":2}");
  EXPECT_EQ((*read)[1].id, events[1].id);
  EXPECT_EQ(reader->ReadAll(0, 100).events.size(), 2u);
}

TEST(FramedConnection, AppendsInFlightTogetherEachGetTheirOwnAnswer) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto appender = ConnectAppender(esd);
  constexpr int kStreams = 8, kPerStream = 50;
  std::vector<kj::Promise<AppendResult>> answers;
  std::vector<std::pair<int, int>> sent;  // (stream, its n-th append)
  for (int n = 0; n < kPerStream; ++n) {
    for (int s = 0; s < kStreams; ++s) {
      // Exact expected versions: each answer must be its own append's, in its stream's order.
      answers.push_back(appender->AppendAsync("s-" + std::to_string(s), n == 0 ? Expected::NoStream() : Expected::Exact(n - 1),
                                              {NewEvent::Json("E", std::to_string(n))}));
      sent.emplace_back(s, n);
    }
  }
  std::set<uint64_t> positions;
  for (size_t i = 0; i < answers.size(); ++i) {
    bool done = false;
    AppendResult r;
    auto taken = answers[i].then([&](AppendResult a) {
                             r = std::move(a);
                             done = true;
                           }).eagerlyEvaluate(nullptr);
    ASSERT_TRUE(appender->RunUntil([&] { return done; }, std::chrono::seconds(30)));
    ASSERT_TRUE(r.ok()) << "append " << i << ": " << r.reason;
    EXPECT_EQ(r.first_version, static_cast<uint64_t>(sent[i].second)) << "stream " << sent[i].first;
    EXPECT_TRUE(positions.insert(r.first_position).second) << "two answers name position " << r.first_position;
  }
  EXPECT_EQ(positions.size(), static_cast<size_t>(kStreams * kPerStream));
}

TEST(FramedConnection, TokensAndRolesAreTheRpcOnes) {
  storage::testing::TempDir dir;
  const auto tokens = dir.path() / "tokens";
  std::ofstream(tokens) << "r-token reader\nw-token writer\n";
  EsdProcess esd(dir.path() / "data", {"--auth", tokens.string()});
  try {
    ConnectAppender(esd, "wrong");
    ADD_FAILURE() << "an unknown token was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::kUnauthenticated) << e.what();
  }
  auto reader = ConnectAppender(esd, "r-token");
  EXPECT_EQ(reader->Role(), "reader");
  const AppendResult refused = reader->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")});
  EXPECT_EQ(refused.outcome, AppendResult::Outcome::kRejected);
  EXPECT_EQ(refused.reject_code, "permission-denied") << refused.reason;
  auto writer = ConnectAppender(esd, "w-token");
  EXPECT_EQ(writer->Role(), "writer");
  EXPECT_TRUE(writer->Append("s", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());

  // Without a login, an append is refused and the connection goes on to serve the login.
  RawFrames raw(esd);
  capnp::MallocMessageBuilder before;
  raw.Send(AppendRequest(before, 5, "s"));
  auto answer = raw.Next();
  ASSERT_TRUE(answer.has_value());
  capnp::FlatArrayMessageReader message(kj::arrayPtr(answer->data(), answer->size()));
  auto response = message.getRoot<rpc::frames::Response>();
  EXPECT_EQ(response.getId(), 5u);
  ASSERT_TRUE(response.isError());
  EXPECT_NE(std::string(response.getError().cStr()).find("send a login request with a token of its --auth file"),
            std::string::npos)
      << response.getError().cStr();
}

TEST(FramedConnection, OrderCommandsAreAnsweredAsTheOrderServiceAnswersThem) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto appender = ConnectAppender(esd);
  using Kind = client::CommandOutcome::Kind;

  const auto created = appender->CreateOrder("o-1", "cust-1", "cmd-1", "corr-1");
  ASSERT_TRUE(created.ok()) << created.message;
  EXPECT_EQ(created.version, 0u);
  const auto retried = appender->CreateOrder("o-1", "cust-1", "cmd-1");
  ASSERT_TRUE(retried.ok()) << retried.message;
  EXPECT_TRUE(retried.already_applied) << "a retry with the command's id is the first answer again";
  EXPECT_EQ(retried.position, created.position);
  const auto again = appender->CreateOrder("o-1", "cust-1", "cmd-2");
  EXPECT_EQ(again.kind, Kind::kRejected);
  EXPECT_EQ(again.rule, "order-already-exists") << again.message;

  EXPECT_TRUE(appender->AddItem("o-1", "sku-a", 2, 150).ok());
  EXPECT_TRUE(appender->AddItem("o-1", "sku-b", 1, 999).ok());
  const auto removed = appender->RemoveItem("o-1", "sku-b", 0);
  ASSERT_TRUE(removed.ok()) << removed.message;
  EXPECT_EQ(removed.version, 3u);
  const auto too_many = appender->RemoveItem("o-1", "sku-a", 5);
  EXPECT_EQ(too_many.kind, Kind::kRejected);
  EXPECT_EQ(too_many.rule, "remove-more-than-present") << too_many.message;
  const auto placed = appender->PlaceOrder("o-1");
  ASSERT_TRUE(placed.ok()) << placed.message;
  EXPECT_EQ(placed.version, 4u);

  EXPECT_TRUE(appender->CreateOrder("o-2", "cust-1").ok());
  const auto cancelled = appender->CancelOrder("o-2", "changed my mind");
  ASSERT_TRUE(cancelled.ok()) << cancelled.message;
  const auto empty = appender->PlaceOrder("o-2");
  EXPECT_EQ(empty.kind, Kind::kRejected);
  EXPECT_EQ(empty.rule, "order-not-open") << empty.message;

  // What the commands decided is what the RPC side reads: the projection and the audit trail.
  auto reader = Client::Connect(esd.rpc_address());
  const auto o1 = reader->GetOrder("o-1", placed.position);
  ASSERT_TRUE(o1.order.has_value());
  EXPECT_EQ(o1.order->status, "placed");
  EXPECT_EQ(o1.order->customer_id, "cust-1");
  ASSERT_EQ(o1.order->lines.size(), 1u);
  EXPECT_EQ(o1.order->lines[0].sku, "sku-a");
  EXPECT_EQ(o1.order->total_cents, 300);
  const auto o2 = reader->GetOrder("o-2", cancelled.position);
  ASSERT_TRUE(o2.order.has_value());
  EXPECT_EQ(o2.order->status, "cancelled");
  EXPECT_EQ(o2.order->cancel_reason, "changed my mind");
  const auto history = reader->ReadStream("order-o-1", 0, 100);
  ASSERT_TRUE(history.has_value());
  EXPECT_EQ(history->size(), 5u) << "a rejected or retried command writes nothing";
  EXPECT_NE((*history)[0].metadata.find("corr-1"), std::string::npos) << (*history)[0].metadata;

  // Counted and timed as the Order service's calls.
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("esd_order_commands_total{outcome=\"ok\"} 8\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("esd_order_commands_total{outcome=\"rejected\",rule=\"order-already-exists\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("esd_rpc_duration_seconds_count{service=\"OrderService\",method=\"createOrder\"} 4\n"),
            std::string::npos)
      << metrics;
}

TEST(FramedConnection, OrderCommandsNeedAWriterAsOverRpc) {
  storage::testing::TempDir dir;
  const auto tokens = dir.path() / "tokens";
  std::ofstream(tokens) << "r-token reader\nw-token writer\n";
  EsdProcess esd(dir.path() / "data", {"--auth", tokens.string()});
  auto reader = ConnectAppender(esd, "r-token");
  const auto refused = reader->CreateOrder("o-1", "cust-1");
  EXPECT_EQ(refused.kind, client::CommandOutcome::Kind::kFailed);
  EXPECT_EQ(refused.code, "permission-denied") << refused.message;
  EXPECT_TRUE(ConnectAppender(esd, "w-token")->CreateOrder("o-1", "cust-1").ok());

  // Without a login a command is refused, and nothing is written.
  RawFrames raw(esd);
  capnp::MallocMessageBuilder before;
  CommandRequest(before, 6, "o-2").initCreateOrder().setCustomerId("cust-1");
  raw.Send(before);
  std::map<uint64_t, std::string> answers = TakeAnswers(raw, 1);
  EXPECT_NE(answers[6].find("send a login request with a token of its --auth file before sending commands"),
            std::string::npos)
      << answers[6];
  auto rpc = Client::Connect(esd.rpc_address(), "w-token");
  EXPECT_FALSE(rpc->GetOrder("o-2").order.has_value());
  EXPECT_EQ(rpc->ReadAll(0, 100).events.size(), 1u);
}

TEST(FramedConnection, AnOrderCommandOfAnUnknownKindIsAnsweredAndTheConnectionGoesOn) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  RawFrames raw(esd);
  // A command of a kind from a newer client: OrderCommand's union discriminant (where its
  // schema puts it) set past the kinds this daemon knows.
  capnp::MallocMessageBuilder unknown;
  auto command = CommandRequest(unknown, 3, "o-1");
  const uint32_t at = capnp::Schema::from<rpc::frames::OrderCommand>().getProto().getStruct().getDiscriminantOffset();
  auto section = capnp::toAny(command).getDataSection();
  ASSERT_GE(section.size(), 2 * at + 2);
  section[2 * at] = 9;
  section[2 * at + 1] = 0;
  raw.Send(unknown);
  capnp::MallocMessageBuilder valid;
  raw.Send(AppendRequest(valid, 4, "after-unknown"));

  std::map<uint64_t, std::string> answers = TakeAnswers(raw, 2);
  EXPECT_EQ(answers[3].rfind("error: malformed request: ", 0), 0u) << answers[3];
  EXPECT_NE(answers[3].find("unknown kind of order command; this esd serves createOrder, addItem, removeItem, "
                            "placeOrder and cancelOrder"),
            std::string::npos)
      << answers[3];
  EXPECT_EQ(answers[4], "append");
  EXPECT_EQ(answers.count(UINT64_MAX), 0u) << "the daemon closed the connection";
  EXPECT_FALSE(Client::Connect(esd.rpc_address())->GetOrder("o-1").order.has_value());
}

TEST(FramedConnection, AnUnknownRequestKindIsAnsweredAndTheConnectionGoesOn) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  RawFrames raw(esd);
  // A request of a kind from a newer client: the union's discriminant (after the 64-bit id,
  // bytes 8-9 of the data section) set past the kinds this daemon knows.
  capnp::MallocMessageBuilder unknown;
  unknown.initRoot<rpc::frames::Request>().setId(3);
  auto data = unknown.getRoot<capnp::AnyStruct>().getDataSection();
  ASSERT_GE(data.size(), 10u);
  data[8] = 9;
  raw.Send(unknown);
  capnp::MallocMessageBuilder valid;
  raw.Send(AppendRequest(valid, 4, "after-unknown"));

  std::map<uint64_t, std::string> answers = TakeAnswers(raw, 2);
  EXPECT_EQ(answers[3], "error: unknown request kind 9: this esd serves login, append and command (protocol/frames.capnp)");
  EXPECT_EQ(answers[4], "append");
  EXPECT_EQ(answers.count(UINT64_MAX), 0u) << "the daemon closed the connection";
}

// The error (id 0) a broken frame on its own connection is answered with, once the daemon
// has closed that connection.
std::string BrokenFrameError(const EsdProcess& esd, const std::string& frame) {
  RawFrames raw(esd);
  raw.SendBytes(frame);
  auto words = raw.Next();
  if (!words) return "(closed without an answer)";
  capnp::FlatArrayMessageReader message(kj::arrayPtr(words->data(), words->size()));
  auto response = message.getRoot<rpc::frames::Response>();
  EXPECT_EQ(response.getId(), 0u);
  EXPECT_TRUE(raw.ClosedByDaemon());
  return response.isError() ? response.getError().cStr() : "(not an error)";
}

TEST(FramedConnection, AFrameLargerThanARequestMayBeIsAnsweredAndEndsOnlyItsConnection) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto other = ConnectAppender(esd);
  ASSERT_TRUE(other->Append("other", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());

  // A segment table claiming 2^31 segments: larger than any request may be.
  std::string error = BrokenFrameError(esd, std::string("\xff\xff\xff\x7f\x01\x00\x00\x00", 8));
  EXPECT_NE(error.find("a frame of 8589934608 bytes, more than the 67108864 a request may have; the connection is "
                       "closed"),
            std::string::npos)
      << error;
  ASSERT_TRUE(esd.WaitForOutput("a framed connection broke the protocol and was closed")) << esd.Output();

  // Everyone else is served on, and nothing was written for the broken frame.
  ASSERT_TRUE(other->Append("other", Expected::Exact(0), {NewEvent::Json("E", "{}")}).ok());
  EXPECT_EQ(Client::Connect(esd.rpc_address())->ReadAll(0, 100).events.size(), 2u);
}

TEST(FramedConnection, AMalformedRequestIsAnsweredAndTheConnectionGoesOn) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  RawFrames raw(esd);
  // One segment of one word: a root pointer into segment 5, which the message does not have.
  raw.SendBytes(std::string("\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00\x00", 16));
  capnp::MallocMessageBuilder valid;
  raw.Send(AppendRequest(valid, 8, "after-malformed"));
  std::map<uint64_t, std::string> answers = TakeAnswers(raw, 2);
  EXPECT_EQ(answers[0].rfind("error: malformed request: ", 0), 0u) << answers[0];
  EXPECT_NE(answers[0].find("nothing was written"), std::string::npos) << answers[0];
  EXPECT_EQ(answers[8], "append");
  EXPECT_EQ(answers.count(UINT64_MAX), 0u) << "the daemon closed the connection";
  EXPECT_TRUE(esd.WaitForOutput("a framed request was refused: malformed request: ")) << esd.Output();
}

TEST(FramedConnection, ARequestLargerThanTheReadBufferIsReadWhole) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto appender = ConnectAppender(esd);
  std::vector<NewEvent> events;
  for (int i = 0; i < 40; ++i) events.push_back(NewEvent::Json("Big", "\"" + std::string(4000, 'a' + i % 26) + "\""));
  const AppendResult r = appender->Append("big", Expected::NoStream(), events);  // ~160 KB in one frame
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.last_version, 39u);
  ASSERT_TRUE(appender->Append("big", Expected::Exact(39), {NewEvent::Json("Small", "{}")}).ok());
  auto read = Client::Connect(esd.rpc_address())->ReadStream("big", 0, 100);
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->size(), 41u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ((*read)[i].data, events[i].data) << i;
}

// A daemon without the framed protocol reads the magic as a broken RPC message and answers
// with RPC's Abort: a peer on a loopback port of this test's own does the same.
TEST(FramedConnection, AnAppenderToAnRpcOnlyPeerSaysItDidNotTakeTheFramedProtocol) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t length = sizeof(addr);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  std::thread peer([listener] {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    char first[4];
    (void)::recv(fd, first, sizeof(first), MSG_WAITALL);
    capnp::MallocMessageBuilder abort;
    auto exception = abort.initRoot<capnp::rpc::Message>().initAbort();
    exception.setType(capnp::rpc::Exception::Type::FAILED);
    exception.setReason("Message has too many segments.");
    const auto words = capnp::messageToFlatArray(abort);
    (void)::send(fd, words.asBytes().begin(), words.asBytes().size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    char rest[4096];
    while (::recv(fd, rest, sizeof(rest), 0) > 0) {
    }
    ::close(fd);
  });
  try {
    client::ConnectOptions options;
    options.address = address;
    Appender::Connect(options);
    ADD_FAILURE() << "an RPC-only peer was taken for a framed one";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::kConnect) << e.what();
    EXPECT_NE(std::string(e.what()).find("esd at " + address + " did not take the framed protocol ("), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("an esd without it serves appends over RPC (esd::client::Client)"),
              std::string::npos)
        << e.what();
  }
  peer.join();
  ::close(listener);
}

TEST(FramedConnection, PastMaxConnectionsTheRefusalIsSaidInTheFramedProtocol) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--max-connections", "1"});
  auto held = Client::Connect(esd.rpc_address());
  try {
    ConnectAppender(esd);
    ADD_FAILURE() << "a second connection was served";
  } catch (const Error& e) {
    EXPECT_EQ(e.connect_problem(), Error::ConnectProblem::kTooManyConnections) << e.what();
    EXPECT_NE(std::string(e.what()).find("--max-connections"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(held->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
}

// The metric `name` (no labels) as /metrics says it now.
uint64_t Metric(const EsdProcess& esd, const std::string& name) {
  const std::string text = testing::HttpGet(esd.http_address(), "/metrics");
  const std::string line = "\n" + name + " ";
  const size_t at = text.find(line);
  if (at == std::string::npos) {
    ADD_FAILURE() << name << " is not in /metrics:\n" << text;
    return 0;
  }
  return std::stoull(text.substr(at + line.size()));
}

TEST(FramedConnection, AClientThatDoesNotReadItsAnswersIsNotReadPastTheBound) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  RawFrames raw(esd, 4096);  // a small receive window
  // More answers (~64 bytes each) than the kernel's socket buffers hold (the daemon's send
  // buffer grows to tcp_wmem's 4 MiB): past them, the answers stop leaving.
  constexpr uint64_t kSent = 150000;
  std::string requests;
  for (uint64_t id = 1; id <= kSent; ++id) {
    capnp::MallocMessageBuilder m;
    auto words = capnp::messageToFlatArray(AppendRequest(m, id, "flood"));
    requests.append(reinterpret_cast<const char*>(words.asBytes().begin()), words.asBytes().size());
  }
  // Sent from another thread: once the daemon stops reading, the sends block.
  std::thread sender([&] { raw.SendBytes(requests); });

  // Wait until the daemon has stopped reading the flood: an append on another connection
  // (through the same writer, after every flood append handed to it before) is answered and
  // no flood append was written meanwhile.
  auto other = ConnectAppender(esd);
  uint64_t before = 0, after = 0, barriers = 0;
  do {
    before = Metric(esd, "esd_log_appends_total");
    ASSERT_TRUE(other->Append("barrier", Expected::Any(), {NewEvent::Json("B", "{}")}).ok());
    ++barriers;
    after = Metric(esd, "esd_log_appends_total");
  } while (after != before + 1);
  EXPECT_GE(Metric(esd, "esd_framed_reads_paused_total"), 1u);
  // It stopped short: it read (and wrote) at most frames::MAX_IN_FLIGHT more requests than
  // the answers the kernel took, and the client has taken none.
  EXPECT_LT(after - barriers, kSent) << "the daemon read every request of a client that took no answer";

  // Taking the answers lets it read the rest: every request is answered, once, ok.
  std::vector<bool> answered(kSent + 1, false);
  for (uint64_t i = 0; i < kSent; ++i) {
    auto words = raw.Next();
    ASSERT_TRUE(words.has_value()) << "the daemon closed the connection after " << i << " answers";
    capnp::FlatArrayMessageReader message(kj::arrayPtr(words->data(), words->size()));
    auto response = message.getRoot<rpc::frames::Response>();
    ASSERT_TRUE(response.isAppend() && response.getAppend().isOk()) << "answer " << i;
    ASSERT_TRUE(response.getId() >= 1 && response.getId() <= kSent && !answered[response.getId()])
        << "request " << response.getId() << " answered twice, or never sent";
    answered[response.getId()] = true;
  }
  sender.join();
  EXPECT_EQ(Metric(esd, "esd_log_appends_total"), kSent + barriers);
}

TEST(FramedConnection, AppendsAnsweredBeforeAGracefulStopAreDurable) {
  storage::testing::TempDir dir;
  std::vector<uint64_t> acknowledged;
  {
    EsdProcess esd(dir.path() / "data");
    auto appender = ConnectAppender(esd);
    for (int i = 0; i < 20; ++i) {
      auto r = appender->Append("s", Expected::Any(), {NewEvent::Json("E", std::to_string(i))});
      ASSERT_TRUE(r.ok()) << r.reason;
      acknowledged.push_back(r.first_position);
    }
    EXPECT_EQ(esd.Stop(SIGTERM), 0) << esd.Output();
  }
  EsdProcess again(dir.path() / "data");
  auto read = Client::Connect(again.rpc_address())->ReadStream("s", 0, 100);
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->size(), acknowledged.size());
  for (size_t i = 0; i < read->size(); ++i) EXPECT_EQ((*read)[i].position, acknowledged[i]);
}

}  // namespace
}  // namespace esd
