// Mutated requests on both wire protocols, end to end: a real esd is sent thousands of
// byte-level mutants of well-formed requests (framed: login, an append, each order command;
// RPC: a bootstrap, a login, an append and a createOrder call, pipelined), each on its own
// connection. Whatever the bytes, the daemon answers or closes that connection only, keeps
// serving the others, and writes no event whose bytes no message sent holds (a mutant that
// still parses as a request may append: its fields are ranges of what was sent).
//
// The mutants are deterministic: mutant k of request r is drawn from its own generator,
// seeded from (kSeed, r, k), and a failure names it with its bytes. What the daemon did
// before it (orders, command ids) carries over, and whether an RPC mutant's calls are
// answered before the client goes depends on load (kQuietBound), so a replay of one mutant
// alone may differ. ESD_MUTATION_SEED=N runs another seed (for a search; the test as
// committed always runs kSeed).
//
// With --auth, a third and fourth campaign send a reader's token or a wrong one (framed,
// also no login at all) before an append and an order command: whatever the bytes, no
// mutant may write (the only token that may, the admin's of the test's own clients, is in
// no message sent). The log's check is what proves it; the answers' counts say the mutants
// reached the role checks.
#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "client/appender.h"
#include "client/client.h"
#include "domain/codec.h"
#include "protocol/esd.capnp.h"
#include "protocol/frames.capnp.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "storage/validate.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using client::AppendResult;
using client::Appender;
using client::Client;
using client::Expected;
using client::NewEvent;
using client::RecordedEvent;
using testing::EsdProcess;

constexpr uint64_t kSeed = 0x5eed'e5d0'0001;
constexpr int kMutantsPerRequest = 400;
constexpr int kMutantsPerCheck = 100;  // the daemon is checked after this many mutants
// Longer than this for an answer to a well-formed request, or for the daemon to close a
// connection whose client has said all, is a daemon that hangs: a bound, not a timing test.
constexpr auto kHangBound = std::chrono::seconds(60);
// How long an RPC mutant's calls may take to be answered before the client goes anyway. Not
// a condition: some mutated calls are rightly never answered while the connection is open
// (seed kSeed's "rpc createOrder" mutant 70 and seed 9's mutant 328, a u32 set to 65536,
// waited 60 s with no Return: capnp answers some call forms only after the caller's Finish),
// and a sentinel call after the mutant would not show that its pipelined calls were
// dispatched. It never fails the test; the count of mutants that reach it is printed.
constexpr auto kQuietBound = std::chrono::milliseconds(500);
const std::string kFramesMagic = "ESF1";

uint64_t Seed() {
  const char* env = std::getenv("ESD_MUTATION_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 0) : kSeed;
}

std::string Hex(const std::string& bytes) {
  std::ostringstream out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    static const char kDigits[] = "0123456789abcdef";
    const auto b = static_cast<uint8_t>(bytes[i]);
    out << (i % 8 == 0 && i > 0 ? " " : "") << kDigits[b >> 4] << kDigits[b & 15];
  }
  return out.str();
}

// ---- Well-formed requests, as bytes ----

enum class Answer { kLogin, kAppend, kCommand, kCapability };

// A well-formed request as a client sends it: whole Cap'n Proto messages in the standard
// stream framing (over RPC, the bootstrap and calls that lead to it, pipelined).
struct Request {
  Request(std::string name_, Answer answer_, uint64_t answer_id_)
      : name(std::move(name_)), answer(answer_), answer_id(answer_id_) {}

  std::string name;
  Answer answer;
  uint64_t answer_id;          // the framed request's id, or the RPC question its Return answers
  std::string bytes;
  std::vector<size_t> frames;  // where each message starts (its segment table)
  std::string refusal;         // with --auth: what the daemon's refusal of it as it is says

  void Add(capnp::MessageBuilder& message) {
    frames.push_back(bytes.size());
    auto words = capnp::messageToFlatArray(message);
    bytes.append(reinterpret_cast<const char*>(words.asBytes().begin()), words.asBytes().size());
  }
};

capnp::Data::Reader DataOf(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(s.data()), s.size());
}

// Events with fixed ids (16 readable bytes, `tag` at most 13 of them), so that mutants are
// the same on every run.
void FillEvents(capnp::List<rpc::EventData>::Builder events, const std::string& tag) {
  for (uint i = 0; i < events.size(); ++i) {
    std::string id = std::to_string(i);
    id += "-" + tag;
    id.resize(16, '#');
    events[i].setId(DataOf(id));
    events[i].setType("FuzzAppended");
    if (i == 0) {
      events[i].setContentType("application/json");
      events[i].setMetadata(DataOf("{\"m\":1}"));
    }
    events[i].setData(DataOf("{\"n\":" + std::to_string(i) + "}"));
  }
}

Request FramedLogin() {
  Request r{"framed login", Answer::kLogin, 1};
  capnp::MallocMessageBuilder m;
  auto request = m.initRoot<rpc::frames::Request>();
  request.setId(r.answer_id);
  request.setLogin("fuzz-token");
  r.Add(m);
  return r;
}

// `segment_words`: the first segment's size; 1 with FIXED_SIZE puts nearly every object in
// a segment of its own, reached through far pointers.
Request FramedAppend(const std::string& name, uint64_t id, const std::string& stream, const std::string& tag,
                     uint segment_words) {
  Request r{name, Answer::kAppend, id};
  capnp::MallocMessageBuilder m(segment_words, capnp::AllocationStrategy::FIXED_SIZE);
  auto request = m.initRoot<rpc::frames::Request>();
  request.setId(id);
  auto append = request.initAppend();
  append.setStream(stream);
  append.initExpected().setAny();
  FillEvents(append.initEvents(2), tag);
  r.Add(m);
  return r;
}

