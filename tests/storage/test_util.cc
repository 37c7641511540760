#include "test_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "storage/format.h"

namespace esd::storage::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/esd-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Options SmallOptions() {
  Options o;
  o.segment_size = 64 * 1024;
  o.max_event_size = 16 * 1024;
  // A quarter of a segment: the writer meets the edge of the zero-filled part, and spares
  // are made part-filled, as with the default sizes.
  o.fill_ahead = 16 * 1024;
  return o;
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

namespace {

uint64_t Seed(const std::string& stream, uint64_t version, uint64_t salt) {
  uint64_t h = 1469598103934665603ull;
  for (char c : stream) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return Mix(h ^ Mix(version + 0x9e3779b97f4a7c15ull) ^ Mix(salt * 31 + 7));
}

}  // namespace

std::string ExpectedData(const std::string& stream, uint64_t version, uint64_t salt,
                         size_t data_size) {
  std::string data(data_size, '\0');
  uint64_t x = Seed(stream, version, salt);
  for (size_t i = 0; i < data_size; ++i) {
    if (i % 8 == 0) x = Mix(x + i);
    data[i] = static_cast<char>('a' + (x >> ((i % 8) * 8)) % 26);
  }
  return data;
}

EventData MakeEvent(const std::string& stream, uint64_t version, uint64_t salt, size_t data_size) {
  EventData e;
  uint64_t a = Seed(stream, version, salt);
  uint64_t b = Mix(a ^ 0x5555);
  std::memcpy(e.id.bytes.data(), &a, 8);
  std::memcpy(e.id.bytes.data() + 8, &b, 8);
  e.type = "TestEvent";
  e.content_type = "application/octet-stream";
  e.metadata = "{\"v\":" + std::to_string(version) + "}";
  e.data = ExpectedData(stream, version, salt, data_size);
  return e;
}

std::vector<EventData> MakeEvents(const std::string& stream, uint64_t first_version, size_t count,
                                  uint64_t salt, size_t data_size) {
  std::vector<EventData> v;
  v.reserve(count);
  for (size_t i = 0; i < count; ++i) v.push_back(MakeEvent(stream, first_version + i, salt, data_size));
  return v;
}

std::multiset<std::string> ThreadNames(const std::string& pid) {
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + pid + "/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.insert(name);
  }
  return names;
}

std::vector<std::filesystem::path> SegmentFiles(const std::filesystem::path& data_dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir / "segments")) {
    if (entry.path().extension() == ".seg") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());  // names are zero-padded first positions
  return out;
}

void FlipByte(const std::filesystem::path& file, uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  if (!f) throw std::runtime_error("FlipByte failed on " + file.string());
}

void TruncateFile(const std::filesystem::path& file, uint64_t size) {
  std::filesystem::resize_file(file, size);
}

void ZeroRange(const std::filesystem::path& file, uint64_t offset, uint64_t length) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  std::string zeros(length, '\0');
  f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  if (!f) throw std::runtime_error("ZeroRange failed on " + file.string());
}

std::vector<uint8_t> ReadFileBytes(const std::filesystem::path& file) {
  std::ifstream f(file, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<uint64_t> BatchOffsets(const std::filesystem::path& segment_file) {
  std::vector<uint8_t> bytes = ReadFileBytes(segment_file);
  std::vector<uint64_t> offsets;
  uint64_t off = format::kSegmentHeaderSize;
  while (off + format::kBatchHeaderSize <= bytes.size()) {
    format::BatchHeader h;
    std::memcpy(&h, bytes.data() + off, sizeof(h));
    if (h.batch_size == 0 || off + h.batch_size > bytes.size()) break;
    offsets.push_back(off);
    off += h.batch_size;
  }
  return offsets;
}

std::optional<std::vector<EventView>> EventsOfRun(const Store::RecordRun& run) {
  std::vector<EventView> out;
  std::span<const uint8_t> left = run.records;
  for (uint32_t i = 0; i < run.count; ++i) {
    EventView e;
    uint32_t size = 0;
    if (!format::ParseEvent(left, &e, &size) || e.position != run.first + i || e.stream != run.stream) {
      return std::nullopt;
    }
    out.push_back(e);
    left = left.subspan(size);
  }
  if (!left.empty()) return std::nullopt;
  return out;
}

Status ForEachEventAsRecords(const Store& store, const std::function<void(const EventView&)>& visit) {
  ReadBuffer buffer;
  GlobalPosition from(0);
  Status bad_run;
  while (true) {  // a scan through a buffer stops once the buffer is full: go on from there
    GlobalPosition skipped = from;
    auto n = store.ReadAllRecords(from, SIZE_MAX, [&](const Store::RecordRun& run) -> uint32_t {
      const auto events = EventsOfRun(run);
      if (!events) {
        bad_run = Status::Corruption("the run at " + std::to_string(run.first.value) + " does not hold its " +
                                     std::to_string(run.count) + " events");
        return 0;  // stops the scan
      }
      for (const EventView& e : *events) visit(e);
      from = run.first + run.count;
      return run.count;
    }, buffer, &skipped);
    if (!bad_run.ok()) return bad_run;
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Ok();
    from = std::max(from, skipped);
  }
}

uint64_t AppendRawBatch(const std::filesystem::path& segment_file, const std::string& stream, uint64_t first_version) {
  const std::vector<uint8_t> bytes = ReadFileBytes(segment_file);
  const std::vector<uint64_t> offsets = BatchOffsets(segment_file);
  if (offsets.empty()) throw std::runtime_error("AppendRawBatch: " + segment_file.string() + " has no batch");
  format::BatchHeader last;
  std::memcpy(&last, bytes.data() + offsets.back(), sizeof(last));
  const uint64_t at = offsets.back() + last.batch_size;
  const EventData e = MakeEvent(stream, first_version);
  const format::EventFields fields[] = {{e.id, e.type, e.content_type, e.metadata, e.data}};
  std::vector<uint8_t> batch(format::kBatchHeaderSize + format::EventRecordSize(stream, fields[0]));
  format::EncodeBatch(batch, stream, fields,
                      {SegmentId(last.segment_id), GlobalPosition(last.first_position + last.event_count),
                       StreamVersion(first_version), last.timestamp_micros, FileOffset(at)});
  std::fstream f(segment_file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(reinterpret_cast<const char*>(batch.data()), static_cast<std::streamsize>(batch.size()));
  if (!f) throw std::runtime_error("AppendRawBatch: cannot write " + segment_file.string());
  return at;
}

}  // namespace esd::storage::testing
