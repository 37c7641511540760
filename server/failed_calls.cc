#include "server/failed_calls.h"

#include <string>

#include "log/log.h"

namespace esd::server {

void FailedCallLog::Failed(capnp::InterfaceSchema interface, uint16_t method, const kj::Exception& e) {
  if (e.getType() != kj::Exception::Type::FAILED) return;
  uint64_t n = 0;
  {
    std::lock_guard lock(mu_);
    auto& limit = limits_[method];
    if (!limit) limit = std::make_unique<BurstLog>(interval_);
    n = limit->Failed();
  }
  if (n == 0) return;
  const auto methods = interface.getMethods();
  const std::string name =
      method < methods.size() ? std::string(methods[method].getProto().getName().cStr()) : "method " + std::to_string(method);
  // getShortDisplayName: "Admin", not the schema file's path before it.
  const std::string call = std::string(interface.getShortDisplayName().cStr()) + "." + name;
  std::string line = call + " failed: " + e.getDescription().cStr();
  if (n > 1) line += " (" + std::to_string(n) + " such failures since the last such line; at most one a second)";
  log::Write(log::Level::kWarn, line, {{"call", call}, {"failures", n}});
}

}  // namespace esd::server
