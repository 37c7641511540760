#include "storage/lifecycle.h"

#include <algorithm>
#include <cstring>

namespace esd::storage {

namespace {

constexpr uint32_t kRecordVersion = 1;
constexpr uint32_t kFlagMaxAge = 1u << 0;
constexpr uint32_t kFlagMaxCount = 1u << 1;
constexpr uint32_t kFlagHardDeleted = 1u << 2;
constexpr uint32_t kKnownFlags = kFlagMaxAge | kFlagMaxCount | kFlagHardDeleted;

template <typename T>
void Put(std::string& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof(v));
}

template <typename T>
T Get(std::string_view in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof(v));
  return v;
}

}  // namespace

std::string MetadataStreamOf(std::string_view stream) {
  std::string s(kMetadataStreamPrefix);
  s += stream;
  return s;
}

bool IsMetadataStream(std::string_view stream, std::string_view* target) {
  if (stream.size() <= kMetadataStreamPrefix.size() || !stream.starts_with(kMetadataStreamPrefix)) return false;
  if (target != nullptr) *target = stream.substr(kMetadataStreamPrefix.size());
  return true;
}

std::string EncodeStreamMetadata(const StreamMetadata& meta) {
  std::string out(kMetadataRecordHeaderSize + meta.custom.size(), '\0');
  uint32_t flags = 0;
  if (meta.max_age_micros) flags |= kFlagMaxAge;
  if (meta.max_count) flags |= kFlagMaxCount;
  if (meta.hard_deleted) flags |= kFlagHardDeleted;
  Put<uint32_t>(out, 0, kRecordVersion);
  Put<uint32_t>(out, 4, flags);
  Put<uint64_t>(out, 8, meta.max_age_micros.value_or(0));
  Put<uint64_t>(out, 16, meta.max_count.value_or(0));
  Put<uint64_t>(out, 24, meta.truncate_before.value);
  Put<uint32_t>(out, 32, static_cast<uint32_t>(meta.custom.size()));
  Put<uint32_t>(out, 36, 0);
  std::memcpy(out.data() + kMetadataRecordHeaderSize, meta.custom.data(), meta.custom.size());
  return out;
}

Result<StreamMetadata> DecodeStreamMetadata(std::string_view bytes) {
  if (bytes.size() < kMetadataRecordHeaderSize) {
    return Status::Corruption("stream metadata record of " + std::to_string(bytes.size()) + " bytes is too short");
  }
  if (const auto v = Get<uint32_t>(bytes, 0); v != kRecordVersion) {
    return Status::Corruption("stream metadata record version " + std::to_string(v) + " is not one this esd knows");
  }
  const auto flags = Get<uint32_t>(bytes, 4);
  const auto custom_size = Get<uint32_t>(bytes, 32);
  if ((flags & ~kKnownFlags) != 0 || Get<uint32_t>(bytes, 36) != 0 ||
      custom_size != bytes.size() - kMetadataRecordHeaderSize) {
    return Status::Corruption("stream metadata record has unknown flags or a wrong size");
  }
  StreamMetadata m;
  if ((flags & kFlagMaxAge) != 0) m.max_age_micros = Get<uint64_t>(bytes, 8);
  if ((flags & kFlagMaxCount) != 0) m.max_count = Get<uint64_t>(bytes, 16);
  m.truncate_before = StreamVersion(Get<uint64_t>(bytes, 24));
  m.hard_deleted = (flags & kFlagHardDeleted) != 0;
  m.custom.assign(bytes.substr(kMetadataRecordHeaderSize));
  return m;
}

StreamVersion FirstKeptVersion(const StreamMetadata& meta, StreamVersion last_version) {
  const StreamVersion end = last_version + 1;
  if (meta.hard_deleted) return end;
  StreamVersion first = std::min(meta.truncate_before, end);
  if (meta.max_count && *meta.max_count < end.value) first = std::max(first, StreamVersion(end.value - *meta.max_count));
  return first;
}

bool Expired(const StreamMetadata& meta, TimestampMicros timestamp, TimestampMicros now) {
  return meta.max_age_micros && now > timestamp && now - timestamp > *meta.max_age_micros;
}

Result<StreamMetadata> NextMetadata(const StreamMetadata& current, StreamMetadata next,
                                    std::optional<StreamVersion> last,
                                    std::optional<StreamVersion> expired_through) {
  if (next.max_count && *next.max_count == 0) {
    return Status::InvalidArgument("max count must be at least 1 (to remove every event, delete the stream)");
  }
  StreamVersion removed = current.truncate_before;
  if (last) removed = std::max(removed, FirstKeptVersion(current, *last));
  if (expired_through) removed = std::max(removed, *expired_through + 1);
  next.truncate_before = std::max(next.truncate_before, removed);
  next.hard_deleted = next.hard_deleted || current.hard_deleted;
  return next;
}

std::string DescribeMetadata(const StreamMetadata& meta) {
  std::string s;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += ' ';
    s += part;
  };
  if (meta.max_age_micros) add("max-age=" + std::to_string(*meta.max_age_micros / 1'000'000) + "s");
  if (meta.max_count) add("max-count=" + std::to_string(*meta.max_count));
  if (meta.truncate_before.value > 0) add("truncate-before=" + std::to_string(meta.truncate_before.value));
  if (meta.hard_deleted) add("hard-deleted");
  if (!meta.custom.empty()) add("custom=" + std::to_string(meta.custom.size()) + " bytes");
  return s.empty() ? "none" : s;
}

}  // namespace esd::storage
