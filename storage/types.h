// Vocabulary types of the log. Positions, versions, segment ids and file offsets are
// distinct types so that one cannot be passed where another is meant.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace esd::storage {

// A 64-bit quantity with a name. Arithmetic is limited to what the log needs: ordering,
// stepping and distances; mixing two different NamedU64 types does not compile.
template <typename Tag>
struct NamedU64 {
  uint64_t value = 0;

  constexpr NamedU64() = default;
  constexpr explicit NamedU64(uint64_t v) : value(v) {}
  constexpr auto operator<=>(const NamedU64&) const = default;
  constexpr NamedU64 operator+(uint64_t n) const { return NamedU64(value + n); }
  constexpr NamedU64 operator-(uint64_t n) const { return NamedU64(value - n); }
  constexpr uint64_t operator-(NamedU64 o) const { return value - o.value; }
  constexpr NamedU64& operator++() { ++value; return *this; }
};

// Dense global position of one event in $all: 0, 1, 2, ... never a gap.
using GlobalPosition = NamedU64<struct GlobalPositionTag>;
// 0-based version of an event within its stream.
using StreamVersion = NamedU64<struct StreamVersionTag>;
// Sequence number of a segment file: 0, 1, 2, ... Stamped into every batch it holds.
using SegmentId = NamedU64<struct SegmentIdTag>;
// Byte offset inside one segment file.
using FileOffset = NamedU64<struct FileOffsetTag>;

// 16 bytes chosen by the client (a UUID); the key of idempotent retries.
struct EventId {
  std::array<uint8_t, 16> bytes{};
  auto operator<=>(const EventId&) const = default;
  bool IsNil() const;
  std::string ToString() const;  // 8-4-4-4-12 lowercase hex
  static std::optional<EventId> Parse(std::string_view text);
  static EventId Random();
};

struct EventIdHash {
  size_t operator()(const EventId& id) const noexcept;
};

// What the writer checks before it appends to a stream.
class ExpectedVersion {
 public:
  enum class Kind : uint8_t { kAny, kNoStream, kStreamExists, kExact };

  static constexpr ExpectedVersion Any() { return ExpectedVersion(Kind::kAny, StreamVersion()); }
  static constexpr ExpectedVersion NoStream() {
    return ExpectedVersion(Kind::kNoStream, StreamVersion());
  }
  static constexpr ExpectedVersion StreamExists() {
    return ExpectedVersion(Kind::kStreamExists, StreamVersion());
  }
  static constexpr ExpectedVersion Exact(StreamVersion v) { return ExpectedVersion(Kind::kExact, v); }

  Kind kind() const { return kind_; }
  StreamVersion version() const { return version_; }  // meaningful for kExact only
  std::string ToString() const;
  bool operator==(const ExpectedVersion&) const = default;

 private:
  constexpr ExpectedVersion(Kind k, StreamVersion v) : kind_(k), version_(v) {}
  Kind kind_;
  StreamVersion version_;
};

// Microseconds since the Unix epoch, assigned by the writer, never decreasing along the log.
using TimestampMicros = uint64_t;

}  // namespace esd::storage

template <typename Tag>
struct std::hash<esd::storage::NamedU64<Tag>> {
  size_t operator()(const esd::storage::NamedU64<Tag>& v) const noexcept {
    return std::hash<uint64_t>()(v.value);
  }
};
