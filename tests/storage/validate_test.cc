// Checks of caller input: UTF-8, stream names and everything about an append request that
// can be told without the log. Every rejection is kInvalidArgument naming what to fix.
#include "storage/validate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvents;

constexpr uint64_t kRoomy = 1ull << 30;  // a batch limit no test here reaches by accident

// ValidateAppend takes views (the store's requests hold them); the tests build owned events.
Status Validate(std::string_view stream, const std::vector<EventData>& events, const Options& options,
                uint64_t max_batch_bytes) {
  std::vector<format::EventFields> fields;
  for (const EventData& e : events) fields.push_back({e.id, e.type, e.content_type, e.metadata, e.data});
  return ValidateAppend(stream, fields, options, max_batch_bytes);
}

void ExpectInvalid(const Status& s, const std::string& needle) {
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos)
      << "message '" << s.message() << "' does not mention '" << needle << "'";
}

TEST(Utf8, WellFormedTextIsValid) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9t\xc3\xa9"));             // "été", 2-byte sequences
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));                  // U+20AC, 3 bytes
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));              // U+1F600, 4 bytes
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));              // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf\xee\x80\x80"));      // U+D7FF and U+E000 border surrogates
}

TEST(Utf8, OverlongEncodingsAreInvalid) {
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // '/' in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xc1\xbf"));          // U+007F in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // '/' in 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // U+07FF in 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));  // '/' in 4 bytes
  EXPECT_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in 4 bytes
}

TEST(Utf8, SurrogatesAreInvalid) {
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // U+D800
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));  // U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\xbd\xed\xb8\x80"));  // a CESU-8 surrogate pair
}

