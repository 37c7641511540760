// Where the daemon found damage in the log, on its log (log/log.h, level error): once per
// place, however many reads, subscriptions or projections run into it (every later read of
// a damaged batch gets the same typed refusal, and a log line each would flood). Any thread.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "storage/status.h"

namespace esd::server {

class DamageLog {
 public:
  DamageLog() = default;
  DamageLog(const DamageLog&) = delete;
  DamageLog& operator=(const DamageLog&) = delete;

  // `damage` is a kCorruption; `found_by` says who ran into it ("a read of $all", "the order
  // projection"). Logs "esd: damage found by FOUND_BY: FILE offset O (position P): WHAT"
  // the first time this place is reported; returns whether it did.
  bool Report(const storage::Status& damage, const std::string& found_by);

 private:
  std::mutex mu_;
  std::set<std::string> seen_;  // file and offset, or the message when it has no place
};

}  // namespace esd::server
