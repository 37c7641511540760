#include "client/client.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <cstring>
#include <initializer_list>
#include <iterator>

#include "client/client_internal.h"
#include "client/coalesced_writes.h"
#include "client/tls.h"
#include "common/random_uuid.h"
#include "protocol/esd.capnp.h"
#include "protocol/socket_stream.h"
#include "protocol/transport.h"

namespace esd::client {

using internal::Str;

Error ErrorOf(const kj::Exception& e) {
  std::string what = e.getDescription().cStr();
  constexpr std::string_view kRemote = "remote exception: ";
  if (what.rfind(kRemote, 0) == 0) what.erase(0, kRemote.size());
  if (what.rfind("unauthenticated", 0) == 0) return Error(Error::Kind::kUnauthenticated, what);
  if (what.rfind("permission denied", 0) == 0) return Error(Error::Kind::kPermissionDenied, what);
  // esd's refusal of a connection past its --max-connections (server/connection.h).
  if (what.rfind("too many connections", 0) == 0) return Error(Error::ConnectProblem::kTooManyConnections, what);
  if (e.getType() == kj::Exception::Type::DISCONNECTED) return Error(Error::Kind::kDisconnected, what);
  return Error(Error::Kind::kRemote, what);
}

namespace {

[[noreturn]] void Rethrow(const kj::Exception& e) { throw ErrorOf(e); }

Damage ToDamage(rpc::Damage::Reader d) {
  return {Str(d.getFile()), d.getOffset(), d.getHasPosition() ? std::optional<uint64_t>(d.getPosition()) : std::nullopt,
          Str(d.getReason())};
}

RecordedEvent ToEvent(rpc::RecordedEvent::Reader e) {
  RecordedEvent out;
  out.stream = Str(e.getStream());
  out.version = e.getVersion();
  out.position = e.getPosition();
  auto id = e.getId();
  if (id.size() == out.id.size()) std::memcpy(out.id.data(), id.begin(), id.size());
  out.type = Str(e.getType());
  out.content_type = Str(e.getContentType());
  out.timestamp_micros = e.getTimestampMicros();
  out.metadata = Str(e.getMetadata());
  out.data = Str(e.getData());
  return out;
}

std::string_view View(capnp::Text::Reader t) { return std::string_view(t.cStr(), t.size()); }
std::string_view View(capnp::Data::Reader d) { return std::string_view(reinterpret_cast<const char*>(d.begin()), d.size()); }

RecordedEventView ToView(rpc::RecordedEvent::Reader e) {
  RecordedEventView v;
  v.stream = View(e.getStream());
  v.version = e.getVersion();
  v.position = e.getPosition();
  auto id = e.getId();
  if (id.size() == v.id.size()) std::memcpy(v.id.data(), id.begin(), id.size());
  v.type = View(e.getType());
  v.content_type = View(e.getContentType());
  v.timestamp_micros = e.getTimestampMicros();
  v.metadata = View(e.getMetadata());
  v.data = View(e.getData());
  return v;
}

// The events of `records` (protocol/esd.capnp, Subscriber.events, readAll) as views into
// it. Every size is checked against what is there: a record that does not fit throws.
void DecodeRecords(capnp::Data::Reader records, std::vector<RecordedEventView>& out) {
  constexpr size_t kHeader = 64;
  const uint8_t* p = records.begin();
  size_t left = records.size();
  auto u64 = [](const uint8_t* at) {
    uint64_t v;
    std::memcpy(&v, at, 8);
    return v;
  };
  auto u32 = [](const uint8_t* at) {
    uint32_t v;
    std::memcpy(&v, at, 4);
    return v;
  };
  auto u16 = [](const uint8_t* at) {
    uint16_t v;
    std::memcpy(&v, at, 2);
    return v;
  };
  while (left > 0) {
    KJ_REQUIRE(left >= kHeader, "a record from the server is cut short", left);
    const uint32_t record_size = u32(p + 40), data_size = u32(p + 44), metadata_size = u32(p + 48);
    const uint16_t stream_size = u16(p + 52), type_size = u16(p + 54), content_type_size = u16(p + 56);
    const uint64_t fields = uint64_t{stream_size} + type_size + content_type_size + metadata_size + data_size;
    KJ_REQUIRE(record_size % 8 == 0 && record_size <= left && kHeader + fields <= record_size,
               "a record from the server does not fit its sizes", record_size, fields, left);
    RecordedEventView& v = out.emplace_back();
    v.position = u64(p);
    v.version = u64(p + 8);
    std::memcpy(v.id.data(), p + 16, v.id.size());
    v.timestamp_micros = u64(p + 32);
    const char* f = reinterpret_cast<const char*>(p + kHeader);
    v.stream = std::string_view(f, stream_size);
    f += stream_size;
    v.type = std::string_view(f, type_size);
    f += type_size;
    v.content_type = std::string_view(f, content_type_size);
    f += content_type_size;
    v.metadata = std::string_view(f, metadata_size);
    f += metadata_size;
    v.data = std::string_view(f, data_size);
    p += record_size;
    left -= record_size;
  }
}

RecordedEvent ToEvent(const RecordedEventView& v) {
  return RecordedEvent{std::string(v.stream), v.version,          v.position,   v.id, std::string(v.type),
                       std::string(v.content_type), v.timestamp_micros, std::string(v.metadata),
                       std::string(v.data)};
}

std::vector<RecordedEvent> ToEvents(capnp::List<rpc::RecordedEvent>::Reader list) {
  std::vector<RecordedEvent> out;
  out.reserve(list.size());
  for (auto e : list) out.push_back(ToEvent(e));
  return out;
}

}  // namespace

using internal::RejectName;

void internal::SetExpected(rpc::ExpectedVersion::Builder out, Expected expected) {
  switch (expected.kind) {
    case Expected::Kind::kAny: out.setAny(); break;
    case Expected::Kind::kNoStream: out.setNoStream(); break;
    case Expected::Kind::kStreamExists: out.setStreamExists(); break;
    case Expected::Kind::kExact: out.setExact(expected.version); break;
  }
}

std::string internal::Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
std::string internal::Str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

const char* internal::RejectName(rpc::RejectCode code) {
  switch (code) {
    case rpc::RejectCode::INVALID_ARGUMENT: return "invalid-argument";
    case rpc::RejectCode::IDEMPOTENCY_CONFLICT: return "idempotency-conflict";
    case rpc::RejectCode::OUT_OF_SPACE: return "out-of-space";
    case rpc::RejectCode::PERMISSION_DENIED: return "permission-denied";
    case rpc::RejectCode::UNAVAILABLE: return "unavailable";
    case rpc::RejectCode::DATA_LOSS: return "data-loss";
    case rpc::RejectCode::OVERLOADED: return "overloaded";
  }
  return "unknown";
}

namespace internal {

AppendResult ToAppendResult(rpc::AppendResult::Reader r) {
  AppendResult out;
  switch (r.which()) {
    case rpc::AppendResult::OK: {
      auto ok = r.getOk();
      out.first_version = ok.getFirstVersion();
      out.last_version = ok.getLastVersion();
      out.first_position = ok.getFirstPosition();
      out.last_position = ok.getLastPosition();
      out.timestamp_micros = ok.getTimestampMicros();
      out.already_written = ok.getAlreadyWritten();
      break;
    }
    case rpc::AppendResult::WRONG_EXPECTED_VERSION: {
      out.outcome = AppendResult::Outcome::kWrongExpectedVersion;
      auto w = r.getWrongExpectedVersion();
      if (w.getStreamExists()) out.actual_version = w.getActualVersion();
      break;
    }
    case rpc::AppendResult::REJECTED:
      out.outcome = AppendResult::Outcome::kRejected;
      out.reject_code = RejectName(r.getRejected().getCode());
      out.reason = Str(r.getRejected().getReason());
      break;
    case rpc::AppendResult::STREAM_DELETED: out.outcome = AppendResult::Outcome::kStreamDeleted; break;
    default:
      out.outcome = AppendResult::Outcome::kRejected;
      out.reject_code = "unknown";
      out.reason = "the server answered with an outcome this client does not know";
  }
  return out;
}

}  // namespace internal

namespace {

using internal::ToAppendResult;

void SetFilter(rpc::Filter::Builder out, const Filter& f) {
  out.setStreamPrefix(f.stream_prefix);
  auto types = out.initEventTypes(f.event_types.size());
  for (size_t i = 0; i < f.event_types.size(); ++i) types.set(i, f.event_types[i]);
}

struct SubscriptionState {
  Client::SubscriptionCallbacks callbacks;
  bool caught_up = false;
  std::optional<std::string> dropped;
  std::optional<Damage> damage;  // why it was dropped, when the log is damaged there
  // Set when the handle is dropped: no callback runs after that. The callbacks themselves
  // live on until the subscriber object goes, since the handle may be dropped from inside
  // one of them.
  bool cancelled = false;
};

void Drop(SubscriptionState& state, const std::string& reason) {
  if (state.dropped || state.cancelled) return;  // once, and never after a cancel
  state.dropped = reason;
  if (state.callbacks.on_dropped) state.callbacks.on_dropped(reason);
}

class SubscriberImpl final : public rpc::Subscriber::Server {
 public:
  explicit SubscriberImpl(std::shared_ptr<SubscriptionState> state) : state_(std::move(state)) {}
  kj::Promise<void> events(EventsContext context) override {
    // Returning only after the callback is what makes a slow consumer slow down the pushes.
    auto list = context.getParams().getEvents();
    std::string failure;
    try {
      if (state_->cancelled) {
        // A batch that was on its way when the handle was dropped.
      } else if (context.getParams().hasRecords()) {
        views_.clear();
        DecodeRecords(context.getParams().getRecords(), views_);
        if (state_->callbacks.on_event_views) {
          state_->callbacks.on_event_views(views_);
        } else if (state_->callbacks.on_events) {
          std::vector<RecordedEvent> events;
          events.reserve(views_.size());
          for (const auto& v : views_) events.push_back(ToEvent(v));
          state_->callbacks.on_events(events);
        }
      } else if (state_->callbacks.on_event_views) {
        views_.clear();
        for (auto e : list) views_.push_back(ToView(e));
        state_->callbacks.on_event_views(views_);
      } else if (state_->callbacks.on_events) {
        state_->callbacks.on_events(ToEvents(list));
      }
      return kj::READY_NOW;
    } catch (const kj::Exception& e) {
      failure = e.getDescription().cStr();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    // The callback failed: the subscription ends. The daemon learns it from this call's
    // failure (after which capnp lets no further call through on this subscriber, so it
    // cannot say `dropped` itself); the caller learns it here.
    Drop(*state_, "the subscription's event callback threw (" + failure + "); the subscription has ended");
    kj::throwFatalException(KJ_EXCEPTION(FAILED, "the subscriber's event callback threw", failure));
  }
  kj::Promise<void> caughtUp(CaughtUpContext context) override {
    state_->caught_up = true;
    if (!state_->cancelled && state_->callbacks.on_caught_up) {
      state_->callbacks.on_caught_up(context.getParams().getPosition());
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> dropped(DroppedContext context) override {
    auto params = context.getParams();
    if (params.hasDamage() && !state_->dropped && !state_->cancelled) state_->damage = ToDamage(params.getDamage());
    Drop(*state_, Str(params.getReason()));
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<SubscriptionState> state_;
  std::vector<RecordedEventView> views_;  // reused from batch to batch
};

class SubscriptionHandle final : public Client::Subscription {
 public:
  SubscriptionHandle(rpc::Subscription::Client cap, std::shared_ptr<SubscriptionState> state)
      : cap_(std::make_unique<rpc::Subscription::Client>(kj::mv(cap))), state_(std::move(state)) {}
  // No callback runs after this: they may refer to what the caller is destroying. Batches
  // already on the way are dropped unseen. (The handle may be dropped from inside a
  // callback, so the callbacks are not destroyed here.)
  ~SubscriptionHandle() override { state_->cancelled = true; }
  bool caught_up() const override { return state_->caught_up; }
  std::optional<std::string> dropped() const override { return state_->dropped; }
  std::optional<Damage> damage() const override { return state_->damage; }

 private:
  // Released on destruction: the server cancels. (Behind a pointer: capnp's Client has a
  // throwing destructor, which this noexcept one may not have as a member.)
  std::unique_ptr<rpc::Subscription::Client> cap_;
  std::shared_ptr<SubscriptionState> state_;
};

}  // namespace

std::string Damage::ToString() const {
  std::string place;
  if (!file.empty()) {
    place = file + " offset " + std::to_string(offset);
    if (position) place += " (position " + std::to_string(*position) + ")";
  } else if (position) {
    place = "position " + std::to_string(*position);
  }
  return place.empty() ? reason : place + ": " + reason;
}

Error::Error(Damage damage)
    : std::runtime_error("the log is damaged: " + damage.ToString()),
      kind_(Kind::kDamaged),
      connect_problem_(ConnectProblem::kNone),
      damage_(std::move(damage)) {}

EventId NewEventId() { return common::RandomUuid(); }

std::string FormatEventId(const EventId& id) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[id[i] >> 4]);
    s.push_back(kHex[id[i] & 15]);
  }
  return s;
}

std::optional<EventId> ParseEventId(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  EventId id;
  size_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    const char c = text[i];
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return std::nullopt;
    if (n % 2 == 0) id[n / 2] = static_cast<uint8_t>(v << 4);
    else id[n / 2] = static_cast<uint8_t>(id[n / 2] | v);
    ++n;
  }
  return id;
}

NewEvent NewEvent::Json(std::string type, std::string json) {
  NewEvent e;
  e.type = std::move(type);
  e.content_type = "application/json";
  e.data = std::move(json);
  return e;
}

std::optional<Expected> Expected::Parse(std::string_view text) {
  if (text == "any") return Any();
  if (text == "no-stream") return NoStream();
  if (text == "exists") return StreamExists();
  if (text.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return Exact(v);
}

namespace internal {

std::shared_ptr<ThreadLoop> ThreadLoop::Get() {
  thread_local std::weak_ptr<ThreadLoop> current;
  auto loop = current.lock();
  if (!loop) {
    loop = std::make_shared<ThreadLoop>();
    current = loop;
  }
  return loop;
}

kj::Own<kj::AsyncIoStream> OpenStream(kj::AsyncIoContext& io, const ConnectOptions& options, FirstBytes& first_bytes) {
  TlsTarget target{options.address, options.tls_server_name, options.tls_ca_file};
  if (target.name.empty()) target.name = HostOf(options.address);
  if (options.tls && target.name.empty()) {
    throw Error(Error::ConnectProblem::kOptions, "TLS to " + options.address +
                                                     " needs the name on esd's certificate to check: a unix socket "
                                                     "has no host name");
  }
  auto& ws = io.waitScope;
  kj::Own<kj::AsyncIoStream> stream;
  try {
    auto address = io.provider->getNetwork().parseAddress(options.address, 7400).wait(ws);
    // A TCP connection is read once per arrival of bytes (protocol/socket_stream.h).
    stream = transport::AdoptTcpSocket(address->connect().wait(ws), io.unixEventPort);
    if (options.keepalive_seconds > 0) transport::SetKeepAlive(*stream, options.keepalive_seconds);
  } catch (const kj::Exception& e) {
    throw Error(Error::Kind::kConnect, "cannot connect to " + options.address + ": " + e.getDescription().cStr());
  }
  if (options.tls) {
    TlsOutcome tls = ConnectTls(kj::mv(stream), target).wait(ws);
    if (tls.stream.get() == nullptr) throw Error(tls.problem, tls.message);
    return kj::mv(tls.stream);
  }
  return RecordFirstBytes(kj::mv(stream), first_bytes);
}

}  // namespace internal

using internal::ThreadLoop;

class Client::Impl {
 public:
  Impl() : loop(ThreadLoop::Get()), io(loop->io) {}

  template <typename T>
  T Wait(kj::Promise<T> promise) {
    return internal::WaitFor(io, kj::mv(promise));
  }

  // Tells the subscriptions still alive that the connection is gone.
  void OnDisconnect(const std::string& why) {
    for (auto& weak : subscriptions) {
      if (auto state = weak.lock()) Drop(*state, "connection lost: " + why);
    }
    subscriptions.clear();
  }

  std::shared_ptr<ThreadLoop> loop;  // first member: destroyed last
  kj::AsyncIoContext& io;
  std::vector<std::weak_ptr<SubscriptionState>> subscriptions;
  kj::Promise<void> disconnect_watch = nullptr;
  internal::FirstBytes first_bytes;  // of a plain connection; `stream` writes to it
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  rpc::Session::Client session = nullptr;
  rpc::EventStore::Client store = nullptr;
  rpc::OrderService::Client orders = nullptr;  // fetched once, pipelined at connect
};

namespace internal {
rpc::Session::Client& SessionOf(Client::Impl& impl) { return impl.session; }
rpc::EventStore::Client& StoreOf(Client::Impl& impl) { return impl.store; }
}  // namespace internal

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

std::unique_ptr<Client> Client::Connect(const ConnectOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->stream = internal::OpenStream(impl->io, options, impl->first_bytes);
  // Fewer syscalls: reads ahead (BufferedReads), and one write for a turn's messages.
  impl->stream = kj::heap<internal::CoalescedWrites>(kj::mv(impl->stream));
  impl->rpc = kj::heap<capnp::TwoPartyClient>(*impl->stream);
  Impl* raw = impl.get();  // the watch is a member of *raw: it cannot outlive it
  impl->disconnect_watch = impl->rpc->onDisconnect()
                               .then([raw] { raw->OnDisconnect("the server closed the connection"); },
                                     [raw](kj::Exception&& e) { raw->OnDisconnect(e.getDescription().cStr()); })
                               .eagerlyEvaluate(nullptr);
  auto login = impl->rpc->bootstrap().castAs<rpc::Bootstrap>().loginRequest();
  login.setToken(options.token);
  impl->session = login.send().getSession();
  impl->store = impl->session.eventStoreRequest().send().getStore();
  impl->orders = impl->session.ordersRequest().send().getOrders();
  try {
    impl->Wait(impl->session.roleRequest().send().ignoreResult());  // the login's verdict
  } catch (const Error&) {
    // Cap'n Proto took the server's TLS answer for a broken message or a lost connection.
    if (impl->first_bytes.LookLikeTls()) {
      throw Error(Error::ConnectProblem::kServerSpeaksTls,
                  "esd at " + options.address + " speaks TLS, and this connection did not use it");
    }
    throw;
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

std::unique_ptr<Client> Client::Connect(const std::string& address, const std::string& token) {
  ConnectOptions options;
  options.address = address;
  options.token = token;
  return Connect(options);
}

std::unique_ptr<Client::Subscription> Client::Subscribe(
    const SubscribeFrom& from, const Filter& filter, std::function<void(const std::vector<RecordedEvent>&)> on_events,
    std::function<void(uint64_t)> on_caught_up, std::function<void(const std::string&)> on_dropped) {
  SubscriptionCallbacks callbacks;
  callbacks.on_events = std::move(on_events);
  callbacks.on_caught_up = std::move(on_caught_up);
  callbacks.on_dropped = std::move(on_dropped);
  return Subscribe(from, filter, std::move(callbacks));
}

std::string internal::RoleName(rpc::Role role) {
  switch (role) {
    case rpc::Role::READER: return "reader";
    case rpc::Role::WRITER: return "writer";
    case rpc::Role::ADMIN: return "admin";
  }
  return "unknown";
}

std::string Client::Role() { return internal::RoleName(impl_->Wait(impl_->session.roleRequest().send()).getRole()); }

kj::Promise<AppendResult> Client::AppendAsync(const std::string& stream, Expected expected,
                                              const std::vector<NewEvent>& events) {
  auto req = impl_->store.appendRequest(internal::AppendRequestSize(stream, events));
  internal::FillAppend(req, stream, expected, events);
  return req.send().then([](capnp::Response<rpc::EventStore::AppendResults> r) { return ToAppendResult(r.getResult()); });
}

AppendResult Client::Append(const std::string& stream, Expected expected, const std::vector<NewEvent>& events) {
  return impl_->Wait(AppendAsync(stream, expected, events));
}

std::optional<std::vector<RecordedEvent>> Client::ReadStream(const std::string& stream, uint64_t from, uint32_t count,
                                                             bool backward, StreamPageEnd* end) {
  auto req = impl_->store.readStreamRequest();
  req.setStream(stream);
  req.setFromVersion(from);
  req.setCount(count);
  req.setDirection(backward ? rpc::Direction::BACKWARD : rpc::Direction::FORWARD);
  auto resp = impl_->Wait(req.send());
  auto result = resp.getResult();
  StreamPageEnd local;
  StreamPageEnd& where = end != nullptr ? *end : local;
  where = {result.getNextVersion(), result.getEndOfStream(), result.isStreamDeleted()};
  if (result.isNotFound() || result.isStreamDeleted()) return std::nullopt;
  if (result.isDamaged()) throw Error(ToDamage(result.getDamaged()));
  auto events = ToEvents(result.getEvents());
  // An esd older than these fields sends 0 and false, which no page with events means
  // (except backwards down to version 1, which the events say alike): go by the events.
  if (!events.empty() && where.next_version == 0 && !where.end_of_stream) {
    const uint64_t last = events.back().version;
    where.end_of_stream = backward && last == 0;
    where.next_version = backward ? (last == 0 ? 0 : last - 1) : last + 1;
  }
  return events;
}

ReadAllResult Client::ReadAll(uint64_t from, uint32_t count, const Filter& filter) {
  auto req = impl_->store.readAllRequest();
  req.setFromPosition(from);
  req.setCount(count);
  SetFilter(req.initFilter(), filter);
  req.setRecords(true);  // cheaper to send and to take; a server that predates them sends `events`
  auto resp = impl_->Wait(req.send());
  ReadAllResult out{{}, resp.getNextPosition(), resp.getEndOfLog(), std::nullopt};
  if (resp.hasRecords()) {
    std::vector<RecordedEventView> views;
    try {
      DecodeRecords(resp.getRecords(), views);
    } catch (const kj::Exception& e) {
      Rethrow(e);  // a malformed answer: an Error, as any other the server causes
    }
    out.events.reserve(views.size());
    for (const auto& v : views) out.events.push_back(ToEvent(v));
  } else {
    out.events = ToEvents(resp.getEvents());
  }
  if (resp.hasDamage()) out.damage = ToDamage(resp.getDamage());
  return out;
}

std::optional<StreamInfo> Client::GetStreamInfo(const std::string& stream) {
  auto req = impl_->store.streamInfoRequest();
  req.setStream(stream);
  auto resp = impl_->Wait(req.send());
  auto info = resp.getInfo();
  if (info.isNotFound()) return std::nullopt;
  auto f = info.getFound();
  return StreamInfo{f.getLastVersion(),     f.getEventCount(), f.getLastPosition(), f.getLastWriteMicros(),
                    f.getFirstKept(),       f.getHardDeleted(), f.getHasMetadata()};
}

Client::StreamPage Client::ListStreams(const std::string& prefix, const std::string& after, uint32_t count) {
  auto req = impl_->store.listStreamsRequest();
  req.setPrefix(prefix);
  req.setAfter(after);
  req.setCount(count);
  auto resp = impl_->Wait(req.send());
  StreamPage page;
  for (auto s : resp.getStreams()) {
    page.streams.emplace_back(Str(s.getName()), StreamInfo{s.getLastVersion(), s.getEventCount(), s.getLastPosition(),
                                                           s.getLastWriteMicros()});
  }
  page.more = resp.getMore();
  return page;
}

ServerStatus Client::Status() {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto resp = impl_->Wait(admin.statusRequest().send());
  auto s = resp.getStatus();
  return {Str(s.getVersion()), s.getDurablePosition(), s.getSegments(), Str(s.getDataDir()), s.getConnections(),
          s.getSubscriptions(), s.getAppends(), s.getEventsWritten(), s.getUptimeSeconds(),
          s.getProjectionCheckpoint(), s.getProjectionLag(), s.getBytes(), s.getStreams(),
          s.getLogBytes(),         s.getAllocatedBytes()};
}

namespace {

class ProgressSinkImpl final : public rpc::ProgressSink::Server {
 public:
  explicit ProgressSinkImpl(Client::Progress progress) : progress_(std::move(progress)) {}
  kj::Promise<void> progress(ProgressContext context) override {
    progress_(context.getParams().getDone(), context.getParams().getTotal());
    return kj::READY_NOW;
  }

 private:
  Client::Progress progress_;
};

template <typename Request>
void SetProgress(Request& req, Client::Progress progress) {
  if (progress) req.setProgress(kj::heap<ProgressSinkImpl>(std::move(progress)));
}

void SetTarget(rpc::SnapshotTarget::Builder out, const Client::SnapshotTarget& t) {
  if (t.projection) {
    out.setProjection(t.name);
  } else {
    out.setStream(t.name);
  }
}

Client::SnapshotInfo ToSnapshotInfo(rpc::SnapshotInfo::Reader r) {
  Client::SnapshotInfo out;
  out.file = Str(r.getFile());
  out.bytes = r.getBytes();
  out.ok = r.getOk();
  out.problem = Str(r.getProblem());
  if (r.isProjection()) {
    out.projection = true;
    out.name = Str(r.getProjection().getName());
    out.version = r.getProjection().getCheckpoint();
    out.orders = r.getProjection().getOrders();
  } else {
    out.name = Str(r.getOrder().getStream());
    out.version = r.getOrder().getVersion();
  }
  return out;
}

}  // namespace

uint64_t Client::RebuildProjection(const std::string& name, Progress progress) {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto req = admin.rebuildProjectionRequest();
  req.setName(name);
  SetProgress(req, std::move(progress));
  return impl_->Wait(req.send()).getEventsRead();
}

Client::BackupResult Client::Backup(const std::string& dest, Progress progress) {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto req = admin.backupRequest();
  req.setDest(dest);
  SetProgress(req, std::move(progress));
  auto resp = impl_->Wait(req.send());
  return {resp.getPosition(), resp.getBytes()};
}

Client::VerifyReport Client::Verify(Progress progress) {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto req = admin.verifyRequest();
  SetProgress(req, std::move(progress));
  auto resp = impl_->Wait(req.send());
  auto r = resp.getReport();
  VerifyReport out;
  out.segments = r.getSegments();
  out.batches = r.getBatches();
  out.events = r.getEvents();
  out.index_files = r.getIndexFiles();
  out.snapshots = r.getSnapshots();
  out.torn_tail = Str(r.getTornTail());
  for (auto note : r.getNotes()) out.notes.push_back(Str(note));
  for (auto p : r.getProblems()) {
    out.problems.push_back({Str(p.getFile()), p.getOffset(),
                            p.getHasPosition() ? std::optional<uint64_t>(p.getPosition()) : std::nullopt, Str(p.getWhat())});
  }
  return out;
}

std::vector<Client::SnapshotInfo> Client::ListSnapshots() {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  std::vector<SnapshotInfo> out;
  std::string after;
  while (true) {
    auto req = admin.listSnapshotsRequest();
    req.setAfter(after);
    req.setCount(10'000);  // the server's cap: each page lists the directory once
    auto resp = impl_->Wait(req.send());
    for (auto s : resp.getSnapshots()) out.push_back(ToSnapshotInfo(s));
    if (!resp.getMore() || resp.getSnapshots().size() == 0) break;
    after = out.back().file;
  }
  return out;
}

Client::SnapshotPage Client::ReadSnapshotPage(const SnapshotTarget& target, uint64_t offset, uint32_t max_bytes) {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto req = admin.readSnapshotRequest();
  SetTarget(req.initTarget(), target);
  req.setOffset(offset);
  req.setMaxBytes(max_bytes);
  auto resp = impl_->Wait(req.send());
  SnapshotPage page{resp.getFound(), Str(resp.getFile()), resp.getTotalBytes(), resp.getFileTag(),
                    Str(resp.getProblem())};
  // An esd from before pages ignores offset and maxBytes and sends the whole file, without
  // a size: it is the last page.
  if (page.found && page.total_bytes == 0 && page.file_tag == 0) page.total_bytes = offset + page.bytes.size();
  return page;
}

std::optional<std::string> Client::ReadSnapshot(const SnapshotTarget& target, std::string* problem) {
  constexpr uint32_t kPage = 16u << 20;  // the daemon's cap
  // The daemon rewrites the projection's snapshot at most once a minute (an order's, once
  // per --snapshot-every events): a read that starts again seldom meets a new file twice.
  constexpr int kAttempts = 5;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    SnapshotPage page = ReadSnapshotPage(target, 0, kPage);
    if (!page.found) {
      if (problem != nullptr) problem->clear();
      return std::nullopt;
    }
    const uint64_t tag = page.file_tag;
    std::string file = std::move(page.bytes);
    file.reserve(page.total_bytes);
    while (file.size() < page.total_bytes) {
      page = ReadSnapshotPage(target, file.size(), kPage);
      if (!page.found || page.file_tag != tag || page.bytes.empty()) break;  // replaced or deleted: again
      file += page.bytes;
    }
    if (page.found && page.file_tag == tag && file.size() == page.total_bytes) {
      if (problem != nullptr) *problem = std::move(page.problem);
      return file;
    }
  }
  throw Error(Error::Kind::kRemote, "the snapshot was replaced " + std::to_string(kAttempts) +
                                        " times while it was being read; try again");
}

std::optional<Client::SnapshotInfo> Client::CreateSnapshot(const SnapshotTarget& target) {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto req = admin.createSnapshotRequest();
  SetTarget(req.initTarget(), target);
  auto resp = impl_->Wait(req.send());
  if (!resp.getFound()) return std::nullopt;
  return ToSnapshotInfo(resp.getInfo());
}

std::optional<std::string> Client::DeleteSnapshot(const SnapshotTarget& target) {
  auto admin = impl_->session.adminRequest().send().getAdmin();
  auto req = admin.deleteSnapshotRequest();
  SetTarget(req.initTarget(), target);
  auto resp = impl_->Wait(req.send());
  if (!resp.getFound()) return std::nullopt;
  return Str(resp.getFile());
}

kj::WaitScope& Client::wait_scope() { return impl_->io.waitScope; }

namespace {

const char* StatusText(rpc::OrderStatus s) {
  switch (s) {
    case rpc::OrderStatus::OPEN: return "open";
    case rpc::OrderStatus::PLACED: return "placed";
    case rpc::OrderStatus::CANCELLED: return "cancelled";
    default: return "none";
  }
}

OrderView ToView(rpc::OrderView::Reader r) {
  OrderView v;
  v.order_id = Str(r.getOrderId());
  v.customer_id = Str(r.getCustomerId());
  v.status = StatusText(r.getStatus());
  for (auto l : r.getLines()) v.lines.push_back({Str(l.getSku()), l.getQuantity(), l.getUnitPriceCents()});
  v.total_cents = r.getTotalCents();
  v.version = r.getVersion();
  v.last_position = r.getLastPosition();
  v.created_at_micros = r.getCreatedAtMicros();
  v.placed_at_micros = r.getPlacedAtMicros();
  v.cancelled_at_micros = r.getCancelledAtMicros();
  v.cancel_reason = Str(r.getCancelReason());
  return v;
}

}  // namespace

CommandOutcome internal::ToOutcome(rpc::CommandResult::Reader r) {
  CommandOutcome o;
  switch (r.which()) {
    case rpc::CommandResult::OK:
      o.version = r.getOk().getVersion();
      o.position = r.getOk().getPosition();
      o.already_applied = r.getOk().getAlreadyApplied();
      break;
    case rpc::CommandResult::REJECTED:
      o.kind = CommandOutcome::Kind::kRejected;
      o.rule = Str(r.getRejected().getRule());
      o.message = Str(r.getRejected().getMessage());
      break;
    case rpc::CommandResult::CONFLICT:
      o.kind = CommandOutcome::Kind::kConflict;
      o.message = "the order kept changing; the command was retried and gave up";
      break;
    default:
      o.kind = CommandOutcome::Kind::kFailed;
      o.code = r.isFailed() ? RejectName(r.getFailed().getCode()) : "unknown";
      o.message = r.isFailed() ? Str(r.getFailed().getReason()) : "an outcome this client does not know";
      if (r.isFailed() && r.getFailed().hasDamage()) o.damage = ToDamage(r.getFailed().getDamage());
  }
  return o;
}

capnp::MessageSize internal::CommandSize(std::initializer_list<size_t> text_bytes) {
  uint64_t words = 32;  // the call's header, CommandMeta, the ids the client makes up
  for (size_t n : text_bytes) words += n / sizeof(capnp::word) + 1;
  return {words, 0};
}

void internal::SetMeta(rpc::CommandMeta::Builder meta, const std::string& command_id,
                       const std::string& correlation_id) {
  meta.setCommandId(command_id.empty() ? FormatEventId(NewEventId()) : command_id);
  meta.setCorrelationId(correlation_id);
}

namespace {

OrderQuery ToQuery(rpc::OrderResult::Reader r) {
  OrderQuery q;
  if (r.isFound()) q.order = ToView(r.getFound());
  q.timed_out = r.isTimeout();
  if (r.isDamaged()) q.damage = ToDamage(r.getDamaged());
  return q;
}

}  // namespace

kj::Promise<CommandOutcome> Client::CreateOrderAsync(const std::string& order_id, const std::string& customer_id,
                                   const std::string& command_id, const std::string& correlation_id) {
  auto req = impl_->orders.createOrderRequest(
      internal::CommandSize({order_id.size(), customer_id.size(), command_id.size(), correlation_id.size()}));
  internal::SetMeta(req.initMeta(), command_id, correlation_id);
  req.setOrderId(order_id);
  req.setCustomerId(customer_id);
  return req.send().then([](auto r) { return internal::ToOutcome(r.getResult()); });
}

kj::Promise<CommandOutcome> Client::AddItemAsync(const std::string& order_id, const std::string& sku, uint32_t quantity,
                               int64_t unit_price_cents, const std::string& command_id,
                               const std::string& correlation_id) {
  auto req = impl_->orders.addItemRequest(
      internal::CommandSize({order_id.size(), sku.size(), command_id.size(), correlation_id.size()}));
  internal::SetMeta(req.initMeta(), command_id, correlation_id);
  req.setOrderId(order_id);
  req.setSku(sku);
  req.setQuantity(quantity);
  req.setUnitPriceCents(unit_price_cents);
  return req.send().then([](auto r) { return internal::ToOutcome(r.getResult()); });
}

kj::Promise<CommandOutcome> Client::RemoveItemAsync(const std::string& order_id, const std::string& sku, uint32_t quantity,
                                  const std::string& command_id, const std::string& correlation_id) {
  auto req = impl_->orders.removeItemRequest(
      internal::CommandSize({order_id.size(), sku.size(), command_id.size(), correlation_id.size()}));
  internal::SetMeta(req.initMeta(), command_id, correlation_id);
  req.setOrderId(order_id);
  req.setSku(sku);
  req.setQuantity(quantity);
  return req.send().then([](auto r) { return internal::ToOutcome(r.getResult()); });
}

kj::Promise<CommandOutcome> Client::PlaceOrderAsync(const std::string& order_id, const std::string& command_id,
                                  const std::string& correlation_id) {
  auto req = impl_->orders.placeOrderRequest(internal::CommandSize({order_id.size(), command_id.size(), correlation_id.size()}));
  internal::SetMeta(req.initMeta(), command_id, correlation_id);
  req.setOrderId(order_id);
  return req.send().then([](auto r) { return internal::ToOutcome(r.getResult()); });
}

kj::Promise<CommandOutcome> Client::CancelOrderAsync(const std::string& order_id, const std::string& reason,
                                   const std::string& command_id, const std::string& correlation_id) {
  auto req = impl_->orders.cancelOrderRequest(
      internal::CommandSize({order_id.size(), reason.size(), command_id.size(), correlation_id.size()}));
  internal::SetMeta(req.initMeta(), command_id, correlation_id);
  req.setOrderId(order_id);
  req.setReason(reason);
  return req.send().then([](auto r) { return internal::ToOutcome(r.getResult()); });
}

CommandOutcome Client::CreateOrder(const std::string& order_id, const std::string& customer_id,
                                   const std::string& command_id, const std::string& correlation_id) {
  return impl_->Wait(CreateOrderAsync(order_id, customer_id, command_id, correlation_id));
}

CommandOutcome Client::AddItem(const std::string& order_id, const std::string& sku, uint32_t quantity,
                               int64_t unit_price_cents, const std::string& command_id,
                               const std::string& correlation_id) {
  return impl_->Wait(AddItemAsync(order_id, sku, quantity, unit_price_cents, command_id, correlation_id));
}

CommandOutcome Client::RemoveItem(const std::string& order_id, const std::string& sku, uint32_t quantity,
                                  const std::string& command_id, const std::string& correlation_id) {
  return impl_->Wait(RemoveItemAsync(order_id, sku, quantity, command_id, correlation_id));
}

CommandOutcome Client::PlaceOrder(const std::string& order_id, const std::string& command_id,
                                  const std::string& correlation_id) {
  return impl_->Wait(PlaceOrderAsync(order_id, command_id, correlation_id));
}

CommandOutcome Client::CancelOrder(const std::string& order_id, const std::string& reason,
                                   const std::string& command_id, const std::string& correlation_id) {
  return impl_->Wait(CancelOrderAsync(order_id, reason, command_id, correlation_id));
}

OrderQuery Client::GetOrder(const std::string& order_id, uint64_t min_position) {
  auto req = impl_->orders.getOrderRequest();
  req.setOrderId(order_id);
  req.initAsOf().setLatest();
  req.setMinPosition(min_position);
  return ToQuery(impl_->Wait(req.send()).getResult());
}

OrderQuery Client::GetOrderAtVersion(const std::string& order_id, uint64_t version) {
  auto req = impl_->orders.getOrderRequest();
  req.setOrderId(order_id);
  req.initAsOf().setVersion(version);
  return ToQuery(impl_->Wait(req.send()).getResult());
}

OrderQuery Client::GetOrderAtTime(const std::string& order_id, uint64_t time_micros) {
  auto req = impl_->orders.getOrderRequest();
  req.setOrderId(order_id);
  req.initAsOf().setTimeMicros(time_micros);
  return ToQuery(impl_->Wait(req.send()).getResult());
}

OrderPage Client::ListOrders(const std::string& customer_id, const std::string& status, uint32_t page_size,
                             const std::string& page_token, uint64_t min_position) {
  auto req = impl_->orders.listOrdersRequest();
  req.setCustomerId(customer_id);
  rpc::OrderStatus s = rpc::OrderStatus::NONE;
  if (status == "open") s = rpc::OrderStatus::OPEN;
  else if (status == "placed") s = rpc::OrderStatus::PLACED;
  else if (status == "cancelled") s = rpc::OrderStatus::CANCELLED;
  else if (!status.empty()) throw Error(Error::Kind::kRemote, "unknown order status '" + status + "'");
  req.setStatus(s);
  req.setPageSize(page_size);
  req.setPageToken(page_token);
  req.setMinPosition(min_position);
  auto resp = impl_->Wait(req.send());
  OrderPage page;
  for (auto o : resp.getOrders()) page.orders.push_back(ToView(o));
  page.next_page_token = Str(resp.getNextPageToken());
  page.timed_out = resp.getTimeout();
  if (resp.hasDamage()) page.damage = ToDamage(resp.getDamage());
  return page;
}

HistoryPage Client::HistoryFrom(const std::string& order_id, uint64_t from_version) {
  auto req = impl_->orders.historyRequest();
  req.setOrderId(order_id);
  req.setFromVersion(from_version);
  auto resp = impl_->Wait(req.send());
  if (resp.hasDamage()) throw Error(ToDamage(resp.getDamage()));
  HistoryPage page;
  for (auto e : resp.getEvents()) {
    page.events.push_back({e.getVersion(), e.getPosition(), e.getTimestampMicros(), Str(e.getType()),
                           Str(e.getJson()), Str(e.getCommandId()), Str(e.getCorrelationId()), Str(e.getCausedBy())});
  }
  page.next_version = resp.getNextVersion();
  page.end_of_history = resp.getEndOfHistory();
  // An esd older than these fields sends 0 and false and only ever the first page: take it
  // as the whole history, as before.
  if (page.next_version <= from_version && !page.end_of_history) page.end_of_history = true;
  return page;
}

ForgetOutcome Client::ForgetCustomer(const std::string& customer_id) {
  auto req = impl_->orders.forgetCustomerRequest();
  req.setCustomerId(customer_id);
  auto response = impl_->Wait(req.send());  // owns the message `r` reads
  auto r = response.getResult();
  ForgetOutcome o;
  if (r.isOk()) {
    o.ok = true;
    o.streams_deleted = r.getOk().getStreamsDeleted();
    o.audit_position = r.getOk().getAuditPosition();
  } else if (r.isFailed()) {
    o.code = RejectName(r.getFailed().getCode());
    o.message = Str(r.getFailed().getReason());
    if (r.getFailed().hasDamage()) o.damage = ToDamage(r.getFailed().getDamage());
  } else {
    o.code = "unknown";
    o.message = "an outcome this client does not know";
  }
  return o;
}

std::vector<HistoryEntry> Client::History(const std::string& order_id) {
  std::vector<HistoryEntry> out;
  for (uint64_t from = 0;;) {
    HistoryPage page = HistoryFrom(order_id, from);
    out.insert(out.end(), std::make_move_iterator(page.events.begin()), std::make_move_iterator(page.events.end()));
    if (page.end_of_history) return out;
    from = page.next_version;
  }
}

std::unique_ptr<Client::Subscription> Client::Subscribe(const SubscribeFrom& from, const Filter& filter,
                                                        SubscriptionCallbacks callbacks) {
  auto state = std::make_shared<SubscriptionState>();
  state->callbacks = std::move(callbacks);
  auto req = impl_->store.subscribeRequest();
  auto f = req.initFrom();
  switch (from.kind) {
    case SubscribeFrom::Kind::kPosition: f.setPosition(from.position); break;
    case SubscribeFrom::Kind::kStart: f.setStart(); break;
    case SubscribeFrom::Kind::kEnd: f.setEnd(); break;
    case SubscribeFrom::Kind::kStream: {
      auto s = f.initStream();
      s.setName(from.stream);
      s.setFromVersion(from.version);
      break;
    }
  }
  SetFilter(req.initFilter(), filter);
  req.setSubscriber(kj::heap<SubscriberImpl>(state));
  req.setRecords(true);  // cheaper to send and to take; a server that predates them sends `events`
  auto resp = impl_->Wait(req.send());
  std::erase_if(impl_->subscriptions, [](const auto& w) { return w.expired(); });
  impl_->subscriptions.push_back(state);
  return std::make_unique<SubscriptionHandle>(resp.getSubscription(), state);
}

bool internal::RunLoopUntil(kj::AsyncIoContext& io, const std::function<bool()>& done,
                            std::chrono::milliseconds timeout) {
  auto& timer = io.provider->getTimer();
  const auto deadline = timer.now() + timeout.count() * kj::MILLISECONDS;
  while (!done() && timer.now() < deadline) {
    WaitFor(io, timer.afterDelay(2 * kj::MILLISECONDS));
  }
  return done();
}

void internal::RunLoopFor(kj::AsyncIoContext& io, std::chrono::milliseconds duration) {
  WaitFor(io, io.provider->getTimer().afterDelay(duration.count() * kj::MILLISECONDS));
}

bool Client::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return internal::RunLoopUntil(impl_->io, done, timeout);
}

void Client::RunFor(std::chrono::milliseconds duration) { internal::RunLoopFor(impl_->io, duration); }

}  // namespace esd::client