Request FramedCommand(const std::string& name, uint64_t id,
                      const std::function<void(rpc::frames::OrderCommand::Builder)>& kind) {
  Request r{"framed " + name, Answer::kCommand, id};
  capnp::MallocMessageBuilder m;
  auto request = m.initRoot<rpc::frames::Request>();
  request.setId(id);
  auto command = request.initCommand();
  command.getMeta().setCommandId("fuzz-command-" + name);
  command.getMeta().setCorrelationId("fuzz-correlation");
  command.setOrderId("fuzz-order");
  kind(command);
  r.Add(m);
  return r;
}

std::vector<Request> FramedRequests() {
  using Command = rpc::frames::OrderCommand::Builder;
  return {
      FramedLogin(),
      FramedAppend("framed append", 2, "fuzz-framed", "framed", 1024),
      FramedAppend("framed append in one-word segments", 3, "fuzz-framed-segments", "segments", 1),
      FramedCommand("createOrder", 4, [](Command c) { c.initCreateOrder().setCustomerId("fuzz-customer"); }),
      FramedCommand("addItem", 5,
                    [](Command c) {
                      auto add = c.initAddItem();
                      add.setSku("fuzz-sku");
                      add.setQuantity(3);
                      add.setUnitPriceCents(250);
                    }),
      FramedCommand("removeItem", 6,
                    [](Command c) {
                      auto remove = c.initRemoveItem();
                      remove.setSku("fuzz-sku");
                      remove.setQuantity(1);
                    }),
      FramedCommand("placeOrder", 7, [](Command c) { c.setPlaceOrder(); }),
      FramedCommand("cancelOrder", 8, [](Command c) { c.initCancelOrder().setReason("fuzz-reason"); }),
  };
}

// RPC: question 0 is the bootstrap capability, 1 its login (the Session), 2 the service of
// the Session, 3 the call on it. Method ids are the @ordinals of protocol/esd.capnp.
constexpr uint16_t kLoginMethod = 0;        // Bootstrap.login
constexpr uint16_t kEventStoreMethod = 1;   // Session.eventStore
constexpr uint16_t kOrdersMethod = 3;       // Session.orders
constexpr uint16_t kAppendMethod = 0;       // EventStore.append
constexpr uint16_t kCreateOrderMethod = 0;  // OrderService.createOrder

// A Call of `method` on what question `on` returns: the answer itself for a bootstrap, else
// the capability in pointer field 0 of its results (every call here returns one there).
capnp::AnyPointer::Builder InitCall(capnp::MallocMessageBuilder& m, uint32_t question, uint32_t on,
                                    uint64_t interface_id, uint16_t method) {
  auto call = m.initRoot<capnp::rpc::Message>().initCall();
  call.setQuestionId(question);
  auto target = call.initTarget().initPromisedAnswer();
  target.setQuestionId(on);
  if (on > 0) target.initTransform(1)[0].setGetPointerField(0);
  call.setInterfaceId(interface_id);
  call.setMethodId(method);
  return call.initParams().getContent();
}

// The bootstrap (question 0), then with `calls` >= 1 the login (1), with `calls` >= 2 the
// Session method `service_method` (2); the request is answered by question `calls`, whose
// call (3) a caller adds.
Request RpcPrelude(const std::string& name, Answer answer, int calls, uint16_t service_method = 0) {
  Request r{name, answer, static_cast<uint64_t>(calls)};
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
    r.Add(m);
  }
  if (calls >= 1) {
    capnp::MallocMessageBuilder m;
    InitCall(m, 1, 0, capnp::typeId<rpc::Bootstrap>(), kLoginMethod).initAs<rpc::Bootstrap::LoginParams>().setToken("");
    r.Add(m);
  }
  if (calls >= 2) {
    capnp::MallocMessageBuilder m;
    InitCall(m, 2, 1, capnp::typeId<rpc::Session>(), service_method).initAsAnyStruct(0, 0);  // no parameters
    r.Add(m);
  }
  return r;
}

std::vector<Request> RpcRequests() {
  Request append = RpcPrelude("rpc append", Answer::kAppend, 3, kEventStoreMethod);
  {
    capnp::MallocMessageBuilder m;
    auto params = InitCall(m, 3, 2, capnp::typeId<rpc::EventStore>(), kAppendMethod)
                      .initAs<rpc::EventStore::AppendParams>();
    params.setStream("fuzz-rpc");
    params.initExpected().setAny();
    FillEvents(params.initEvents(2), "rpc");
    append.Add(m);
  }
  Request create = RpcPrelude("rpc createOrder", Answer::kCommand, 3, kOrdersMethod);
  {
    capnp::MallocMessageBuilder m;
    auto params = InitCall(m, 3, 2, capnp::typeId<rpc::OrderService>(), kCreateOrderMethod)
                      .initAs<rpc::OrderService::CreateOrderParams>();
    params.getMeta().setCommandId("fuzz-rpc-command");
    params.setOrderId("fuzz-rpc-order");
    params.setCustomerId("fuzz-customer");
    create.Add(m);
  }
  return {RpcPrelude("rpc bootstrap", Answer::kCapability, 0), RpcPrelude("rpc login", Answer::kCapability, 1),
          std::move(append), std::move(create)};
}

// ---- With --auth ----

// Tokens of the --auth file. Only the test's own clients send the admin's (they ask for the
// daemon's status too); no mutant can make it from the bytes it is given (it shares no run of
// three bytes with them).
constexpr const char* kReaderToken = "fuzz-reader";
constexpr const char* kAdminToken = "W9qZx2Lm7Pk4Jt8V";
constexpr const char* kWrongToken = "fuzz-wrong";

// One connection's bytes: `login` (none when null), then an append and a createOrder, which
// are refused as they are: a reader's for its role, else for want of a known token.
Request FramedWithToken(const std::string& name, const char* login) {
  Request r{name, Answer::kAppend, 2};
  r.refusal = login != nullptr && std::string_view(login) == kReaderToken ? "may not" : "unauthenticated";
  if (login != nullptr) {
    capnp::MallocMessageBuilder m;
    auto request = m.initRoot<rpc::frames::Request>();
    request.setId(1);
    request.setLogin(login);
    r.Add(m);
  }
  {
    capnp::MallocMessageBuilder m;
    auto request = m.initRoot<rpc::frames::Request>();
    request.setId(2);
    auto append = request.initAppend();
    append.setStream("fuzz-auth-framed");
    append.initExpected().setAny();
    FillEvents(append.initEvents(2), "auth-framed");
    r.Add(m);
  }
  {
    capnp::MallocMessageBuilder m;
    auto request = m.initRoot<rpc::frames::Request>();
    request.setId(3);
    auto command = request.initCommand();
    command.getMeta().setCommandId("fuzz-auth-command");
    command.setOrderId("fuzz-auth-order");
    command.initCreateOrder().setCustomerId("fuzz-auth-customer");
    r.Add(m);
  }
  return r;
}

