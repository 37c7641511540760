#include "server/damage_log.h"

#include "log/log.h"

namespace esd::server {

bool DamageLog::Report(const storage::Status& damage, const std::string& found_by) {
  const auto& where = damage.damage();
  std::string key = where ? where->file + "@" + std::to_string(where->offset) : damage.message();
  {
    std::lock_guard lock(mu_);
    if (!seen_.insert(std::move(key)).second) return false;
  }
  // The message of a placed corruption starts with its place (Status::Damaged).
  log::Error("damage found by {}: {}", found_by, damage.message());
  return true;
}

}  // namespace esd::server
