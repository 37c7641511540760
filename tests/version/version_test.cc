// The version line: the CMake project version and the commit the binary was built from.
#include "version/version.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <string>

namespace esd::version {
namespace {

// What git says HEAD is now, or "unknown" without git or outside a checkout.
std::string HeadCommit() {
  const std::string git = ESD_GIT;
  if (git.empty()) return "unknown";
  const std::string cmd = "'" + git + "' -C '" ESD_SOURCE_DIR "' rev-parse --short=7 HEAD 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "unknown";
  char buf[64] = {};
  std::string out = std::fgets(buf, sizeof(buf), p) != nullptr ? buf : "";
  if (::pclose(p) != 0 || out.empty()) return "unknown";
  out.erase(out.find_last_not_of('\n') + 1);
  return out;
}

TEST(Version, IsTheCMakeProjectVersion) { EXPECT_EQ(Version(), ESD_EXPECTED_VERSION); }

// The build step rewrites the commit on every build, so a test binary built at HEAD says HEAD.
TEST(Version, CommitIsTheCheckedOutHead) {
  EXPECT_EQ(Commit(), HeadCommit());
  EXPECT_TRUE(std::regex_match(std::string(Commit()), std::regex("[0-9a-f]{7,}|unknown"))) << Commit();
}

TEST(Version, LineNamesProgramVersionAndCommit) {
  EXPECT_EQ(VersionLine("esd"), "esd " ESD_EXPECTED_VERSION " (git " + std::string(Commit()) + ")");
}

}  // namespace
}  // namespace esd::version