std::vector<Request> FramedRequestsWithoutAWriter() {
  return {FramedWithToken("framed reader's login, append, createOrder", kReaderToken),
          FramedWithToken("framed wrong login, append, createOrder", kWrongToken),
          FramedWithToken("framed append, createOrder without a login", nullptr)};
}

// The RPC chain of RpcRequests with `token` in the login, to an append or a createOrder.
Request RpcWithToken(const std::string& name, const char* token, bool order) {
  Request r{name, order ? Answer::kCommand : Answer::kAppend, 3};
  r.refusal = std::string_view(token) == kReaderToken ? "may not" : "unauthenticated";
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
    r.Add(m);
  }
  {
    capnp::MallocMessageBuilder m;
    InitCall(m, 1, 0, capnp::typeId<rpc::Bootstrap>(), kLoginMethod)
        .initAs<rpc::Bootstrap::LoginParams>()
        .setToken(token);
    r.Add(m);
  }
  {
    capnp::MallocMessageBuilder m;
    InitCall(m, 2, 1, capnp::typeId<rpc::Session>(), order ? kOrdersMethod : kEventStoreMethod)
        .initAsAnyStruct(0, 0);
    r.Add(m);
  }
  capnp::MallocMessageBuilder m;
  if (order) {
    auto params = InitCall(m, 3, 2, capnp::typeId<rpc::OrderService>(), kCreateOrderMethod)
                      .initAs<rpc::OrderService::CreateOrderParams>();
    params.getMeta().setCommandId("fuzz-auth-rpc-command");
    params.setOrderId("fuzz-auth-rpc-order");
    params.setCustomerId("fuzz-auth-customer");
  } else {
    auto params =
        InitCall(m, 3, 2, capnp::typeId<rpc::EventStore>(), kAppendMethod).initAs<rpc::EventStore::AppendParams>();
    params.setStream("fuzz-auth-rpc");
    params.initExpected().setAny();
    FillEvents(params.initEvents(2), "auth-rpc");
  }
  r.Add(m);
  return r;
}

std::vector<Request> RpcRequestsWithoutAWriter() {
  return {RpcWithToken("rpc reader's login, append", kReaderToken, false),
          RpcWithToken("rpc reader's login, createOrder", kReaderToken, true),
          RpcWithToken("rpc wrong login, append", kWrongToken, false),
          RpcWithToken("rpc wrong login, createOrder", kWrongToken, true)};
}

// ---- Mutations ----

// A mutant and what was done to make it, for the report of a failure.
struct Mutant {
  std::string bytes;
  std::string how;
};

class Mutator {
 public:
  Mutator(uint64_t seed, size_t request, int index)
      : rng_(storage::testing::Mix(seed ^ storage::testing::Mix(request * 1'000'003 + static_cast<uint64_t>(index)))) {}

  // Mostly one mutation, sometimes two or three on top of each other.
  Mutant Mutate(const Request& request) {
    Mutant m{request.bytes, ""};
    const size_t rounds = Below(4) == 0 ? 2 + Below(2) : 1;
    for (size_t i = 0; i < rounds; ++i) MutateOnce(request, m);
    return m;
  }

 private:
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  // A value that lands on edges: 0, 1, all ones, the sign bit, the u32 bounds, or any.
  uint32_t Interesting(uint32_t near) {
    static constexpr uint32_t kValues[] = {0, 1, 2, 0x7f, 0xff, 0xffff, 0x10000, 0x1fffffff, 0x7fffffff, 0x80000000,
                                           0xfffffffe, 0xffffffff};
    switch (Below(4)) {
      case 0: return kValues[Below(std::size(kValues))];
      case 1: return near + static_cast<uint32_t>(Below(17)) - 8;
      case 2: return near * 2 + 1;
      default: return static_cast<uint32_t>(rng_());
    }
  }

