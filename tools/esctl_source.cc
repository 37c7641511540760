#include "tools/esctl_source.h"

#include <algorithm>

#include "storage/store.h"
#include "storage/stream_page.h"
#include "tools/esctl_offline.h"

namespace esd::esctl {

namespace {

// Pages as the daemon's (storage/stream_page.h): the same pages, and memory bounded by one.
using storage::kPageBytes;
using storage::kPageEvents;
using storage::kPageScan;
using storage::PageBytes;

class Online final : public EventSource {
 public:
  explicit Online(std::unique_ptr<client::Client> c) : c_(std::move(c)) {}
  std::optional<std::vector<client::RecordedEvent>> ReadStream(const std::string& stream, uint64_t from,
                                                               uint32_t count, bool backward,
                                                               client::StreamPageEnd* end) override {
    return c_->ReadStream(stream, from, count, backward, end);
  }
  client::ReadAllResult ReadAll(uint64_t from, uint32_t count, const client::Filter& filter) override {
    return c_->ReadAll(from, count, filter);
  }

 private:
  std::unique_ptr<client::Client> c_;
};

client::RecordedEvent ToRecorded(const storage::EventView& e) {
  client::RecordedEvent r;
  r.stream = std::string(e.stream);
  r.version = e.version.value;
  r.position = e.position.value;
  r.id = e.id.bytes;
  r.type = std::string(e.type);
  r.content_type = std::string(e.content_type);
  r.timestamp_micros = e.timestamp;
  r.metadata = std::string(e.metadata);
  r.data = std::string(e.data);
  return r;
}

// A kCorruption in the client's terms, as the daemon would answer it.
client::Damage DamageOf(const storage::Status& s) {
  client::Damage d;
  d.reason = s.message();
  if (const auto& where = s.damage()) {
    d.file = where->file;
    d.offset = where->offset;
    d.position = where->position;
    const std::string place = where->ToString() + ": ";  // Status::Damaged's message starts with it
    if (d.reason.rfind(place, 0) == 0) d.reason.erase(0, place.size());
  }
  return d;
}

bool Matches(const client::Filter& f, const storage::EventView& e) {
  if (!f.stream_prefix.empty() && e.stream.substr(0, f.stream_prefix.size()) != f.stream_prefix) return false;
  return f.event_types.empty() || std::find(f.event_types.begin(), f.event_types.end(), e.type) != f.event_types.end();
}

class Offline final : public EventSource {
 public:
  explicit Offline(std::unique_ptr<storage::Store> store) : store_(std::move(store)) {}

  std::optional<std::vector<client::RecordedEvent>> ReadStream(const std::string& stream, uint64_t from,
                                                               uint32_t count, bool backward,
                                                               client::StreamPageEnd* end) override {
    auto page = storage::ReadStreamPage(*store_, stream, storage::StreamVersion(from), std::min(count, kPageEvents),
                                        backward ? storage::Direction::kBackward : storage::Direction::kForward,
                                        kPageBytes, PageBytes);
    client::StreamPageEnd ignored;
    if (end == nullptr) end = &ignored;  // as Client::ReadStream: the caller may not want it
    *end = {from, !page.ok()};
    if (!page.ok()) {
      if (page.status().code() == storage::Status::Code::kNotFound) return std::nullopt;
      if (page.status().code() == storage::Status::Code::kStreamDeleted) {
        end->stream_deleted = true;
        return std::nullopt;
      }
      if (page.status().IsDataLoss()) throw client::Error(DamageOf(page.status()));
      throw client::Error(client::Error::Kind::kRemote, "reading " + stream + " failed: " + page.status().ToString());
    }
    *end = {page->next.value, page->end};
    std::vector<client::RecordedEvent> out;
    out.reserve(page->events.size());
    for (const auto& e : page->events) out.push_back(ToRecorded(e));
    return out;
  }

  client::ReadAllResult ReadAll(uint64_t from, uint32_t count, const client::Filter& filter) override {
    client::ReadAllResult out;
    out.next_position = from;
    auto scanned = store_->ReadAll(storage::GlobalPosition(from), kPageScan, [&](const storage::EventView& e) {
      if (Matches(filter, e)) out.events.push_back(ToRecorded(e));
      out.next_position = e.position.value + 1;
      return out.events.size() < count;
    });
    if (!scanned.ok()) {
      if (!scanned.status().IsDataLoss()) {
        throw client::Error(client::Error::Kind::kRemote, "reading $all failed: " + scanned.status().ToString());
      }
      out.damage = DamageOf(scanned.status());  // after the events before it, as online
      return out;
    }
    out.end_of_log = out.next_position >= store_->DurablePosition().value;
    return out;
  }

 private:
  std::unique_ptr<storage::Store> store_;
};

}  // namespace

std::unique_ptr<EventSource> OnlineSource(std::unique_ptr<client::Client> client) {
  return std::make_unique<Online>(std::move(client));
}

std::unique_ptr<EventSource> OfflineSource(const std::filesystem::path& dir) {
  if (!RequireStore(dir)) return nullptr;
  auto store = OpenOffline(dir);
  if (!store) return nullptr;
  return std::make_unique<Offline>(std::move(store));
}

}  // namespace esd::esctl
