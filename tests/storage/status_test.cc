// The error model: Status codes and messages, which outcomes are retryable or data loss,
// and Result<T> holding either a value or a status.
#include "storage/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace esd::storage {
namespace {

using Code = Status::Code;

std::vector<Status> OneOfEachError() {
  return {Status::WrongExpectedVersion("s", ExpectedVersion::Any(), std::nullopt),
          Status::IdempotencyConflict("m"),
          Status::InvalidArgument("m"),
          Status::NotFound("m"),
          Status::OutOfSpace("m"),
          Status::IOError("m"),
          Status::Corruption("m"),
          Status::Locked("m"),
          Status::Closed("m"),
          Status::Overloaded("m")};
}

TEST(Status, DefaultIsOk) {
  const Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(Status, EachFactoryGivesItsOwnCode) {
  const std::vector<Code> expected = {Code::kWrongExpectedVersion, Code::kIdempotencyConflict,
                                      Code::kInvalidArgument, Code::kNotFound, Code::kOutOfSpace,
                                      Code::kIOError, Code::kCorruption, Code::kLocked, Code::kClosed,
                                      Code::kOverloaded};
  const auto errors = OneOfEachError();
  ASSERT_EQ(errors.size(), expected.size());
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_FALSE(errors[i].ok()) << i;
    EXPECT_EQ(errors[i].code(), expected[i]) << i;
  }
}

TEST(Status, ToStringIsTheCodeNameThenTheMessage) {
  EXPECT_EQ(Status::NotFound("no such stream").ToString(), "not found: no such stream");
  EXPECT_EQ(Status::InvalidArgument("bad").ToString(), "invalid argument: bad");
  EXPECT_EQ(Status::Corruption("crc").ToString(), "corruption: crc");
  EXPECT_EQ(Status::OutOfSpace("full").ToString(), "out of space: full");
  EXPECT_EQ(Status::IOError("eio").ToString(), "I/O error: eio");
  EXPECT_EQ(Status::Locked("pid 1").ToString(), "locked: pid 1");
  EXPECT_EQ(Status::Closed("bye").ToString(), "closed: bye");
  EXPECT_EQ(Status::Overloaded("busy").ToString(), "overloaded: busy");
  EXPECT_EQ(Status::IdempotencyConflict("id").ToString(), "idempotency conflict: id");
}

TEST(Status, EveryCodeHasADistinctName) {
  std::vector<std::string> names;
  for (Code c : {Code::kOk, Code::kWrongExpectedVersion, Code::kIdempotencyConflict,
                 Code::kInvalidArgument, Code::kNotFound, Code::kOutOfSpace, Code::kIOError,
                 Code::kCorruption, Code::kLocked, Code::kClosed, Code::kOverloaded}) {
    const std::string name = Status::CodeName(c);
    EXPECT_NE(name, "unknown");
    for (const auto& other : names) EXPECT_NE(name, other);
    names.push_back(name);
  }
}

TEST(Status, IOErrorWithErrnoAppendsTheSystemMessage) {
  const Status s = Status::IOError("open /x", ENOENT);
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_EQ(s.message(), std::string("open /x: ") + std::strerror(ENOENT));
}

TEST(Status, WrongExpectedVersionCarriesTheActualVersion) {
  const Status s = Status::WrongExpectedVersion("order-7", ExpectedVersion::Exact(StreamVersion(3)),
                                                StreamVersion(5));
  EXPECT_EQ(s.code(), Code::kWrongExpectedVersion);
  EXPECT_EQ(s.actual_version(), StreamVersion(5));
  EXPECT_NE(s.message().find("order-7"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("expected version 3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("actual 5"), std::string::npos) << s.message();
  EXPECT_EQ(s.ToString().rfind("wrong expected version: ", 0), 0u) << s.ToString();
}

TEST(Status, WrongExpectedVersionOfAMissingStreamSaysNoStream) {
  const Status s = Status::WrongExpectedVersion("ghost", ExpectedVersion::StreamExists(), std::nullopt);
  EXPECT_EQ(s.actual_version(), std::nullopt);
  EXPECT_NE(s.message().find("ghost"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("stream-exists"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("actual no stream"), std::string::npos) << s.message();
}

TEST(Status, ActualVersionOfOtherCodesIsEmpty) {
  EXPECT_EQ(Status::NotFound("x").actual_version(), std::nullopt);
  EXPECT_EQ(Status::Ok().actual_version(), std::nullopt);
}

TEST(Status, OnlyOutOfSpaceAndOverloadedAreRetryable) {
  EXPECT_FALSE(Status::Ok().IsRetryable());
  for (const Status& s : OneOfEachError()) {
    EXPECT_EQ(s.IsRetryable(), s.code() == Code::kOutOfSpace || s.code() == Code::kOverloaded) << s.ToString();
  }
}

TEST(Status, OnlyCorruptionIsDataLoss) {
  EXPECT_FALSE(Status::Ok().IsDataLoss());
  for (const Status& s : OneOfEachError()) {
    EXPECT_EQ(s.IsDataLoss(), s.code() == Code::kCorruption) << s.ToString();
  }
}

TEST(Result, HoldsAValue) {
  Result<int> r(42);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  r.value() = 7;
  EXPECT_EQ(*r, 7);
}

TEST(Result, HoldsAStatus) {
  Result<int> r(Status::NotFound("nothing here"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "nothing here");
}

TEST(Result, MovesOutAMoveOnlyValue) {
  Result<std::unique_ptr<std::string>> r(std::make_unique<std::string>("payload"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->get()->size(), 7u);
  std::unique_ptr<std::string> owned = std::move(r).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, "payload");
}

TEST(Result, KeepsTheStatusOfWrongExpectedVersion) {
  Result<std::string> r(Status::WrongExpectedVersion("s", ExpectedVersion::NoStream(), StreamVersion(0)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().actual_version(), StreamVersion(0));
}

}  // namespace
}  // namespace esd::storage