  uint32_t Load32(const std::string& s, size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, s.data() + at, 4);
    return v;
  }
  void Store32(std::string& s, size_t at, uint32_t v) { std::memcpy(s.data() + at, &v, 4); }

  void Note(Mutant& m, const std::string& what) { m.how += (m.how.empty() ? "" : "; ") + what; }

  void MutateOnce(const Request& request, Mutant& m) {
    std::string& b = m.bytes;
    if (b.empty()) {
      b = request.bytes.substr(0, 8);
      Note(m, "restart from the first word");
    }
    switch (Below(9)) {
      case 0: {  // flip bits
        const size_t n = 1 + Below(4);
        for (size_t i = 0; i < n; ++i) {
          const size_t at = Below(b.size()), bit = Below(8);
          b[at] = static_cast<char>(b[at] ^ (1 << bit));
          Note(m, "flip bit " + std::to_string(bit) + " of byte " + std::to_string(at));
        }
        break;
      }
      case 1: {  // overwrite bytes
        const size_t n = 1 + Below(4);
        for (size_t i = 0; i < n; ++i) {
          const size_t at = Below(b.size());
          b[at] = static_cast<char>(rng_());
          Note(m, "overwrite byte " + std::to_string(at));
        }
        break;
      }
      case 2:    // a 32-bit half of a word (a pointer's offset or its size) to an edge value
      case 3: {  // (twice as likely: pointers are where a reader goes wrong)
        if (b.size() < 4) break;
        const size_t at = Below(b.size() / 4) * 4;
        const uint32_t v = Interesting(Load32(b, at));
        Store32(b, at, v);
        Note(m, "u32 at " + std::to_string(at) + " = " + std::to_string(v));
        break;
      }
      case 4: {  // truncate
        const size_t to = Below(b.size());
        b.resize(to);
        Note(m, "truncate to " + std::to_string(to));
        break;
      }
      case 5: {  // the segment count of one message's stream framing
        const size_t at = request.frames[Below(request.frames.size())];
        if (at + 4 > b.size()) break;
        const uint32_t v = Interesting(Load32(b, at));
        Store32(b, at, v);
        Note(m, "segment count - 1 of the message at " + std::to_string(at) + " = " + std::to_string(v));
        break;
      }
      case 6: {  // a segment size in one message's stream framing
        const size_t frame = request.frames[Below(request.frames.size())];
        if (frame + 8 > b.size()) break;
        const size_t segments = std::min<size_t>(Load32(b, frame) + size_t{1}, 16);
        const size_t at = frame + 4 + 4 * Below(segments);
        if (at + 4 > b.size()) break;
        const uint32_t v = Interesting(Load32(b, at));
        Store32(b, at, v);
        Note(m, "segment size at " + std::to_string(at) + " = " + std::to_string(v));
        break;
      }
      case 7: {  // duplicate a range (a word-aligned one half of the time)
        const bool aligned = Below(2) == 0;
        size_t from = Below(b.size()), len = 1 + Below(std::min<size_t>(b.size() - from, 64));
        size_t to = Below(b.size() + 1);
        if (aligned) {
          from -= from % 8;
          len = std::max<size_t>(8, len - len % 8);
          to -= to % 8;
        }
        const std::string copy = b.substr(from, len);
        b.insert(std::min(to, b.size()), copy);
        Note(m, "copy " + std::to_string(copy.size()) + " bytes from " + std::to_string(from) + " to " +
                    std::to_string(to));
        break;
      }
      default: {  // delete a range
        const size_t from = Below(b.size()), len = 1 + Below(std::min<size_t>(b.size() - from, 32));
        b.erase(from, len);
        Note(m, "delete " + std::to_string(len) + " bytes at " + std::to_string(from));
        break;
      }
    }
  }

  std::mt19937_64 rng_;
};

// ---- One raw connection ----

class RawConnection {
 public:
  explicit RawConnection(const std::string& address) : fd_(testing::ConnectLoopback(address)) {}
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void Send(const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;  // the daemon has closed it already: what it said is read after
      sent += static_cast<size_t>(n);
    }
  }
  // The client has said all (a half-close): the daemon sees the end of the connection.
  void SaidAll() { ::shutdown(fd_, SHUT_WR); }

  // Reads until `enough(answer)` holds (never, when null), the daemon closes, or `bound`
  // passes; true unless the bound passed.
  bool ReadUntil(const std::function<bool(const std::string&)>& enough, std::chrono::milliseconds bound) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + bound;
    char chunk[4096];
    while (!closed && !(enough && enough(answer))) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        answer.append(chunk, static_cast<size_t>(n));
      } else {
        closed = true;
        reset = n < 0;
      }
    }
    return true;
  }

  std::string answer;   // what the daemon sent
  bool closed = false;  // the daemon closed the connection (or reset it)
  bool reset = false;   // ... with a reset: answers it had sent may have been dropped

 private:
  int fd_;
};

// The whole Cap'n Proto messages at the front of `bytes` (stream framing), taken off it;
// what is left is a message not yet whole.
std::vector<kj::Array<capnp::word>> TakeMessages(std::string& bytes) {
  std::vector<kj::Array<capnp::word>> messages;
  while (bytes.size() >= sizeof(capnp::word)) {
    auto prefix = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(prefix.begin(), bytes.data(), prefix.asBytes().size());
    const size_t words = capnp::expectedSizeInWordsFromPrefix(prefix);
    if (words > prefix.size()) break;
    auto message = kj::heapArray<capnp::word>(words);
    std::memcpy(message.begin(), bytes.data(), message.asBytes().size());
    bytes.erase(0, message.asBytes().size());
    messages.push_back(kj::mv(message));
  }
  return messages;
}

// `answer` holds the daemon's answer to `request`, and it says the request was served: an
// append written, a command decided (done or refused by a rule of the order), a capability
// handed out.
bool Served(const Request& request, bool framed, std::string answer) {
  for (auto& words : TakeMessages(answer)) {
    capnp::FlatArrayMessageReader message(words);
    if (framed) {
      auto response = message.getRoot<rpc::frames::Response>();
      if (response.getId() != request.answer_id) continue;
      switch (response.which()) {
        case rpc::frames::Response::LOGIN: return request.answer == Answer::kLogin;
        case rpc::frames::Response::APPEND: return response.getAppend().isOk();
        case rpc::frames::Response::COMMAND: return !response.getCommand().isFailed();
        default: return false;
      }
    }
    auto rpc_message = message.getRoot<capnp::rpc::Message>();
    if (!rpc_message.isReturn() || rpc_message.getReturn().getAnswerId() != request.answer_id) continue;
    if (!rpc_message.getReturn().isResults()) return false;
    auto content = rpc_message.getReturn().getResults().getContent();
    switch (request.answer) {
      case Answer::kAppend: return content.getAs<rpc::EventStore::AppendResults>().getResult().isOk();
      case Answer::kCommand: return !content.getAs<rpc::OrderService::CreateOrderResults>().getResult().isFailed();
      default: return true;
    }
  }
  return false;
}

// The questions (Bootstrap and Call messages) among the whole RPC messages of `bytes` that
// decode: the daemon answers each with a Return, unless it aborts the connection.
std::set<uint32_t> Questions(std::string bytes) {
  std::set<uint32_t> questions;
  for (auto& words : TakeMessages(bytes)) {
    try {
      capnp::FlatArrayMessageReader message(words);
      auto rpc_message = message.getRoot<capnp::rpc::Message>();
      if (rpc_message.isBootstrap()) questions.insert(rpc_message.getBootstrap().getQuestionId());
      if (rpc_message.isCall()) questions.insert(rpc_message.getCall().getQuestionId());
    } catch (const kj::Exception&) {
      break;  // the daemon aborts here
    }
  }
  return questions;
}

