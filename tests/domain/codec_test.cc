// Order events to and from their stored bytes: every event type round-trips, the type is
// the struct's name, decoding does not care where the bytes sit, and bytes that are not an
// order event come back as nullopt rather than as a crash or an exception.
#include "domain/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "domain/order.h"

namespace esd::domain {
namespace {

// One of each event type, with values that fill their fields (long text, extremes).
std::vector<OrderEvent> OneOfEach() {
  return {
      OrderCreated{"order-42", "customer-\xc3\xa9-7", std::numeric_limits<uint64_t>::max()},
      ItemAdded{"SKU-with-a-rather-long-name-0123456789", kMaxQuantity, kMaxUnitPriceCents},
      ItemRemoved{"SKU-1", 3},
      OrderPlaced{std::numeric_limits<int64_t>::max(), 70'000},
      OrderCancelled{"the customer changed their mind"},
  };
}

// The same types with every field at its default: empty text, zero numbers.
std::vector<OrderEvent> DefaultsOfEach() {
  return {OrderCreated{}, ItemAdded{}, ItemRemoved{}, OrderPlaced{}, OrderCancelled{}};
}

const CommandContext kContext{"cmd-1", "flow-9", "user:alice"};

TEST(CodecTest, EveryEventTypeRoundTrips) {
  for (const auto& events : {OneOfEach(), DefaultsOfEach()}) {
    for (const OrderEvent& e : events) {
      SCOPED_TRACE(EventTypeName(e));
      const EncodedEvent enc = Encode(e, kContext);
      const std::optional<OrderEvent> back = DecodeEvent(enc.type, enc.data);
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(*back, e);
    }
  }
}

TEST(CodecTest, EncodedTypeIsTheEventTypeName) {
  const std::vector<std::string> names = {"OrderCreated", "ItemAdded", "ItemRemoved", "OrderPlaced", "OrderCancelled"};
  const std::vector<OrderEvent> events = OneOfEach();
  ASSERT_EQ(events.size(), names.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(EventTypeName(events[i]), names[i]);
    EXPECT_EQ(Encode(events[i], kContext).type, names[i]);
  }
}

TEST(CodecTest, EncodedDataIsWholeWords) {
  for (const OrderEvent& e : OneOfEach()) {
    const EncodedEvent enc = Encode(e, kContext);
    EXPECT_EQ(enc.data.size() % 8, 0u) << EventTypeName(e);
    EXPECT_EQ(enc.metadata.size() % 8, 0u) << EventTypeName(e);
  }
}

TEST(CodecTest, MetadataRoundTrips) {
  for (const OrderEvent& e : OneOfEach()) {
    EXPECT_EQ(DecodeMetadata(Encode(e, kContext).metadata), kContext) << EventTypeName(e);
  }
  const CommandContext partial{"cmd-only", "", ""};
  EXPECT_EQ(DecodeMetadata(Encode(OrderPlaced{1, 1}, partial).metadata), partial);
}

TEST(CodecTest, MetadataRoundTripsTheCommandFingerprint) {
  CommandContext c = kContext;
  c.command_fingerprint = 0xfedcba9876543210ull;
  EXPECT_EQ(DecodeMetadata(Encode(OrderPlaced{1, 1}, c).metadata), c);
}

TEST(CodecTest, EmptyMetadataDecodesToAnEmptyContext) {
  EXPECT_EQ(DecodeMetadata(""), CommandContext{});
  EXPECT_EQ(DecodeMetadata(Encode(OrderPlaced{}, CommandContext{}).metadata), CommandContext{});
}

TEST(CodecTest, GarbageMetadataDecodesToAnEmptyContext) {
  EXPECT_EQ(DecodeMetadata(std::string(16, '\xff')), CommandContext{});
  const std::string metadata = Encode(OrderPlaced{}, kContext).metadata;
  CommandContext c;
  EXPECT_NO_THROW(c = DecodeMetadata(std::string_view(metadata).substr(0, 8)));
  EXPECT_EQ(c, CommandContext{});
}

TEST(CodecTest, DecodesFromAMisalignedBuffer) {
  for (const OrderEvent& e : OneOfEach()) {
    const EncodedEvent enc = Encode(e, kContext);
    for (size_t offset : {1, 3, 5, 7}) {
      SCOPED_TRACE(std::string(EventTypeName(e)) + " at offset " + std::to_string(offset));
      std::vector<char> buffer(enc.data.size() + enc.metadata.size() + 16, '\x5a');
      std::copy(enc.data.begin(), enc.data.end(), buffer.begin() + offset);
      const size_t meta_at = offset + enc.data.size();
      std::copy(enc.metadata.begin(), enc.metadata.end(), buffer.begin() + meta_at);
      const std::optional<OrderEvent> back =
          DecodeEvent(enc.type, std::string_view(buffer.data() + offset, enc.data.size()));
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(*back, e);
      EXPECT_EQ(DecodeMetadata(std::string_view(buffer.data() + meta_at, enc.metadata.size())), kContext);
    }
  }
}

// Bytes on a word boundary are read in place, others copied (on the stack when small, on
// the heap past 512 bytes): every way gives the same event.
TEST(CodecTest, DecodesAlignedInPlaceAndLargeEventsFromAnyOffset) {
  std::vector<OrderEvent> events = OneOfEach();
  events.push_back(ItemAdded{std::string(1000, 'k'), 2, 300});
  events.push_back(OrderCancelled{std::string(4000, 'r')});
  for (const OrderEvent& e : events) {
    const EncodedEvent enc = Encode(e, CommandContext{std::string(700, 'c'), "flow", "by"});
    for (size_t offset : {0, 1, 8, 12}) {
      SCOPED_TRACE(std::string(EventTypeName(e)) + " at offset " + std::to_string(offset));
      std::vector<uint64_t> words(enc.data.size() / 8 + enc.metadata.size() / 8 + 4);  // 8-byte aligned
      char* base = reinterpret_cast<char*>(words.data());
      std::copy(enc.data.begin(), enc.data.end(), base + offset);
      std::copy(enc.metadata.begin(), enc.metadata.end(), base + offset + enc.data.size());
      const std::optional<OrderEvent> back = DecodeEvent(enc.type, std::string_view(base + offset, enc.data.size()));
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(*back, e);
      EXPECT_EQ(DecodeMetadata(std::string_view(base + offset + enc.data.size(), enc.metadata.size())).command_id,
                std::string(700, 'c'));
    }
  }
}

TEST(CodecTest, UnknownTypeIsNullopt) {
  const std::string data = Encode(OrderCancelled{"x"}, kContext).data;
  for (std::string_view type : {"", "OrderShipped", "orderCancelled", "OrderCancelled ", "EventMetadata"}) {
    EXPECT_FALSE(DecodeEvent(type, data).has_value()) << "'" << type << "'";
  }
}

TEST(CodecTest, EmptyDataIsNullopt) {
  for (const OrderEvent& e : OneOfEach()) {
    std::optional<OrderEvent> back;
    EXPECT_NO_THROW(back = DecodeEvent(EventTypeName(e), ""));
    EXPECT_FALSE(back.has_value()) << EventTypeName(e);
  }
}

// Cutting whole words off a message leaves its header promising more than there is.
TEST(CodecTest, DataTruncatedByWholeWordsIsNullopt) {
  for (const OrderEvent& e : OneOfEach()) {
    const EncodedEvent enc = Encode(e, kContext);
    for (size_t size = 8; size < enc.data.size(); size += 8) {
      std::optional<OrderEvent> back;
      EXPECT_NO_THROW(back = DecodeEvent(enc.type, std::string_view(enc.data).substr(0, size)));
      EXPECT_FALSE(back.has_value()) << EventTypeName(e) << " cut to " << size << " of " << enc.data.size();
    }
  }
}

// Any length that is not whole words cannot be a stored message, whatever its prefix says.
TEST(CodecTest, DataTruncatedWithinItsLastWordIsNullopt) {
  for (const OrderEvent& e : {OrderEvent{ItemAdded{"SKU-1", 2, 100}}, OrderEvent{OrderPlaced{5, 0x01020304}}}) {
    const EncodedEvent enc = Encode(e, kContext);
    for (size_t cut = 1; cut < 8; ++cut) {
      const std::string_view data = std::string_view(enc.data).substr(0, enc.data.size() - cut);
      EXPECT_FALSE(DecodeEvent(enc.type, data).has_value()) << EventTypeName(e) << " cut by " << cut;
    }
  }
}

TEST(CodecTest, GarbageDataIsNullopt) {
  std::vector<std::string> garbage = {
      std::string(8, '\xff'),
      std::string(64, '\xff'),
      "not a capnp message at all",
      std::string("\x00\x00\x00\x00\xff\xff\xff\x0f", 8),  // one segment of 2^28 words
      std::string("\xff\xff\x00\x00\x01\x00\x00\x00", 8),  // 65,536 segments
      std::string("\x00\x00\x00\x00\x00\x00\x00\x00", 8),  // one empty segment: no root pointer
  };
  const uint32_t seed = 1234;
  std::mt19937 rng(seed);
  for (int i = 0; i < 500; ++i) {
    std::string bytes(8 * (1 + rng() % 8), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    // A plausible header (one segment of the right size) so the pointers are what is random.
    if (i % 2 == 0) {
      const uint32_t words = static_cast<uint32_t>(bytes.size() / 8 - 1);
      bytes.replace(0, 8, std::string("\0\0\0\0", 4) + std::string(reinterpret_cast<const char*>(&words), 4));
    }
    garbage.push_back(std::move(bytes));
  }
  for (size_t i = 0; i < garbage.size(); ++i) {
    for (const OrderEvent& e : OneOfEach()) {
      std::optional<OrderEvent> back;
      EXPECT_NO_THROW(back = DecodeEvent(EventTypeName(e), garbage[i]));
      EXPECT_FALSE(back.has_value()) << EventTypeName(e) << ", garbage #" << i << ", seed " << seed;
      EXPECT_NO_THROW((void)DecodeMetadata(garbage[i]));
    }
  }
}

}  // namespace
}  // namespace esd::domain
