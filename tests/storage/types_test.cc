// The vocabulary types: event ids as text and at random, expected versions as text.
#include "storage/types.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace esd::storage {
namespace {

EventId CountingId() {
  EventId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(i * 17);  // 00 11 22 ... ff
  return id;
}

TEST(EventId, ToStringIsLowercaseHexInUuidGroups) {
  EXPECT_EQ(CountingId().ToString(), "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(EventId{}.ToString(), "00000000-0000-0000-0000-000000000000");
}

TEST(EventId, ParseOfToStringGivesTheSameId) {
  for (int i = 0; i < 100; ++i) {
    const EventId id = EventId::Random();
    auto parsed = EventId::Parse(id.ToString());
    ASSERT_TRUE(parsed.has_value()) << id.ToString();
    EXPECT_EQ(*parsed, id);
  }
  EXPECT_EQ(EventId::Parse(CountingId().ToString()), CountingId());
}

TEST(EventId, ParseAcceptsUppercaseAndNoDashes) {
  EXPECT_EQ(EventId::Parse("00112233-4455-6677-8899-AABBCCDDEEFF"), CountingId());
  EXPECT_EQ(EventId::Parse("00112233445566778899aabbccddeeff"), CountingId());
}

TEST(EventId, ParseRejectsWrongLength) {
  EXPECT_FALSE(EventId::Parse("").has_value());
  EXPECT_FALSE(EventId::Parse("00112233-4455-6677-8899-aabbccddeef").has_value());    // 31 digits
  EXPECT_FALSE(EventId::Parse("00112233-4455-6677-8899-aabbccddee").has_value());     // 30 digits
  EXPECT_FALSE(EventId::Parse("00112233-4455-6677-8899-aabbccddeeff0").has_value());  // 33 digits
  EXPECT_FALSE(EventId::Parse("00112233-4455-6677-8899-aabbccddeeff00").has_value()); // 34 digits
  EXPECT_FALSE(EventId::Parse("----").has_value());
}

TEST(EventId, ParseRejectsNonHexCharacters) {
  EXPECT_FALSE(EventId::Parse("00112233-4455-6677-8899-aabbccddeefg").has_value());
  EXPECT_FALSE(EventId::Parse("g0112233-4455-6677-8899-aabbccddeeff").has_value());
  EXPECT_FALSE(EventId::Parse("00112233 4455 6677 8899 aabbccddeeff").has_value());
  EXPECT_FALSE(EventId::Parse("{00112233-4455-6677-8899-aabbccddeeff}").has_value());
  EXPECT_FALSE(EventId::Parse("0x112233-4455-6677-8899-aabbccddeeff").has_value());
}

TEST(EventId, NilIsAllZeroBytes) {
  EXPECT_TRUE(EventId{}.IsNil());
  EventId one;
  one.bytes[15] = 1;
  EXPECT_FALSE(one.IsNil());
  EXPECT_FALSE(CountingId().IsNil());
}

TEST(EventId, RandomSetsVersion4AndTheRfc4122Variant) {
  for (int i = 0; i < 200; ++i) {
    const EventId id = EventId::Random();
    EXPECT_EQ(id.bytes[6] >> 4, 4) << id.ToString();
    EXPECT_EQ(id.bytes[8] >> 6, 2) << id.ToString();
    const std::string text = id.ToString();
    EXPECT_EQ(text[14], '4') << text;
    EXPECT_NE(std::string("89ab").find(text[19]), std::string::npos) << text;
    EXPECT_FALSE(id.IsNil());
  }
}

TEST(EventId, RandomDiffersBetweenCalls) {
  std::set<EventId> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(EventId::Random());
  EXPECT_EQ(seen.size(), 1000u);
}

// A process that forks (a worker pool embedding the store, a test harness) must not give
// its child the parent's next ids: the store takes an id it has seen for a retry.
TEST(EventId, AForkedChildDoesNotRepeatItsParentsNextIds) {
  (void)EventId::Random();  // the calling thread's generator exists before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const EventId id = EventId::Random();
    (void)!::write(fds[1], id.bytes.data(), id.bytes.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  const EventId parents = EventId::Random();
  EventId childs;
  ASSERT_EQ(::read(fds[0], childs.bytes.data(), childs.bytes.size()), static_cast<ssize_t>(childs.bytes.size()));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_NE(childs, parents) << "the child's first id after the fork is the parent's: " << parents.ToString();
}

TEST(EventId, EqualIdsHashEqually) {
  const EventId a = EventId::Random();
  const EventId b = *EventId::Parse(a.ToString());
  EXPECT_EQ(EventIdHash()(a), EventIdHash()(b));
}

TEST(ExpectedVersion, ToStringNamesEachKind) {
  EXPECT_EQ(ExpectedVersion::Any().ToString(), "any");
  EXPECT_EQ(ExpectedVersion::NoStream().ToString(), "no-stream");
  EXPECT_EQ(ExpectedVersion::StreamExists().ToString(), "stream-exists");
  EXPECT_EQ(ExpectedVersion::Exact(StreamVersion(0)).ToString(), "0");
  EXPECT_EQ(ExpectedVersion::Exact(StreamVersion(42)).ToString(), "42");
  EXPECT_EQ(ExpectedVersion::Exact(StreamVersion(~uint64_t{0})).ToString(), "18446744073709551615");
}

TEST(ExpectedVersion, ExactCarriesItsVersionAndComparesByKindAndVersion) {
  const auto e = ExpectedVersion::Exact(StreamVersion(7));
  EXPECT_EQ(e.kind(), ExpectedVersion::Kind::kExact);
  EXPECT_EQ(e.version(), StreamVersion(7));
  EXPECT_EQ(e, ExpectedVersion::Exact(StreamVersion(7)));
  EXPECT_NE(e, ExpectedVersion::Exact(StreamVersion(8)));
  EXPECT_NE(ExpectedVersion::Exact(StreamVersion(0)), ExpectedVersion::Any());
  EXPECT_NE(ExpectedVersion::NoStream(), ExpectedVersion::StreamExists());
}

TEST(NamedU64, StepsAndDistances) {
  const GlobalPosition p(10);
  EXPECT_EQ(p + 5, GlobalPosition(15));
  EXPECT_EQ(p - 3, GlobalPosition(7));
  EXPECT_EQ(GlobalPosition(15) - p, 5u);
  GlobalPosition q = p;
  EXPECT_EQ(++q, GlobalPosition(11));
  EXPECT_LT(p, q);
}

}  // namespace
}  // namespace esd::storage