// `kind` when question 3 among the RPC messages of `bytes` is still a call of the method
// that kind names (EventStore.append, OrderService.createOrder), else kCapability: a mutant
// may call another method, whose results say nothing of an append or a command.
Answer Question3Kind(std::string bytes, Answer kind) {
  const uint64_t interface_id =
      kind == Answer::kAppend ? capnp::typeId<rpc::EventStore>() : capnp::typeId<rpc::OrderService>();
  const uint16_t method = kind == Answer::kAppend ? kAppendMethod : kCreateOrderMethod;
  for (auto& words : TakeMessages(bytes)) {
    try {
      capnp::FlatArrayMessageReader message(words);
      auto rpc_message = message.getRoot<capnp::rpc::Message>();
      if (!rpc_message.isCall() || rpc_message.getCall().getQuestionId() != 3) continue;
      auto call = rpc_message.getCall();
      return call.getInterfaceId() == interface_id && call.getMethodId() == method ? kind : Answer::kCapability;
    } catch (const kj::Exception&) {
      break;
    }
  }
  return Answer::kCapability;
}

// `answer` holds a Return for each of `questions`, or an Abort.
bool Answered(std::set<uint32_t> questions, std::string answer) {
  for (auto& words : TakeMessages(answer)) {
    try {
      capnp::FlatArrayMessageReader message(words);
      auto rpc_message = message.getRoot<capnp::rpc::Message>();
      if (rpc_message.isAbort()) return true;
      if (rpc_message.isReturn()) questions.erase(rpc_message.getReturn().getAnswerId());
    } catch (const kj::Exception&) {
      return true;  // an answer that does not decode: ExpectWellFormedAnswers says so
    }
  }
  return questions.empty();
}

// The daemon is running: its process is there and is no zombie (a child that died stays
// one until EsdProcess reaps it, and kill(pid, 0) still finds it).
bool Running(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t name_end = line.rfind(')');
  return name_end != std::string::npos && name_end + 2 < line.size() && line[name_end + 2] != 'Z' &&
         line[name_end + 2] != 'X';
}

// What the daemon says when it fails badly: std::terminate, KJ's last words (or its signal
// handler's), a failed assert(), a sanitizer's report. (An abort says nothing: Running()
// sees it. Not "terminate" alone: capnp's refusals say "not NUL-terminated".)
std::string Alarm(const std::string& output) {
  for (const char* needle : {"terminate called", "*** Fatal uncaught", "*** Received signal", "Assertion `",
                             "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:"}) {
    if (output.find(needle) != std::string::npos) return needle;
  }
  return "";
}

// ---- The campaign ----

class MutatedRequests : public ::testing::Test {
 protected:
  void SetUp() override {
    esd_ = std::make_unique<EsdProcess>(dir_.path() / "data", esd_args_);
    // Connected before any mutant: they must be served throughout, as any other client.
    bystander_ = Client::Connect(esd_->rpc_address(), token_);
    bystander_appender_ = Appender::Connect(Options());
  }

  // The daemon runs with --auth; the test's own clients log in as admins.
  void UseAuth() {
    const auto path = dir_.path() / "tokens";
    std::ofstream(path) << "# token role\n"
                        << kReaderToken << " reader\n"
                        << kAdminToken << " admin\n";
    esd_args_ = {"--auth", path.string()};
    token_ = kAdminToken;
  }

  client::ConnectOptions Options() const {
    client::ConnectOptions options;
    options.address = esd_->rpc_address();
    options.token = token_;
    return options;
  }

  // Each request, as it is, is refused for its role or its token (r.refusal): nothing done.
  void ExpectRefusedAsTheyAre(const std::vector<Request>& requests, const std::string& prefix) {
    const bool framed = !prefix.empty();
    for (const Request& r : requests) {
      sent_.push_back(r.bytes);
      RawConnection c(esd_->rpc_address());
      c.Send(prefix + r.bytes);
      if (!framed) {
        EXPECT_TRUE(c.ReadUntil([&](const std::string& answer) { return Answered(Questions(r.bytes), answer); },
                                kHangBound))
            << r.name << ": its calls were not answered within " << kHangBound.count() << " s";
      }
      c.SaidAll();
      EXPECT_TRUE(c.ReadUntil(nullptr, kHangBound)) << r.name << ": the daemon did not close the connection";
      // A Text of a message is its bytes: the refusal's words are in what was read.
      EXPECT_NE(c.answer.find(r.refusal), std::string::npos)
          << r.name << " was not refused for its role or token ('" << r.refusal << "'): " << Hex(c.answer);
      const uint64_t done = done_, refused = refused_;
      ExpectWellFormedAnswers(c, framed, r.answer, r.name);
      EXPECT_EQ(done_, done) << r.name << " was served as it is";
      EXPECT_GT(refused_, refused) << r.name << " was not refused as it is";
    }
    answers_ = ok_answers_ = errors_ = done_ = refused_ = 0;
  }

  // Each request, as it is, is served: else its mutants would prove little.
  void ExpectServedAsTheyAre(const std::vector<Request>& requests, const std::string& prefix) {
    const bool framed = !prefix.empty();
    for (const Request& r : requests) {
      sent_.push_back(r.bytes);
      RawConnection c(esd_->rpc_address());
      c.Send(prefix + r.bytes);
      c.ReadUntil([&](const std::string& answer) { return Served(r, framed, answer); }, kHangBound);
      EXPECT_TRUE(Served(r, framed, c.answer)) << r.name << " was not served as it is: " << Hex(c.answer);
    }
  }

