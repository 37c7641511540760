// esd: the event store daemon. See server/daemon.h and `esd --help` (exit codes: ExitCode in
// server/config.h).
#include <cstdio>
#include <string>
#include <vector>

#include "log/log.h"
#include "server/config.h"
#include "server/daemon.h"
#include "version/version.h"

int main(int argc, char** argv) {
  using namespace esd::server;
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string error;
  auto config = ParseArgs(args, &error);
  if (!config) {
    // A usage error, before there is a log to write to (its format is one of the flags):
    // one plain line, as command-line tools say them.
    std::fprintf(stderr, "esd: %s\n", error.c_str());
    return kExitUsage;
  }
  if (config->help) {
    std::fputs(Usage().c_str(), stdout);
    return kExitOk;
  }
  if (config->version) {
    std::printf("%s\n", esd::version::VersionLine("esd").c_str());
    return kExitOk;
  }
  esd::log::Init(config->log_level, config->log_format);
  return RunDaemon(*config);
}
