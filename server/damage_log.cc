#include "server/damage_log.h"

namespace esd::server {

bool DamageLog::Report(const storage::Status& damage, const std::string& found_by) {
  const auto& where = damage.damage();
  std::string key = where ? where->file + "@" + std::to_string(where->offset) : damage.message();
  {
    std::lock_guard lock(mu_);
    if (!seen_.insert(std::move(key)).second) return false;
  }
  // The message of a placed corruption starts with its place (Status::Damaged).
  std::fprintf(out_, "esd: damage found by %s: %s\n", found_by.c_str(), damage.message().c_str());
  std::fflush(out_);
  return true;
}

}  // namespace esd::server
