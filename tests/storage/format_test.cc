// Pins the on-disk encoding of storage/format.h byte for byte. If one of these fails, the
// format changed: bump kFormatVersion and teach recovery to read the old one.
#include "storage/format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace esd::storage::format {
namespace {

std::vector<uint8_t> FromHex(std::string hex) {
  std::erase_if(hex, [](char c) { return c == ' ' || c == '\n'; });
  std::vector<uint8_t> out;
  for (size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

EventId CountingId() {
  EventId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(i);
  return id;
}

std::vector<uint8_t> GoldenBatch() {
  EventFields e{CountingId(), "T", "", "m", "d"};
  std::vector<uint8_t> b(kBatchHeaderSize + EventRecordSize("s", e));
  EncodeBatch(b, "s", std::span(&e, 1),
              {SegmentId(3), GlobalPosition(7), StreamVersion(2), 0x0102030405060708ull, FileOffset(64)});
  return b;
}

TEST(Format, BatchEncodingIsPinned) {
  // BatchHeader: checksum | size 128, kind 1, flags 0 | 1 event, reserved | first position 7 |
  // segment 3 | timestamp | sync_mark 64. Then the event: position 7 | version 2 | id |
  // timestamp | record 72, data 1, metadata 1 | stream 1, type 1, content type 0, flags,
  // reserved | "s" "T" "m" "d" + 4 bytes of padding.
  const auto expected = FromHex(R"(
      c8960c19747c764a 8000000001000000 0100000000000000 0700000000000000
      0300000000000000 0807060504030201 4000000000000000 0700000000000000
      0200000000000000 0001020304050607 08090a0b0c0d0e0f 0807060504030201
      4800000001000000 0100000001000100 0000000000000000 73546d6400000000)");
  EXPECT_EQ(GoldenBatch(), expected);
}

TEST(Format, SegmentHeaderEncodingIsPinned) {
  uint8_t h[kSegmentHeaderSize];
  EncodeSegmentHeader(std::span<uint8_t, kSegmentHeaderSize>(h), SegmentId(3), GlobalPosition(7), 65536,
                      0x1122334455667788ull);
  const auto expected = FromHex(R"(
      4553445345473031 0100000040000000 0300000000000000 0700000000000000
      0000010000000000 8877665544332211 0000000000000000 9c2b43f245786803)");
  EXPECT_EQ(std::vector<uint8_t>(h, h + kSegmentHeaderSize), expected);
  SegmentHeader decoded;
  ASSERT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kOk);
  EXPECT_EQ(decoded.segment_id, 3u);
  EXPECT_EQ(decoded.first_position, 7u);
  h[20] ^= 1;
  EXPECT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kBadChecksum);
}

TEST(Format, EncodedBatchParsesBackInPlace) {
  const auto b = GoldenBatch();
  BatchHeader h;
  ASSERT_EQ(CheckBatch(b, true, &h), BatchCheck::kOk);
  EXPECT_EQ(h.event_count, 1u);
  EventView e;
  uint32_t size = 0;
  ASSERT_TRUE(ParseEvent(std::span(b).subspan(kBatchHeaderSize), &e, &size));
  EXPECT_EQ(size, 72u);
  EXPECT_EQ(e.position, GlobalPosition(7));
  EXPECT_EQ(e.version, StreamVersion(2));
  EXPECT_EQ(e.id, CountingId());
  EXPECT_EQ(e.stream, "s");
  EXPECT_EQ(e.type, "T");
  EXPECT_EQ(e.content_type, "");
  EXPECT_EQ(e.metadata, "m");
  EXPECT_EQ(e.data, "d");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(e.data.data()) - reinterpret_cast<uintptr_t>(b.data()),
            kBatchHeaderSize + kEventHeaderSize + 3)
      << "views point into the buffer: no copy";
}

TEST(Format, ZeroBytesAreTheEndOfTheLog) {
  std::vector<uint8_t> zeros(256, 0);
  BatchHeader h;
  EXPECT_EQ(CheckBatch(zeros, true, &h), BatchCheck::kEndOfLog);
  EXPECT_EQ(CheckBatch(std::span(zeros).first(10), true, &h), BatchCheck::kEndOfLog);
}

TEST(Format, EveryDamageIsNamed) {
  BatchHeader h;
  auto b = GoldenBatch();
  EXPECT_EQ(CheckBatch(std::span(b).first(b.size() - 8), true, &h), BatchCheck::kTruncated);
  EXPECT_EQ(CheckBatch(std::span(b).first(20), true, &h), BatchCheck::kTruncated);
  auto flipped = b;
  flipped[120] ^= 0x10;
  EXPECT_EQ(CheckBatch(flipped, true, &h), BatchCheck::kBadChecksum);
  EXPECT_EQ(CheckBatch(flipped, false, &h), BatchCheck::kOk) << "without the hash only bounds are checked";
  auto odd = b;
  odd[8] = 0x81;  // size not a multiple of 8
  EXPECT_EQ(CheckBatch(odd, true, &h), BatchCheck::kBadHeader);
  auto zero_size = b;
  std::memset(zero_size.data() + 8, 0, 4);
  EXPECT_EQ(CheckBatch(zero_size, true, &h), BatchCheck::kBadHeader) << "a half-written header is not the end";
}

TEST(Format, UnknownKindWithSafeToIgnoreBitIsAccepted) {
  auto b = GoldenBatch();
  BatchHeader h;
  std::memcpy(&h, b.data(), sizeof(h));
  h.kind = kKindSafeToIgnore | 7;
  h.event_count = 0;
  std::memcpy(b.data(), &h, sizeof(h));
  const uint64_t sum = Checksum(b.data() + 8, b.size() - 8);
  std::memcpy(b.data(), &sum, 8);
  ASSERT_EQ(CheckBatch(b, true, &h), BatchCheck::kOk);
  h.kind = 7;  // without the bit an unknown kind is refused
  std::memcpy(b.data(), &h, sizeof(h));
  const uint64_t sum2 = Checksum(b.data() + 8, b.size() - 8);
  std::memcpy(b.data(), &sum2, 8);
  EXPECT_EQ(CheckBatch(b, true, &h), BatchCheck::kBadHeader);
}

TEST(Format, EventRecordWithSizesPastItsBufferDoesNotParse) {
  auto b = GoldenBatch();
  auto record = std::span(b).subspan(kBatchHeaderSize);
  EventView e;
  uint32_t size;
  EXPECT_FALSE(ParseEvent(record.first(60), &e, &size));
  EXPECT_FALSE(ParseEvent(record.first(64), &e, &size));
  auto big = b;
  const uint32_t huge = 1u << 30;
  std::memcpy(big.data() + kBatchHeaderSize + 44, &huge, 4);  // data_size
  EXPECT_FALSE(ParseEvent(std::span(big).subspan(kBatchHeaderSize), &e, &size));
}

TEST(Format, RecordsAreEightByteAligned) {
  for (size_t n = 0; n < 20; ++n) {
    std::string data(n, 'x');
    EventFields e{CountingId(), "Type", "ct", "", data};
    EXPECT_EQ(EventRecordSize("stream", e) % kAlignment, 0u);
  }
}

}  // namespace
}  // namespace esd::storage::format
