#include "client/appender.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <unordered_map>

#include "client/client_internal.h"
#include "client/tls.h"
#include "protocol/frames.capnp.h"
#include "protocol/transport.h"

namespace esd::client {

namespace {

namespace frames = rpc::frames;

}  // namespace

// Requests are written in one write per turn of the event loop; answers are read in a loop
// and handed to the request of their id. Once the connection fails, every call in flight and
// every later one fails with the same exception.
class Appender::Impl final : private kj::TaskSet::ErrorHandler {
 public:
  Impl() : loop(internal::ThreadLoop::Get()), io(loop->io), tasks(*this) {}

  // The answer to the request in `message` (whose id is `id`).
  kj::Promise<kj::Own<capnp::MessageReader>> Send(uint64_t id, capnp::MessageBuilder& message) {
    KJ_IF_MAYBE(e, broken) { return kj::cp(*e); }
    transport::ByteVectorOutput out(pending);
    capnp::writeMessage(out, message);
    if (!writing) {
      writing = true;
      tasks.add(kj::evalLater([this] { return WriteMore(); }));
    }
    auto paf = kj::newPromiseAndFulfiller<kj::Own<capnp::MessageReader>>();
    waiting.emplace(id, kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  kj::Promise<void> WriteMore() {
    if (pending.empty() || broken != nullptr) {
      writing = false;
      return kj::READY_NOW;
    }
    std::swap(pending, sending);
    return stream->write(sending.data(), sending.size()).then([this] {
      sending.clear();
      return WriteMore();
    });
  }

  kj::Promise<void> ReadLoop() {
    return capnp::tryReadMessage(*reads).then([this](kj::Maybe<kj::Own<capnp::MessageReader>> message) {
      KJ_IF_MAYBE(m, message) {
        Take(kj::mv(*m));
        return ReadLoop();
      }
      Fail(KJ_EXCEPTION(DISCONNECTED, "the server closed the connection"));
      return kj::Promise<void>(kj::READY_NOW);
    });
  }

  void Take(kj::Own<capnp::MessageReader> message) {
    // A Response has two words of data (its id, and its union's tag). A daemon without the
    // framed protocol answers the magic with Cap'n Proto RPC's Abort, a message with one
    // word of data, which would otherwise read as an answer to the login (id 1).
    if (message->getRoot<capnp::AnyStruct>().getDataSection().size() < 2 * sizeof(capnp::word)) {
      return Fail(KJ_EXCEPTION(FAILED, "the server answered with a message that is no framed-protocol answer"));
    }
    auto answer = message->getRoot<frames::Response>();
    auto it = waiting.find(answer.getId());
    if (it == waiting.end()) {
      // id 0: about the connection (a frame the daemon could not read, --max-connections).
      if (answer.isError()) return Fail(KJ_EXCEPTION(FAILED, kj::str(answer.getError())));
      return Fail(KJ_EXCEPTION(FAILED, "the server answered a request this client did not send (id ",
                               answer.getId(), ")"));
    }
    auto fulfiller = kj::mv(it->second);
    waiting.erase(it);
    if (answer.isError()) {
      fulfiller->reject(KJ_EXCEPTION(FAILED, kj::str(answer.getError())));
    } else {
      fulfiller->fulfill(kj::mv(message));
    }
  }

  void Fail(kj::Exception&& e) {
    if (broken != nullptr) return;
    for (auto& [id, fulfiller] : waiting) fulfiller->reject(kj::cp(e));
    waiting.clear();
    broken = kj::mv(e);
  }

  void taskFailed(kj::Exception&& e) override { Fail(kj::mv(e)); }

  template <typename T>
  T Wait(kj::Promise<T> promise) {
    return internal::WaitFor(io, kj::mv(promise));
  }

  std::shared_ptr<internal::ThreadLoop> loop;  // first member: destroyed last
  kj::AsyncIoContext& io;
  internal::FirstBytes first_bytes;  // of a plain connection
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<transport::BufferedReads> reads;
  std::string role;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, kj::Own<kj::PromiseFulfiller<kj::Own<capnp::MessageReader>>>> waiting;
  std::vector<kj::byte> pending, sending;  // requests queued, and those being written
  bool writing = false;
  kj::Maybe<kj::Exception> broken;
  kj::TaskSet tasks;  // last: cancelled first
};

Appender::Appender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Appender::~Appender() = default;

std::unique_ptr<Appender> Appender::Connect(const ConnectOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->stream = internal::OpenStream(impl->io, options, impl->first_bytes);
  impl->reads = kj::heap<transport::BufferedReads>(*impl->stream);
  impl->pending.assign(std::begin(transport::kFramesMagic), std::end(transport::kFramesMagic));
  impl->tasks.add(impl->ReadLoop());
  capnp::MallocMessageBuilder login(16 + options.token.size() / 8);
  auto request = login.initRoot<frames::Request>();
  const uint64_t id = impl->next_id++;
  request.setId(id);
  request.setLogin(options.token);
  try {
    auto answer = impl->Wait(impl->Send(id, login));
    impl->role = internal::RoleName(answer->getRoot<frames::Response>().getLogin());
  } catch (const Error& e) {
    if (impl->first_bytes.LookLikeTls()) {
      throw Error(Error::ConnectProblem::kServerSpeaksTls,
                  "esd at " + options.address + " speaks TLS, and this connection did not use it");
    }
    if (e.kind() == Error::Kind::kRemote || e.kind() == Error::Kind::kDisconnected) {
      // An esd without the framed protocol reads the magic as a broken RPC message.
      throw Error(Error::Kind::kConnect, "esd at " + options.address + " did not take the framed protocol (" +
                                             e.what() + "); an esd without it serves appends over RPC "
                                             "(esd::client::Client)");
    }
    throw;
  }
  return std::unique_ptr<Appender>(new Appender(std::move(impl)));
}

std::string Appender::Role() const { return impl_->role; }

kj::Promise<AppendResult> Appender::AppendAsync(const std::string& stream, Expected expected,
                                                const std::vector<NewEvent>& events) {
  capnp::MallocMessageBuilder message(internal::AppendRequestSize(stream, events).wordCount);
  auto request = message.initRoot<frames::Request>();
  const uint64_t id = impl_->next_id++;
  request.setId(id);
  auto append = request.initAppend();
  internal::FillAppend(append, stream, expected, events);
  return impl_->Send(id, message).then([](kj::Own<capnp::MessageReader> answer) {
    auto response = answer->getRoot<frames::Response>();
    KJ_REQUIRE(response.isAppend(), "the server answered an append with something else");
    return internal::ToAppendResult(response.getAppend());
  });
}

AppendResult Appender::Append(const std::string& stream, Expected expected, const std::vector<NewEvent>& events) {
  return impl_->Wait(AppendAsync(stream, expected, events));
}

namespace {

// A command request for `order_id`, sized for its texts; `fill` sets its kind.
template <typename Fill>
kj::Promise<CommandOutcome> SendCommand(Appender::Impl& impl, const std::string& order_id,
                                        const std::string& command_id, const std::string& correlation_id,
                                        size_t other_text_bytes, Fill fill) {
  capnp::MallocMessageBuilder message(
      internal::CommandSize({order_id.size(), command_id.size(), correlation_id.size(), other_text_bytes}).wordCount);
  auto request = message.initRoot<frames::Request>();
  const uint64_t id = impl.next_id++;
  request.setId(id);
  auto command = request.initCommand();
  internal::SetMeta(command.initMeta(), command_id, correlation_id);
  command.setOrderId(order_id);
  fill(command);
  return impl.Send(id, message).then([](kj::Own<capnp::MessageReader> answer) {
    auto response = answer->getRoot<frames::Response>();
    KJ_REQUIRE(response.isCommand(), "the server answered a command with something else");
    return internal::ToOutcome(response.getCommand());
  });
}

}  // namespace

kj::Promise<CommandOutcome> Appender::CreateOrderAsync(const std::string& order_id, const std::string& customer_id,
                                                       const std::string& command_id,
                                                       const std::string& correlation_id) {
  return SendCommand(*impl_, order_id, command_id, correlation_id, customer_id.size(),
                     [&](frames::OrderCommand::Builder c) { c.initCreateOrder().setCustomerId(customer_id); });
}

kj::Promise<CommandOutcome> Appender::AddItemAsync(const std::string& order_id, const std::string& sku,
                                                   uint32_t quantity, int64_t unit_price_cents,
                                                   const std::string& command_id, const std::string& correlation_id) {
  return SendCommand(*impl_, order_id, command_id, correlation_id, sku.size(), [&](frames::OrderCommand::Builder c) {
    auto add = c.initAddItem();
    add.setSku(sku);
    add.setQuantity(quantity);
    add.setUnitPriceCents(unit_price_cents);
  });
}

kj::Promise<CommandOutcome> Appender::RemoveItemAsync(const std::string& order_id, const std::string& sku,
                                                      uint32_t quantity, const std::string& command_id,
                                                      const std::string& correlation_id) {
  return SendCommand(*impl_, order_id, command_id, correlation_id, sku.size(), [&](frames::OrderCommand::Builder c) {
    auto remove = c.initRemoveItem();
    remove.setSku(sku);
    remove.setQuantity(quantity);
  });
}

kj::Promise<CommandOutcome> Appender::PlaceOrderAsync(const std::string& order_id, const std::string& command_id,
                                                      const std::string& correlation_id) {
  return SendCommand(*impl_, order_id, command_id, correlation_id, 0,
                     [](frames::OrderCommand::Builder c) { c.setPlaceOrder(); });
}

kj::Promise<CommandOutcome> Appender::CancelOrderAsync(const std::string& order_id, const std::string& reason,
                                                       const std::string& command_id,
                                                       const std::string& correlation_id) {
  return SendCommand(*impl_, order_id, command_id, correlation_id, reason.size(),
                     [&](frames::OrderCommand::Builder c) { c.initCancelOrder().setReason(reason); });
}

CommandOutcome Appender::CreateOrder(const std::string& order_id, const std::string& customer_id,
                                     const std::string& command_id, const std::string& correlation_id) {
  return impl_->Wait(CreateOrderAsync(order_id, customer_id, command_id, correlation_id));
}

CommandOutcome Appender::AddItem(const std::string& order_id, const std::string& sku, uint32_t quantity,
                                 int64_t unit_price_cents, const std::string& command_id,
                                 const std::string& correlation_id) {
  return impl_->Wait(AddItemAsync(order_id, sku, quantity, unit_price_cents, command_id, correlation_id));
}

CommandOutcome Appender::RemoveItem(const std::string& order_id, const std::string& sku, uint32_t quantity,
                                    const std::string& command_id, const std::string& correlation_id) {
  return impl_->Wait(RemoveItemAsync(order_id, sku, quantity, command_id, correlation_id));
}

CommandOutcome Appender::PlaceOrder(const std::string& order_id, const std::string& command_id,
                                    const std::string& correlation_id) {
  return impl_->Wait(PlaceOrderAsync(order_id, command_id, correlation_id));
}

CommandOutcome Appender::CancelOrder(const std::string& order_id, const std::string& reason,
                                     const std::string& command_id, const std::string& correlation_id) {
  return impl_->Wait(CancelOrderAsync(order_id, reason, command_id, correlation_id));
}

bool Appender::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return internal::RunLoopUntil(impl_->io, done, timeout);
}

void Appender::RunFor(std::chrono::milliseconds duration) { internal::RunLoopFor(impl_->io, duration); }

}  // namespace esd::client
