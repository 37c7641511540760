// The storage layer's error model: a [[nodiscard]] Status, and Result<T> = value or Status.
// Each outcome a caller must tell apart is its own code; whether retrying can help is part
// of the status (see IsRetryable). Exceptions are not used in storage/.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "storage/types.h"

namespace esd::storage {

// Where damaged bytes of the log were found, for a kCorruption that has a place.
struct DamageLocation {
  std::string file;                  // relative to the data directory: "segments/<name>.seg"
  uint64_t offset = 0;               // in that file: the start of the batch that does not verify
  std::optional<uint64_t> position;  // the global position the batch should start at, when known
  std::string ToString() const;      // "segments/X.seg offset O (position P)"
};

class [[nodiscard]] Status {
 public:
  enum class Code : uint8_t {
    kOk,
    kWrongExpectedVersion,  // business outcome: carries the stream's actual version
    kIdempotencyConflict,   // an event id that was already written, with other content
    kInvalidArgument,       // bad input from the caller: name, size, count ...
    kNotFound,
    kOutOfSpace,            // retryable: the disk is full; nothing was written
    kIOError,               // the OS failed an operation; the store stops accepting writes
    kCorruption,            // data on disk is damaged: a data-loss condition
    kLocked,                // another process holds the data directory
    kClosed,                // the store is shutting down or failed
    kOverloaded,            // retryable: too much is queued for the writer; nothing was written
    kStreamDeleted,         // business outcome: the stream was hard-deleted (storage/lifecycle.h)
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status WrongExpectedVersion(std::string stream, ExpectedVersion expected,
                                     std::optional<StreamVersion> actual);
  static Status IdempotencyConflict(std::string msg) { return {Code::kIdempotencyConflict, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status OutOfSpace(std::string msg) { return {Code::kOutOfSpace, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  // `errno_value` is appended to the message as strerror text.
  static Status IOError(const std::string& what, int errno_value);
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  // Corruption at a known place; the message is "<where>: <what>".
  static Status Damaged(DamageLocation where, const std::string& what);
  static Status Locked(std::string msg) { return {Code::kLocked, std::move(msg)}; }
  static Status Closed(std::string msg) { return {Code::kClosed, std::move(msg)}; }
  static Status Overloaded(std::string msg) { return {Code::kOverloaded, std::move(msg)}; }
  static Status StreamDeleted(std::string_view stream);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // True when the same request may succeed later without any change by the caller.
  bool IsRetryable() const { return code_ == Code::kOutOfSpace || code_ == Code::kOverloaded; }
  // True when data that was acknowledged may be damaged or missing.
  bool IsDataLoss() const { return code_ == Code::kCorruption; }

  // For kWrongExpectedVersion: the stream's version when the append was checked
  // (nullopt: the stream does not exist).
  std::optional<StreamVersion> actual_version() const { return actual_version_; }
  // For kCorruption made by Damaged: where.
  const std::optional<DamageLocation>& damage() const { return damage_; }

  std::string ToString() const;  // "wrong expected version: ..." etc.
  static const char* CodeName(Code code);

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
  std::optional<StreamVersion> actual_version_;
  std::optional<DamageLocation> damage_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace esd::storage