TEST(Utf8, CodePointsAboveU10FFFFAreInvalid) {
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xf7\xbf\xbf\xbf"));
  EXPECT_FALSE(IsValidUtf8("\xf8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(Utf8, TruncatedAndBrokenSequencesAreInvalid) {
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8("ab\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x98"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82x"));   // a continuation byte replaced by ASCII
  EXPECT_FALSE(IsValidUtf8("\x80"));        // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8("a\xbf" "b"));
}

TEST(StreamName, OrdinaryNamesAreAccepted) {
  EXPECT_TRUE(ValidateStreamName("order-1").ok());
  EXPECT_TRUE(ValidateStreamName("a").ok());
  EXPECT_TRUE(ValidateStreamName("caf\xc3\xa9/\xe2\x82\xac").ok());
  EXPECT_TRUE(ValidateStreamName("a$b").ok()) << "only a leading '$' is reserved";
  EXPECT_TRUE(ValidateStreamName("\xc2\xa0nbsp").ok()) << "U+00A0 is past the C1 range";
  EXPECT_TRUE(ValidateStreamName(" ~").ok()) << "the first and last printable ASCII characters";
}

TEST(StreamName, LengthMustBeOneTo255Bytes) {
  ExpectInvalid(ValidateStreamName(""), "1..255");
  EXPECT_TRUE(ValidateStreamName(std::string(255, 'x')).ok());
  ExpectInvalid(ValidateStreamName(std::string(256, 'x')), "got 256");
}

TEST(StreamName, InvalidUtf8IsRejected) {
  ExpectInvalid(ValidateStreamName("bad\xc0\xaf"), "UTF-8");
}

TEST(StreamName, ControlCharactersAreRejected) {
  for (std::string c : {std::string(1, '\0'), std::string("\t"), std::string("\n"),
                        std::string("\x1f"), std::string("\x7f")}) {
    ExpectInvalid(ValidateStreamName("a" + c + "b"), "control character");
  }
}

TEST(StreamName, C1ControlCharactersAreRejected) {
  ExpectInvalid(ValidateStreamName("a\xc2\x80" "b"), "control character");  // U+0080
  ExpectInvalid(ValidateStreamName("a\xc2\x85" "b"), "control character");  // U+0085 NEL
  ExpectInvalid(ValidateStreamName("a\xc2\x9f"), "control character");      // U+009F
}

TEST(StreamName, StreamNameStartingWithDollarIsReserved) {
  ExpectInvalid(ValidateStreamName("$all"), "reserved");
  ExpectInvalid(ValidateStreamName("$"), "'$'");
}

TEST(ValidateAppend, WellFormedAppendIsAccepted) {
  Status s = Validate("s", MakeEvents("s", 0, 3), Options{}, kRoomy);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(ValidateAppend, StreamNameIsChecked) {
  ExpectInvalid(Validate("$system", MakeEvents("s", 0, 1), Options{}, kRoomy), "reserved");
}

TEST(ValidateAppend, EmptyAppendIsRejected) {
  ExpectInvalid(Validate("s", {}, Options{}, kRoomy), "at least one event");
}

TEST(ValidateAppend, MoreEventsThanTheLimitAreRejected) {
  Options options;
  options.max_events_per_append = 4;
  EXPECT_TRUE(Validate("s", MakeEvents("s", 0, 4), options, kRoomy).ok());
  ExpectInvalid(Validate("s", MakeEvents("s", 0, 5), options, kRoomy), "5 > limit 4");
}

TEST(ValidateAppend, NilEventIdIsRejectedNamingTheEvent) {
  auto events = MakeEvents("s", 0, 3);
  events[2].id = EventId{};
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 2: event id must not be nil");
}

TEST(ValidateAppend, DuplicateEventIdIsRejectedNamingTheSecondOccurrence) {
  auto events = MakeEvents("s", 0, 3);
  events[2].id = events[0].id;
  const Status s = Validate("s", events, Options{}, kRoomy);
  ExpectInvalid(s, "event 2: ");
  ExpectInvalid(s, events[0].id.ToString());
  ExpectInvalid(s, "twice");
}

TEST(ValidateAppend, EventTypeMustBeOneTo255Bytes) {
  auto events = MakeEvents("s", 0, 2);
  events[1].type = "";
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 1: event type must be 1..255");
  events[1].type = std::string(255, 't');
  EXPECT_TRUE(Validate("s", events, Options{}, kRoomy).ok());
  events[1].type = std::string(256, 't');
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 1: event type");
}

TEST(ValidateAppend, EventTypeWithAControlCharacterIsRejected) {
  auto events = MakeEvents("s", 0, 1);
  events[0].type = "Order\nPlaced";
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 0: event type contains a control");
}

TEST(ValidateAppend, ContentTypeMayBeEmptyButAtMost255Bytes) {
  auto events = MakeEvents("s", 0, 2);
  events[0].content_type = "";
  events[1].content_type = std::string(255, 'c');
  EXPECT_TRUE(Validate("s", events, Options{}, kRoomy).ok());
  events[1].content_type = std::string(256, 'c');
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 1: content type");
}

TEST(ValidateAppend, ContentTypeMustBePrintableUtf8) {
  auto events = MakeEvents("s", 0, 1);
  events[0].content_type = "text/\xc0\xaf";
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 0: content type");
  events[0].content_type = "text/plain\x7f";
  ExpectInvalid(Validate("s", events, Options{}, kRoomy), "event 0: content type");
}

TEST(ValidateAppend, EventOverMaxEventSizeIsRejectedWithItsEncodedSize) {
  Options options;
  options.max_event_size = 1024;
  auto events = MakeEvents("s", 0, 3);
  const std::string stream = "s";
  events[1].data = std::string(1024, 'd');
  const size_t encoded = format::EventRecordSize(
      stream, {events[1].id, events[1].type, events[1].content_type, events[1].metadata, events[1].data});
  const Status s = Validate(stream, events, options, kRoomy);
  ExpectInvalid(s, "event 1: event is " + std::to_string(encoded) + " bytes");
  ExpectInvalid(s, "limit of 1024");
}

TEST(ValidateAppend, EventOfExactlyMaxEventSizeIsAccepted) {
  const std::string stream = "s";
  auto events = MakeEvents(stream, 0, 1);
  Options options;
  options.max_event_size = static_cast<uint32_t>(format::EventRecordSize(
      stream, {events[0].id, events[0].type, events[0].content_type, events[0].metadata, events[0].data}));
  EXPECT_TRUE(Validate(stream, events, options, kRoomy).ok());
  options.max_event_size -= 8;
  ExpectInvalid(Validate(stream, events, options, kRoomy), "event 0: event is");
}

TEST(ValidateAppend, BatchOverMaxBatchBytesIsRejected) {
  const std::string stream = "s";
  auto events = MakeEvents(stream, 0, 4);
  uint64_t total = format::kBatchHeaderSize;
  for (const EventData& e : events) {
    total += format::EventRecordSize(stream, {e.id, e.type, e.content_type, e.metadata, e.data});
  }
  EXPECT_TRUE(Validate(stream, events, Options{}, total).ok());
  const Status s = Validate(stream, events, Options{}, total - 1);
  ExpectInvalid(s, "append of " + std::to_string(total) + " bytes");
  ExpectInvalid(s, "at most " + std::to_string(total - 1));
}

TEST(ValidateAppend, TheFirstOffendingEventIsTheOneNamed) {
  auto events = MakeEvents("s", 0, 5);
  events[3].type = "";
  events[4].id = EventId{};
  const Status s = Validate("s", events, Options{}, kRoomy);
  ExpectInvalid(s, "event 3: ");
  EXPECT_EQ(s.message().find("event 4"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace esd::storage
