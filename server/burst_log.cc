#include "server/burst_log.h"

namespace esd::server {

bool BurstLog::Log(const std::string& line, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (last_ && now - *last_ < interval_) {
    ++held_back_;
    return false;
  }
  if (held_back_ > 0) {
    std::fprintf(out_, "esd: %s (%llu more like it since the last such line)\n", line.c_str(),
                 static_cast<unsigned long long>(held_back_));
  } else {
    std::fprintf(out_, "esd: %s\n", line.c_str());
  }
  std::fflush(out_);
  last_ = now;
  held_back_ = 0;
  return true;
}

}  // namespace esd::server
