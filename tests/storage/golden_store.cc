#include "golden_store.h"

#include <xxhash.h>

#include <charconv>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

#include "storage/store.h"

namespace esd::storage::testing {

namespace {

void AddU64(XXH3_state_t* s, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  XXH3_64bits_update(s, b, sizeof b);
}

void AddBytes(XXH3_state_t* s, std::string_view bytes) {
  const auto n = static_cast<uint32_t>(bytes.size());
  uint8_t b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  XXH3_64bits_update(s, b, sizeof b);
  XXH3_64bits_update(s, bytes.data(), bytes.size());
}

void FreeState(XXH3_state_s* s) { XXH3_freeState(s); }

bool ParseU64(std::string_view text, uint64_t* out, int base = 10) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

// Splits off the first `n` space-separated words of `line`; the rest (after one space) goes
// to `rest`.
std::vector<std::string_view> Words(std::string_view line, size_t n, std::string_view* rest) {
  std::vector<std::string_view> words;
  while (words.size() < n) {
    const size_t space = line.find(' ');
    words.push_back(line.substr(0, space));
    if (space == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(space + 1);
  }
  if (rest != nullptr) *rest = line;
  return words;
}

}  // namespace

EventDigest::EventDigest() : state_(XXH3_createState(), &FreeState) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(state_.get());
}

EventDigest::~EventDigest() = default;

void EventDigest::Add(const format::EventView& e) {
  XXH3_state_t* s = state_.get();
  AddU64(s, e.position.value);
  AddU64(s, e.version.value);
  AddU64(s, e.timestamp);
  XXH3_64bits_update(s, e.id.bytes.data(), e.id.bytes.size());
  AddBytes(s, e.stream);
  AddBytes(s, e.type);
  AddBytes(s, e.content_type);
  AddBytes(s, e.metadata);
  AddBytes(s, e.data);
  ++count_;
}

uint64_t EventDigest::value() const { return XXH3_64bits_digest(state_.get()); }

Result<GoldenManifest> ComputeManifest(const Store& store) {
  EventDigest digest;
  std::map<std::string, GoldenStream, std::less<>> streams;
  std::string gap;
  for (;;) {
    const GlobalPosition from(digest.count());
    auto page = store.ReadAll(from, 1000, [&](const EventView& e) {
      if (e.position.value != digest.count()) {
        gap = "expected position " + std::to_string(digest.count()) + ", read " + std::to_string(e.position.value);
        return false;
      }
      digest.Add(e);
      auto it = streams.find(e.stream);
      if (it == streams.end()) it = streams.emplace(std::string(e.stream), GoldenStream{std::string(e.stream)}).first;
      ++it->second.events;
      it->second.last_version = e.version.value;
      return true;
    });
    if (!page.ok()) return page.status();
    if (!gap.empty()) return Status::Corruption(gap);
    if (page.value() == 0) break;
  }
  GoldenManifest m;
  m.events = digest.count();
  m.digest = digest.value();
  for (auto& [name, s] : streams) m.streams.push_back(std::move(s));
  return m;
}

std::string FormatManifest(const GoldenManifest& m, const std::string& comment) {
  std::ostringstream out;
  std::istringstream lines(comment);
  for (std::string line; std::getline(lines, line);) out << (line.empty() ? "#" : "# " + line) << '\n';
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(m.digest));
  out << "format-version " << m.format_version << '\n'
      << "events " << m.events << '\n'
      << "digest xxh3-64 " << hex << '\n';
  for (const auto& s : m.streams) out << "stream " << s.events << ' ' << s.last_version << ' ' << s.name << '\n';
  return out.str();
}

std::optional<GoldenManifest> ParseManifest(const std::string& text, std::string* error) {
  GoldenManifest m;
  bool have_version = false, have_events = false, have_digest = false;
  std::istringstream in(text);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      *error = "manifest line " + std::to_string(number) + ": " + why + ": " + line;
      return std::nullopt;
    };
    std::string_view rest;
    const auto key = Words(line, 1, &rest)[0];
    uint64_t a = 0, b = 0;
    if (key == "format-version") {
      if (!ParseU64(rest, &a) || a == 0 || a > UINT32_MAX) return bad("expected a version number");
      m.format_version = static_cast<uint32_t>(a);
      have_version = true;
    } else if (key == "events") {
      if (!ParseU64(rest, &m.events)) return bad("expected a count");
      have_events = true;
    } else if (key == "digest") {
      auto w = Words(rest, 2, nullptr);
      if (w.size() != 2 || w[0] != "xxh3-64" || w[1].size() != 16 || !ParseU64(w[1], &m.digest, 16)) {
        return bad("expected 'digest xxh3-64' and 16 hex digits");
      }
      have_digest = true;
    } else if (key == "stream") {
      std::string_view name;
      auto w = Words(rest, 2, &name);
      if (w.size() != 2 || !ParseU64(w[0], &a) || !ParseU64(w[1], &b) || name.empty()) {
        return bad("expected 'stream COUNT LAST_VERSION NAME'");
      }
      m.streams.push_back({std::string(name), a, b});
    } else if (key == "order") {
      std::string_view extra;
      auto w = Words(rest, 5, &extra);
      int64_t total = 0;
      bool total_ok = false;
      if (w.size() == 5) {
        auto [p, ec] = std::from_chars(w[3].data(), w[3].data() + w[3].size(), total);
        total_ok = ec == std::errc() && p == w[3].data() + w[3].size() && !w[3].empty();
      }
      if (!total_ok || !extra.empty() || !ParseU64(w[4], &a)) {
        return bad("expected 'order ID CUSTOMER STATUS TOTAL_CENTS LINES'");
      }
      m.orders.push_back({std::string(w[0]), std::string(w[1]), std::string(w[2]), total, a});
    } else {
      return bad("unknown key '" + std::string(key) + "'");
    }
  }
  if (!have_version || !have_events || !have_digest) {
    *error = "manifest lacks one of format-version, events, digest";
    return std::nullopt;
  }
  return m;
}

void CopyGoldenStore(const std::filesystem::path& from, const std::filesystem::path& dest) {
  if (!std::filesystem::is_directory(from / "segments")) {
    throw std::runtime_error(from.string() + " is not a golden store (no segments/ in it)");
  }
  std::filesystem::copy(from, dest, std::filesystem::copy_options::recursive);
}

}  // namespace esd::storage::testing
