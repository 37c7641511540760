#include "domain/codec.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <cstdint>
#include <cstring>

#include "protocol/orders.capnp.h"

namespace esd::domain {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};

// A message's first segment on the stack: an order event and its metadata fit in it
// (a larger one grows onto the heap), so that encoding allocates only the strings it
// returns. MallocMessageBuilder wants the segment zeroed.
class ScratchMessage {
 public:
  ScratchMessage() : message_(kj::arrayPtr(words_, kWords)) {}
  capnp::MallocMessageBuilder& get() { return message_; }

 private:
  static constexpr size_t kWords = 64;
  capnp::word words_[kWords] = {};
  capnp::MallocMessageBuilder message_;
};

// The message as one flat array (the bytes messageToFlatArray gives), written straight
// into the string returned.
std::string Flatten(capnp::MessageBuilder& message) {
  auto segments = message.getSegmentsForOutput();
  std::string out(capnp::computeSerializedSizeInWords(segments) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, segments);
  return out;
}

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// The bytes as the whole, aligned words a message reader wants. The log's records are
// 8-byte aligned but their fields are packed (storage/format.h), so an event's data starts
// on a word boundary only sometimes: then it is read in place; otherwise it is copied, into
// a buffer on the stack when it is small (an order event's data is 24 to 100-odd bytes), so
// that decoding costs no allocation. The caller checks that the size is whole words.
class Words {
 public:
  explicit Words(std::string_view bytes) {
    const size_t n = bytes.size() / sizeof(capnp::word);
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
      words_ = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), n);
      return;
    }
    capnp::word* dst = local_;
    if (n > kLocalWords) {
      heap_ = kj::heapArray<capnp::word>(n);
      dst = heap_.begin();
    }
    std::memcpy(dst, bytes.data(), n * sizeof(capnp::word));
    words_ = kj::arrayPtr(const_cast<const capnp::word*>(dst), n);
  }
  Words(const Words&) = delete;
  Words& operator=(const Words&) = delete;
  kj::ArrayPtr<const capnp::word> get() const { return words_; }

 private:
  static constexpr size_t kLocalWords = 64;
  capnp::word local_[kLocalWords];
  kj::Array<capnp::word> heap_;
  kj::ArrayPtr<const capnp::word> words_;
};

template <typename Struct, typename F>
std::optional<OrderEvent> Read(std::string_view data, F&& convert) {
  // Encode writes whole words: anything else was cut short, and zero padding would decode
  // it into a different event.
  if (data.size() % sizeof(capnp::word) != 0) return std::nullopt;
  std::optional<OrderEvent> out;
  Words words(data);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words.get());
    out = convert(reader.getRoot<Struct>());
  })) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

EncodedEvent Encode(const OrderEvent& event, const CommandContext& context) {
  EncodedEvent out;
  out.type = EventTypeName(event);
  ScratchMessage scratch;
  capnp::MallocMessageBuilder& message = scratch.get();
  std::visit(Overloaded{
                 [&](const OrderCreated& e) {
                   auto b = message.initRoot<orders::OrderCreated>();
                   b.setOrderId(e.order_id);
                   b.setCustomerId(e.customer_id);
                   b.setCreatedAt(e.created_at);
                 },
                 [&](const ItemAdded& e) {
                   auto b = message.initRoot<orders::ItemAdded>();
                   b.setSku(e.sku);
                   b.setQuantity(e.quantity);
                   b.setUnitPriceCents(e.unit_price_cents);
                 },
                 [&](const ItemRemoved& e) {
                   auto b = message.initRoot<orders::ItemRemoved>();
                   b.setSku(e.sku);
                   b.setQuantity(e.quantity);
                 },
                 [&](const OrderPlaced& e) {
                   auto b = message.initRoot<orders::OrderPlaced>();
                   b.setTotalCents(e.total_cents);
                   b.setItemCount(e.item_count);
                 },
                 [&](const OrderCancelled& e) { message.initRoot<orders::OrderCancelled>().setReason(e.reason); },
             },
             event);
  out.data = Flatten(message);
  ScratchMessage meta_scratch;
  capnp::MallocMessageBuilder& meta = meta_scratch.get();
  auto m = meta.initRoot<orders::EventMetadata>();
  m.setCommandId(context.command_id);
  m.setCorrelationId(context.correlation_id);
  m.setCausedBy(context.caused_by);
  m.setCommandFingerprint(context.command_fingerprint);
  out.metadata = Flatten(meta);
  return out;
}

std::optional<OrderEvent> DecodeEvent(std::string_view type, std::string_view data) {
  if (type == "OrderCreated") {
    return Read<orders::OrderCreated>(data, [](orders::OrderCreated::Reader r) -> OrderEvent {
      return OrderCreated{Str(r.getOrderId()), Str(r.getCustomerId()), r.getCreatedAt()};
    });
  }
  if (type == "ItemAdded") {
    return Read<orders::ItemAdded>(data, [](orders::ItemAdded::Reader r) -> OrderEvent {
      return ItemAdded{Str(r.getSku()), r.getQuantity(), r.getUnitPriceCents()};
    });
  }
  if (type == "ItemRemoved") {
    return Read<orders::ItemRemoved>(data, [](orders::ItemRemoved::Reader r) -> OrderEvent {
      return ItemRemoved{Str(r.getSku()), r.getQuantity()};
    });
  }
  if (type == "OrderPlaced") {
    return Read<orders::OrderPlaced>(data, [](orders::OrderPlaced::Reader r) -> OrderEvent {
      return OrderPlaced{r.getTotalCents(), r.getItemCount()};
    });
  }
  if (type == "OrderCancelled") {
    return Read<orders::OrderCancelled>(data, [](orders::OrderCancelled::Reader r) -> OrderEvent {
      return OrderCancelled{Str(r.getReason())};
    });
  }
  return std::nullopt;
}

std::optional<OrderEvent> DecodeStoredEvent(std::string_view content_type, std::string_view type,
                                            std::string_view data) {
  if (content_type != kOrderContentType) return std::nullopt;
  return DecodeEvent(type, data);
}

CommandContext DecodeMetadata(std::string_view metadata) {
  CommandContext c;
  if (metadata.empty() || metadata.size() % sizeof(capnp::word) != 0) return c;
  Words words(metadata);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words.get());
    auto m = reader.getRoot<orders::EventMetadata>();
    c = CommandContext{Str(m.getCommandId()), Str(m.getCorrelationId()), Str(m.getCausedBy()),
                       m.getCommandFingerprint()};
  })) {
    return CommandContext{};
  }
  return c;
}

std::optional<std::string> EventToJson(std::string_view type, std::string_view data) {
  if (data.size() % sizeof(capnp::word) != 0) return std::nullopt;
  Words words(data);
  std::optional<std::string> out;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words.get());
    capnp::JsonCodec codec;
    kj::String json;
    if (type == "OrderCreated") json = codec.encode(reader.getRoot<orders::OrderCreated>());
    else if (type == "ItemAdded") json = codec.encode(reader.getRoot<orders::ItemAdded>());
    else if (type == "ItemRemoved") json = codec.encode(reader.getRoot<orders::ItemRemoved>());
    else if (type == "OrderPlaced") json = codec.encode(reader.getRoot<orders::OrderPlaced>());
    else if (type == "OrderCancelled") json = codec.encode(reader.getRoot<orders::OrderCancelled>());
    else return;
    out = std::string(json.cStr());
  })) {
    return std::nullopt;
  }
  return out;
}

}  // namespace esd::domain
