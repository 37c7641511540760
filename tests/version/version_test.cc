// The version line: the CMake project version and the commit the binary was built from.
#include "version/version.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <regex>
#include <string>

namespace esd::version {
namespace {

// The exit status of a git command in the source tree; -1 without git.
int Git(const std::string& args) {
  const std::string git = ESD_GIT;
  if (git.empty()) return -1;
  const int status = std::system(("'" + git + "' -C '" ESD_SOURCE_DIR "' " + args + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Version, IsTheCMakeProjectVersion) { EXPECT_EQ(Version(), ESD_EXPECTED_VERSION); }

// The build step reads the commit on every build: it is a commit of this repository (HEAD
// when nothing was committed since the build), or "unknown" only outside git.
TEST(Version, CommitIsACommitOfThisRepository) {
  const std::string commit(Commit());
  if (commit == "unknown") {
    EXPECT_NE(Git("rev-parse HEAD"), 0) << "git knows HEAD, yet the build says unknown";
    return;
  }
  EXPECT_TRUE(std::regex_match(commit, std::regex("[0-9a-f]{7,}"))) << commit;
  EXPECT_EQ(Git("cat-file -e " + commit + "^{commit}"), 0) << commit << " is no commit of " ESD_SOURCE_DIR;
  EXPECT_NE(Git("cat-file -e 0000000^{commit}"), 0) << "the check above can fail";
}

TEST(Version, LineNamesProgramVersionAndCommit) {
  EXPECT_EQ(VersionLine("esd"), "esd " ESD_EXPECTED_VERSION " (git " + std::string(Commit()) + ")");
}

}  // namespace
}  // namespace esd::version
