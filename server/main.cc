// esd: the event store daemon. See server/daemon.h and `esd --help`.
#include <cstdio>
#include <string>
#include <vector>

#include "log/log.h"
#include "server/config.h"
#include "server/daemon.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string error;
  auto config = esd::server::ParseArgs(args, &error);
  if (!config) {
    // A usage error, before there is a log to write to (its format is one of the flags):
    // one plain line, as command-line tools say them.
    std::fprintf(stderr, "esd: %s\n", error.c_str());
    return 2;
  }
  if (config->help) {
    std::fputs(esd::server::Usage().c_str(), stdout);
    return 0;
  }
  esd::log::Init(config->log_level, config->log_format);
  return esd::server::RunDaemon(*config);
}
