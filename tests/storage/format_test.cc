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
      4553445345473031 0200000040000000 0300000000000000 0700000000000000
      0000010000000000 8877665544332211 0000000000000000 78d77e3578b4d327)");
  EXPECT_EQ(std::vector<uint8_t>(h, h + kSegmentHeaderSize), expected);
  SegmentHeader decoded;
  ASSERT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kOk);
  EXPECT_EQ(decoded.segment_id, 3u);
  EXPECT_EQ(decoded.first_position, 7u);
  h[20] ^= 1;
  EXPECT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kBadChecksum);
}

TEST(Format, Version1SegmentHeaderIsStillRead) {
  // A header as format 1 wrote it (the bytes the test above pinned before format 2).
  const auto v1 = FromHex(R"(
      4553445345473031 0100000040000000 0300000000000000 0700000000000000
      0000010000000000 8877665544332211 0000000000000000 9c2b43f245786803)");
  SegmentHeader decoded;
  ASSERT_EQ(DecodeSegmentHeader(v1, &decoded), HeaderCheck::kOk);
  EXPECT_EQ(decoded.format_version, 1u);
  EXPECT_EQ(decoded.scavenged_end_position, 0u);
}

TEST(Format, ScavengedSegmentHeaderIsPinned) {
  // Format 2, scavenged: compact (segment_size 200, the file's length) and
  // scavenged_end_position 90 at +48.
  uint8_t h[kSegmentHeaderSize];
  EncodeSegmentHeader(std::span<uint8_t, kSegmentHeaderSize>(h), SegmentId(3), GlobalPosition(7), 200,
                      0x1122334455667788ull, GlobalPosition(90));
  const auto expected = FromHex(R"(
      4553445345473031 0200000040000000 0300000000000000 0700000000000000
      c800000000000000 8877665544332211 5a00000000000000 3815a25efb9feac5)");
  EXPECT_EQ(std::vector<uint8_t>(h, h + kSegmentHeaderSize), expected);
  SegmentHeader decoded;
  ASSERT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kOk);
  EXPECT_EQ(decoded.scavenged_end_position, 90u);
  EXPECT_EQ(decoded.segment_size, 200u);
}

TEST(Format, OnlyAScavengedSegmentMayBeSmallerThanTheMinimum) {
  uint8_t h[kSegmentHeaderSize];
  EncodeSegmentHeader(std::span<uint8_t, kSegmentHeaderSize>(h), SegmentId(3), GlobalPosition(7), 200, 1);
  SegmentHeader decoded;
  EXPECT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kBadField);
  EncodeSegmentHeader(std::span<uint8_t, kSegmentHeaderSize>(h), SegmentId(3), GlobalPosition(7), 200, 1,
                      GlobalPosition(5));
  EXPECT_EQ(DecodeSegmentHeader(std::span<const uint8_t>(h, kSegmentHeaderSize), &decoded), HeaderCheck::kBadField)
      << "a scavenged segment ends after it starts";
}

TEST(Format, TipsRecordEncodingIsPinned) {
  const TipsEntry entries[] = {{"ab", StreamVersion(4), GlobalPosition(9), 0x10}};
  std::vector<uint8_t> b(TipsRecordSize(entries));
  ASSERT_EQ(b.size(), kBatchHeaderSize + 40);
  EncodeTipsRecord(b, entries, {SegmentId(3), GlobalPosition(90), StreamVersion(0), 0x20, FileOffset(128)});
  // BatchHeader: checksum | size 96, kind 0x8002, flags 0 | 1 entry, reserved | first position 90 |
  // segment 3 | timestamp 0x20 | sync_mark 128 (its own offset). Then the entry: last version 4 |
  // last position 9 | last timestamp 0x10 | name size 2, reserved | "ab" + 6 bytes of padding.
  const auto expected = FromHex(R"(
      01987a6f5ff15135 6000000002800000 0100000000000000 5a00000000000000
      0300000000000000 2000000000000000 8000000000000000 0400000000000000
      0900000000000000 1000000000000000 0200000000000000 6162000000000000)");
  EXPECT_EQ(b, expected);
  BatchHeader h;
  ASSERT_EQ(CheckBatch(b, true, &h), BatchCheck::kOk);
  std::vector<std::string> names;
  ASSERT_TRUE(ForEachTipsEntry(b, [&](const TipsEntry& e) {
    names.emplace_back(e.stream);
    EXPECT_EQ(e.last_version, StreamVersion(4));
    EXPECT_EQ(e.last_position, GlobalPosition(9));
    EXPECT_EQ(e.last_timestamp, 0x10u);
  }));
  EXPECT_EQ(names, std::vector<std::string>{"ab"});
  auto bad = b;
  bad[kBatchHeaderSize + 24] = 200;  // a name past the record
  EXPECT_FALSE(ForEachTipsEntry(bad, [](const TipsEntry&) {}));
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

TEST(Format, ARunOfRecordsChecksEverySizeAndPosition) {
  // EventFields holds views: the texts they name live here.
  const std::vector<std::string> metadata = {"", "m", "mm"}, data = {"ddddd", "dddddd", "ddddddd"};
  std::vector<EventFields> events;
  for (size_t i = 0; i < 3; ++i) events.push_back({CountingId(), "Type", "", metadata[i], data[i]});
  size_t bytes = kBatchHeaderSize;
  for (const auto& e : events) bytes += EventRecordSize("s", e);
  std::vector<uint8_t> b(bytes);
  EncodeBatch(b, "s", events, {SegmentId(1), GlobalPosition(40), StreamVersion(0), 1, FileOffset(64)});
  const auto run = std::span<const uint8_t>(b).subspan(kBatchHeaderSize);
  EXPECT_TRUE(CheckEventRecords(run, 40, 3));
  EXPECT_FALSE(CheckEventRecords(run, 41, 3)) << "positions other than claimed";
  EXPECT_FALSE(CheckEventRecords(run, 40, 2)) << "bytes past the last record";
  EXPECT_FALSE(CheckEventRecords(run, 40, 4)) << "fewer records than claimed";
  EXPECT_FALSE(CheckEventRecords(run.first(run.size() - 8), 40, 3)) << "a record cut short";
  EXPECT_TRUE(CheckEventRecords(run.first(0), 40, 0));

  auto bad = b;
  const uint32_t huge = 1u << 30;
  const size_t second = kBatchHeaderSize + EventRecordSize("s", events[0]);
  std::memcpy(bad.data() + second + 44, &huge, 4);  // the second record's data_size
  EXPECT_FALSE(CheckEventRecords(std::span<const uint8_t>(bad).subspan(kBatchHeaderSize), 40, 3));
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
