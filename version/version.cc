#include "version/version.h"

#include "version/build_info.h"

namespace esd::version {

std::string_view Version() { return ESD_VERSION_STRING; }

std::string_view Commit() { return ESD_GIT_COMMIT; }

std::string VersionLine(std::string_view program) {
  return std::string(program) + " " + std::string(Version()) + " (git " + std::string(Commit()) + ")";
}

}  // namespace esd::version