  // kMutantsPerRequest mutants of each request, each on its own connection after `prefix`,
  // and the checks after every kMutantsPerCheck of them and at the end.
  void SendMutants(const std::vector<Request>& requests, const std::string& prefix) {
    const uint64_t seed = Seed();
    const bool framed = !prefix.empty();
    int count = 0;
    for (size_t r = 0; r < requests.size(); ++r) {
      for (int k = 0; k < kMutantsPerRequest; ++k) {
        Mutator mutator(seed, r, k);
        const Mutant mutant = mutator.Mutate(requests[r]);
        sent_.push_back(mutant.bytes);
        RawConnection c(esd_->rpc_address());
        c.Send(prefix + mutant.bytes);
        if (!framed) {
          // Over RPC the daemon drops the calls in progress when the client goes: wait for
          // the answers first, so that the calls reach esd's code (a framed connection
          // answers what it has read before it closes).
          const std::set<uint32_t> questions = Questions(mutant.bytes);
          const bool answered =
              c.ReadUntil([&](const std::string& answer) { return Answered(questions, answer); }, kQuietBound);
          unanswered_ += !answered;
        }
        c.SaidAll();
        const bool closed = c.ReadUntil(nullptr, kHangBound);
        // Refused for a role or a token: the words of those refusals are in what was read.
        role_refusals_ += c.answer.find("unauthenticated") != std::string::npos ||
                          c.answer.find(" may not ") != std::string::npos;
        std::ostringstream which;
        which << "seed " << seed << ", " << requests[r].name << " (request " << r << "), mutant " << k << " ("
              << mutant.how << "): " << Hex(mutant.bytes);
        ASSERT_TRUE(Running(esd_->pid())) << "the daemon died at or just before " << which.str() << "\n"
                                          << esd_->Output();
        EXPECT_TRUE(closed) << "the daemon did not close a connection whose client had said all within "
                            << kHangBound.count() << " s: " << which.str();
        ExpectWellFormedAnswers(c, framed, framed ? requests[r].answer : Question3Kind(mutant.bytes, requests[r].answer),
                                which.str());
        if (++count % kMutantsPerCheck == 0) {
          ExpectStillServing("after mutant " + std::to_string(k) + " of " + requests[r].name + ", seed " +
                             std::to_string(seed));
          if (HasFatalFailure()) return;
        }
      }
    }
    ExpectStillServing("after the last mutant");
    ExpectEveryMutantConnectionClosed();
    std::cout << (framed ? "framed" : "rpc") << ": " << count << " mutants, seed " << seed << "; " << answers_
              << " answers, " << ok_answers_
              << (framed ? " appends or commands done, " : " appends or createOrders answered with results, ")
              << errors_ << (framed ? " errors; " : " calls answered with an exception; ") << unanswered_
              << " mutants whose calls were not all answered within " << kQuietBound.count() << " ms; "
              << done_ << " appends written or commands decided, " << refused_ << " refused; " << role_refusals_
              << " mutants refused for their role or token\n";
  }

  // What the daemon sent is whole messages of its protocol (framed Responses, RPC Messages),
  // and the last is whole when it closed the connection without a reset. Counts them, and
  // appends written or commands decided (done_) against refusals (refused_); over RPC, those
  // of question 3 when `kind` says which call it is (kAppend, kCommand).
  void ExpectWellFormedAnswers(RawConnection& x, bool framed, Answer kind, const std::string& which) {
    for (auto& words : TakeMessages(x.answer)) {
      ++answers_;
      try {
        capnp::FlatArrayMessageReader message(words);
        if (framed) {
          auto response = message.getRoot<rpc::frames::Response>();
          switch (response.which()) {
            case rpc::frames::Response::LOGIN: break;
            case rpc::frames::Response::APPEND:
              ok_answers_ += response.getAppend().isOk();
              (response.getAppend().isOk() ? done_ : refused_) += 1;
              break;
            case rpc::frames::Response::COMMAND:
              ok_answers_ += response.getCommand().isOk();
              (response.getCommand().isFailed() ? refused_ : done_) += 1;
              break;
            case rpc::frames::Response::ERROR:
              ++errors_;
              ++refused_;
              (void)response.getError();
              break;
            default: ADD_FAILURE() << "an answer of an unknown kind to " << which;
          }
        } else {
          auto rpc_message = message.getRoot<capnp::rpc::Message>();
          if (rpc_message.isReturn()) {  // question 3: the append or createOrder a chain leads to
            auto ret = rpc_message.getReturn();
            ok_answers_ += ret.getAnswerId() == 3 && ret.isResults();
            errors_ += ret.isException();
            refused_ += ret.isException();
            if (ret.getAnswerId() == 3 && ret.isResults() && kind != Answer::kCapability) {
              CountResults(ret.getResults().getContent(), kind);
            }
          }
        }
      } catch (const kj::Exception& e) {
        ADD_FAILURE() << "an answer that does not decode (" << e.getDescription().cStr() << ") to " << which;
      }
    }
    if (x.closed && !x.reset) {
      EXPECT_TRUE(x.answer.empty()) << "the daemon closed in the middle of an answer to " << which;
    }
  }

  // Results of question 3, a call of `kind` (Question3Kind): an append written or a command
  // decided, or a refusal. The daemon built them, so they read as that kind's; the catch is
  // only a guard, and counts nothing.
  void CountResults(capnp::AnyPointer::Reader content, Answer kind) {
    try {
      const bool done = kind == Answer::kAppend
                            ? content.getAs<rpc::EventStore::AppendResults>().getResult().isOk()
                            : !content.getAs<rpc::OrderService::CreateOrderResults>().getResult().isFailed();
      (done ? done_ : refused_) += 1;
    } catch (const kj::Exception&) {
    }
  }

