// Where `read` and `read-all` get their events: the daemon over RPC, or (with --data-dir)
// a stopped store's files, opened under its LOCK as esd would open them (recovery included:
// a torn, never-acknowledged tail is cut off). Both answer in the client's
// types, so the commands print the same lines either way.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"

namespace esd::esctl {

class EventSource {
 public:
  virtual ~EventSource() = default;
  // One page: nullopt when the stream has no event. `from` = UINT64_MAX with `backward`
  // starts at the end. `end` says where the next page starts and whether this one was the
  // last; a page may hold fewer than `count` events (16 MiB of them at most) and not be.
  // Damage is client::Error kDamaged, as the client library reports it.
  virtual std::optional<std::vector<client::RecordedEvent>> ReadStream(const std::string& stream, uint64_t from,
                                                                       uint32_t count, bool backward,
                                                                       client::StreamPageEnd* end) = 0;
  // Up to `count` matching events from `from`; may stop early (continue from next_position).
  // At damage: the events before it, and `damage`.
  virtual client::ReadAllResult ReadAll(uint64_t from, uint32_t count, const client::Filter& filter) = 0;
};

std::unique_ptr<EventSource> OnlineSource(std::unique_ptr<client::Client> client);
// nullptr after a message on stderr (no store there, or esd running on it).
std::unique_ptr<EventSource> OfflineSource(const std::filesystem::path& dir);

}  // namespace esd::esctl
