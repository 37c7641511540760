// The metadata record and the removal rules of storage/lifecycle.h, without a store.
#include "storage/lifecycle.h"

#include <gtest/gtest.h>

namespace esd::storage {
namespace {

TEST(Lifecycle, MetadataStreamIsTheStreamNameAfterTwoDollars) {
  EXPECT_EQ(MetadataStreamOf("order-1"), "$$order-1");
  std::string_view target;
  EXPECT_TRUE(IsMetadataStream("$$order-1", &target));
  EXPECT_EQ(target, "order-1");
  EXPECT_FALSE(IsMetadataStream("order-1"));
  EXPECT_FALSE(IsMetadataStream("$audit"));
  EXPECT_FALSE(IsMetadataStream("$$"));
}

TEST(Lifecycle, MetadataRecordRoundTripsEveryField) {
  StreamMetadata m;
  m.max_age_micros = 30'000'000;
  m.max_count = 7;
  m.truncate_before = StreamVersion(5);
  m.hard_deleted = true;
  m.custom = std::string("{\"owner\":\"billing\"}\0x", 22);
  const std::string bytes = EncodeStreamMetadata(m);
  EXPECT_EQ(bytes.size(), kMetadataRecordHeaderSize + m.custom.size());
  auto back = DecodeStreamMetadata(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, m);

  auto empty = DecodeStreamMetadata(EncodeStreamMetadata(StreamMetadata{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, StreamMetadata{});
  EXPECT_FALSE(empty->max_age_micros.has_value());
  EXPECT_FALSE(empty->max_count.has_value());
}

TEST(Lifecycle, MetadataRecordBytesArePinned) {
  StreamMetadata m;
  m.max_count = 3;
  m.truncate_before = StreamVersion(2);
  m.custom = "ab";
  const std::string b = EncodeStreamMetadata(m);
  const std::string expected("\x01\0\0\0"  // record version 1
                             "\x02\0\0\0"  // flags: max_count
                             "\0\0\0\0\0\0\0\0"
                             "\x03\0\0\0\0\0\0\0"
                             "\x02\0\0\0\0\0\0\0"
                             "\x02\0\0\0"
                             "\0\0\0\0"
                             "ab",
                             42);
  EXPECT_EQ(b, expected);
}

TEST(Lifecycle, DamagedOrUnknownRecordsAreRefusedAsCorruption) {
  std::string b = EncodeStreamMetadata(StreamMetadata{});
  EXPECT_EQ(DecodeStreamMetadata(b.substr(0, 10)).status().code(), Status::Code::kCorruption);
  std::string newer = b;
  newer[0] = 2;
  EXPECT_EQ(DecodeStreamMetadata(newer).status().code(), Status::Code::kCorruption);
  std::string flags = b;
  flags[4] = 0x40;
  EXPECT_EQ(DecodeStreamMetadata(flags).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeStreamMetadata(b + "x").status().code(), Status::Code::kCorruption);  // custom size disagrees
}

TEST(Lifecycle, FirstKeptVersionTakesTheLaterOfTruncateAndMaxCount) {
  StreamMetadata m;
  EXPECT_EQ(FirstKeptVersion(m, StreamVersion(9)), StreamVersion(0));
  m.truncate_before = StreamVersion(4);
  EXPECT_EQ(FirstKeptVersion(m, StreamVersion(9)), StreamVersion(4));
  m.max_count = 3;  // keeps 7, 8, 9
  EXPECT_EQ(FirstKeptVersion(m, StreamVersion(9)), StreamVersion(7));
  m.max_count = 100;
  EXPECT_EQ(FirstKeptVersion(m, StreamVersion(9)), StreamVersion(4));
  m.truncate_before = StreamVersion(10);  // soft-deleted: nothing left
  EXPECT_EQ(FirstKeptVersion(m, StreamVersion(9)), StreamVersion(10));
  m.truncate_before = StreamVersion(50);  // never past the end
  EXPECT_EQ(FirstKeptVersion(m, StreamVersion(9)), StreamVersion(10));
  StreamMetadata hard;
  hard.hard_deleted = true;
  EXPECT_EQ(FirstKeptVersion(hard, StreamVersion(9)), StreamVersion(10));
}

TEST(Lifecycle, AnEventExpiresOnlyOnceOlderThanMaxAge) {
  StreamMetadata m;
  EXPECT_FALSE(Expired(m, 0, 1'000'000'000));
  m.max_age_micros = 1000;
  EXPECT_FALSE(Expired(m, 5000, 6000));
  EXPECT_TRUE(Expired(m, 5000, 6001));
  EXPECT_FALSE(Expired(m, 7000, 6000));  // a clock that went back removes nothing
}

TEST(Lifecycle, RemovalAppliesEveryRuleToOneEvent) {
  Removal r = Removal::None();
  EXPECT_TRUE(r.RemovesNothing());
  EXPECT_FALSE(r.Removes(StreamVersion(0), 0));
  r.first_kept = StreamVersion(3);
  r.max_age_micros = 100;
  r.now = 1000;
  EXPECT_TRUE(r.Removes(StreamVersion(2), 999));
  EXPECT_TRUE(r.Removes(StreamVersion(5), 899));
  EXPECT_FALSE(r.Removes(StreamVersion(5), 900));
  r.hard_deleted = true;
  EXPECT_TRUE(r.Removes(StreamVersion(5), 1000));
}

TEST(Lifecycle, AMetadataChangeKeepsWhatTheOldOneRemoved) {
  StreamMetadata current;
  current.max_count = 2;  // of versions 0..9, removes 0..7
  StreamMetadata next;    // no limit any more
  auto folded = NextMetadata(current, next, StreamVersion(9), std::nullopt);
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(folded->truncate_before, StreamVersion(8));
  EXPECT_FALSE(folded->max_count.has_value());

  StreamMetadata aged;
  aged.max_age_micros = 10;
  folded = NextMetadata(aged, StreamMetadata{}, StreamVersion(9), StreamVersion(4));
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(folded->truncate_before, StreamVersion(5));

  StreamMetadata truncated;
  truncated.truncate_before = StreamVersion(6);
  StreamMetadata lower;
  lower.truncate_before = StreamVersion(2);
  folded = NextMetadata(truncated, lower, StreamVersion(9), std::nullopt);
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(folded->truncate_before, StreamVersion(6)) << "truncate before never moves back";
}

TEST(Lifecycle, MaxCountZeroIsRefusedWithTheWayToRemoveEverything) {
  StreamMetadata next;
  next.max_count = 0;
  auto r = NextMetadata(StreamMetadata{}, next, StreamVersion(3), std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("delete the stream"), std::string::npos);
}

TEST(Lifecycle, DescribeNamesEachRuleThatIsSet) {
  EXPECT_EQ(DescribeMetadata(StreamMetadata{}), "none");
  StreamMetadata m;
  m.max_age_micros = 60'000'000;
  m.max_count = 10;
  m.truncate_before = StreamVersion(4);
  m.custom = "xyz";
  EXPECT_EQ(DescribeMetadata(m), "max-age=60s max-count=10 truncate-before=4 custom=3 bytes");
}

}  // namespace
}  // namespace esd::storage