  // The daemon is running, says nothing alarming, and serves well-formed appends within
  // kHangBound on the connections it had and on new ones, over both protocols.
  void ExpectStillServing(const std::string& when) {
    ASSERT_TRUE(Running(esd_->pid())) << "the daemon died " << when << "\n" << esd_->Output();
    const std::string output = esd_->Output();
    ASSERT_EQ(Alarm(output), "") << "the daemon's output " << when << ":\n" << output;
    AppendWell(*bystander_, "well-formed-rpc-bystander", when);
    AppendWell(*bystander_appender_, "well-formed-framed-bystander", when);
    auto fresh = Client::Connect(esd_->rpc_address(), token_);
    AppendWell(*fresh, "well-formed-rpc-fresh", when);
    auto fresh_appender = Appender::Connect(Options());
    AppendWell(*fresh_appender, "well-formed-framed-fresh", when);
    for (const auto& [stream, events] : good_) {  // and what they wrote reads back
      auto last = fresh->ReadStream(stream, UINT64_MAX, 1, /*backward=*/true);
      ASSERT_TRUE(last.has_value() && last->size() == 1) << stream << " " << when;
      EXPECT_EQ(last->front().id, events.back().id) << stream << " " << when;
      EXPECT_EQ(last->front().version, events.size() - 1) << stream << " " << when;
    }
  }

  // Appends one event to `stream` with the exact expected version (so that nothing else was
  // written there) and waits at most kHangBound for the answer.
  template <typename Writer>
  void AppendWell(Writer& writer, const std::string& stream, const std::string& when) {
    const auto known = good_.find(stream);
    const size_t written = known == good_.end() ? 0 : known->second.size();
    const Expected expected = written == 0 ? Expected::NoStream() : Expected::Exact(written - 1);
    const NewEvent event = NewEvent::Json("WellFormed", "{\"n\":" + std::to_string(written) + "}");
    std::optional<AppendResult> result;
    std::optional<std::string> failure;
    auto answered = writer.AppendAsync(stream, expected, {event})
                        .then([&](AppendResult r) { result = std::move(r); },
                              [&](kj::Exception&& e) { failure = e.getDescription().cStr(); })
                        .eagerlyEvaluate(nullptr);
    const bool done = writer.RunUntil([&] { return result || failure; }, kHangBound);
    ASSERT_TRUE(done) << "a well-formed append to " << stream << " was not answered within " << kHangBound.count()
                      << " s " << when;
    ASSERT_FALSE(failure) << "a well-formed append to " << stream << " failed " << when << ": " << *failure;
    ASSERT_TRUE(result->ok()) << "a well-formed append to " << stream << " was refused " << when << ": "
                              << result->reason;
    good_[stream].push_back(event);  // only once it is written: the checks read these back
  }

  // The daemon has let go of every mutant's connection: those left are the test's own.
  void ExpectEveryMutantConnectionClosed() {
    // A connection whose peer closed is torn down in a later turn of the daemon's loop than
    // the one that closed its socket: ask again (each Status call is a round trip through
    // that loop, so the teardowns queued before it have had their turn), within the bound.
    const auto deadline = std::chrono::steady_clock::now() + kHangBound;
    uint32_t open = 0;
    while ((open = bystander_->Status().connections) > 2 && std::chrono::steady_clock::now() < deadline) {
    }
    EXPECT_EQ(open, 2u) << "connections open besides the test's two";
  }

  // Every event in $all decodes and is what a request sent could have written: the
  // well-formed appends exactly, and nothing else that no sent message holds.
  // Returns how many events mutants wrote.
  size_t ExpectTheLogHoldsOnlyWhatWasSent(bool framed) {
    std::vector<RecordedEvent> log;
    for (uint64_t from = 0;;) {
      auto page = bystander_->ReadAll(from, 1000);
      EXPECT_FALSE(page.damage.has_value()) << page.damage->ToString();
      log.insert(log.end(), page.events.begin(), page.events.end());
      if (page.end_of_log || page.events.empty() || page.damage) break;
      from = page.next_position;
    }
    std::map<std::string, std::vector<const RecordedEvent*>> by_stream;
    std::optional<uint64_t> position;
    for (const RecordedEvent& e : log) {
      EXPECT_TRUE(!position || e.position > *position) << "positions go back at " << e.position;
      position = e.position;
      by_stream[e.stream].push_back(&e);
    }
    size_t from_mutants = 0;
    for (const auto& [stream, events] : by_stream) {
      if (auto good = good_.find(stream); good != good_.end()) {
        EXPECT_EQ(events.size(), good->second.size()) << stream;
        if (events.size() != good->second.size()) continue;
        for (size_t v = 0; v < events.size(); ++v) {
          EXPECT_EQ(events[v]->version, v) << stream;
          EXPECT_EQ(events[v]->id, good->second[v].id) << stream << " version " << v;
          EXPECT_EQ(events[v]->data, good->second[v].data) << stream << " version " << v;
        }
        continue;
      }
      for (const RecordedEvent* e : events) {
        ++from_mutants;
        EXPECT_TRUE(Writable(*e, framed)) << "an event no request sent could have written: stream "
                                          << Hex(e->stream) << " version " << e->version << " type "
                                          << Hex(e->type) << " data " << Hex(e->data);
      }
    }
    std::cout << log.size() << " events in $all, " << from_mutants << " of them written by requests sent raw, in "
              << by_stream.size() - good_.size() << " streams\n";
    return from_mutants;
  }

  // `e` passes the checks of an append, and a message sent holds its bytes: a Text or Data
  // of a Cap'n Proto message is a range of that message, so an append that still parsed
  // took its stream name, id, type and payload from one mutant. An order's events are the
  // domain's: its id must come from a message sent. Over RPC a mutated method id may call
  // another method of the same interface: a stream's lifecycle ("$$<stream>", its metadata)
  // or forgetCustomer ("$erasures", and "$$order-<id>" for the orders it deletes).
  bool Writable(const RecordedEvent& e, bool framed) const {
    const std::string id(e.id.begin(), e.id.end());
    if (std::all_of(id.begin(), id.end(), [](char c) { return c == 0; })) return false;
    if (e.type.empty() || e.type.size() > 255 || !storage::IsValidUtf8(e.type)) return false;
    if (!framed && e.stream == "$erasures") return e.type == "CustomerForgotten";
    if (!framed && e.stream.rfind("$$", 0) == 0) return Sent(OrderIdOr(e.stream.substr(2)));
    if (e.stream.rfind("order-", 0) == 0 && WrittenByACommand(e)) return true;
    if (!storage::ValidateStreamName(e.stream).ok() || e.content_type.size() > 255) return false;
    return std::any_of(sent_.begin(), sent_.end(), [&](const std::string& s) {
      return s.find(id) != s.npos && s.find(e.stream) != s.npos && s.find(e.type) != s.npos &&
             s.find(e.content_type) != s.npos && s.find(e.metadata) != s.npos && s.find(e.data) != s.npos;
    });
  }

  // An order event the Order service wrote for a command sent: it decodes as the service's
  // own kind, its order id was sent, and so was every text it carries (a customer, a SKU, a
  // reason: ranges of the command's message).
  bool WrittenByACommand(const RecordedEvent& e) const {
    const auto event = domain::DecodeStoredEvent(e.content_type, e.type, e.data);
    if (!event || !Sent(OrderIdOr(e.stream))) return false;
    return std::visit(
        [&](const auto& ev) {
          using T = std::decay_t<decltype(ev)>;
          if constexpr (std::is_same_v<T, domain::OrderCreated>) {
            return "order-" + ev.order_id == e.stream && Sent(ev.customer_id);
          } else if constexpr (std::is_same_v<T, domain::ItemAdded> || std::is_same_v<T, domain::ItemRemoved>) {
            return Sent(ev.sku);
          } else if constexpr (std::is_same_v<T, domain::OrderCancelled>) {
            return Sent(ev.reason);
          } else {
            return true;  // OrderPlaced: numbers the service computed
          }
        },
        *event);
  }

  // The order's id of an order stream ("order-<id>"), else `stream`.
  static std::string OrderIdOr(const std::string& stream) {
    return stream.rfind("order-", 0) == 0 ? stream.substr(6) : stream;
  }

  bool Sent(const std::string& bytes) const {
    return std::any_of(sent_.begin(), sent_.end(), [&](const std::string& s) { return s.find(bytes) != s.npos; });
  }

  // esctl verify finds the log clean online, the daemon stops cleanly, and verify offline agrees.
  void ExpectCleanStop() {
    const Result online = RunEsctl({"--connect", esd_->rpc_address(), "--token", token_, "verify"});
    EXPECT_EQ(online.code, 0) << online.out << online.err;
    EXPECT_NE(online.out.find("clean: "), std::string::npos) << online.out;
    bystander_.reset();
    bystander_appender_.reset();
    EXPECT_EQ(esd_->Stop(SIGTERM), 0) << esd_->Output();
    EXPECT_EQ(Alarm(esd_->Output()), "") << esd_->Output();
    const Result offline = RunEsctl({"--data-dir", (dir_.path() / "data").string(), "verify"});
    EXPECT_EQ(offline.code, 0) << offline.out << offline.err;
    EXPECT_NE(offline.out.find("clean: "), std::string::npos) << offline.out;
  }

  storage::testing::TempDir dir_;
  std::vector<std::string> esd_args_;  // besides EsdProcess's own
  std::string token_;                  // the test's own clients' (empty without --auth)
  std::unique_ptr<EsdProcess> esd_;
  std::unique_ptr<Client> bystander_;
  std::unique_ptr<Appender> bystander_appender_;
  std::vector<std::string> sent_;                       // every request and mutant sent raw
  std::map<std::string, std::vector<NewEvent>> good_;   // the well-formed appends, by stream
  uint64_t answers_ = 0, ok_answers_ = 0, errors_ = 0, unanswered_ = 0;
  uint64_t done_ = 0, refused_ = 0;  // appends written and commands decided; refusals
  uint64_t role_refusals_ = 0;       // mutants refused for their role or token
};

TEST_F(MutatedRequests, FramedMutantsCloseOnlyTheirConnectionAndWriteNothingUnsent) {
  const std::vector<Request> requests = FramedRequests();
  ExpectServedAsTheyAre(requests, kFramesMagic);
  SendMutants(requests, kFramesMagic);
  if (HasFatalFailure()) return;
  const size_t written = ExpectTheLogHoldsOnlyWhatWasSent(/*framed=*/true);
  // The mutants reached esd's own code: some were served, some refused, some wrote.
  EXPECT_GT(ok_answers_, 0u);
  EXPECT_GT(errors_, 0u);
  EXPECT_GT(written, 0u);
  ExpectCleanStop();
}

TEST_F(MutatedRequests, RpcMutantsCloseOnlyTheirConnectionAndWriteNothingUnsent) {
  const std::vector<Request> requests = RpcRequests();
  ExpectServedAsTheyAre(requests, "");
  SendMutants(requests, "");
  if (HasFatalFailure()) return;
  ExpectTheLogHoldsOnlyWhatWasSent(/*framed=*/false);
  // The mutants reached esd's own code: some appends or createOrders were served.
  EXPECT_GT(ok_answers_, 0u);
  ExpectCleanStop();
}

class MutatedRequestsWithAuth : public MutatedRequests {
 protected:
  void SetUp() override {
    UseAuth();
    MutatedRequests::SetUp();
  }


  // The campaign of both protocols: `requests` are refused as they are; mutated, none
  // writes an event or has an append or command done, and some reach the role and token
  // checks.
  void ExpectNoMutantWrites(const std::vector<Request>& requests, const std::string& prefix) {
    ExpectRefusedAsTheyAre(requests, prefix);
    SendMutants(requests, prefix);
    if (HasFatalFailure()) return;
    EXPECT_EQ(ExpectTheLogHoldsOnlyWhatWasSent(/*framed=*/!prefix.empty()), 0u);
    EXPECT_EQ(done_, 0u) << "a mutant's append was written or its command decided";
    EXPECT_GT(role_refusals_, 0u);
    ExpectCleanStop();
  }
};

TEST_F(MutatedRequestsWithAuth, FramedMutantsWithoutAWritersTokenWriteNothing) {
  ExpectNoMutantWrites(FramedRequestsWithoutAWriter(), kFramesMagic);
}

TEST_F(MutatedRequestsWithAuth, RpcMutantsWithoutAWritersTokenWriteNothing) {
  ExpectNoMutantWrites(RpcRequestsWithoutAWriter(), "");
}

}  // namespace
}  // namespace esd
