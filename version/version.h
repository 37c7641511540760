// What esd was built from: the CMake project version and the git commit (short hash, or
// "unknown" when built outside a git checkout). See version/CMakeLists.txt for how the
// commit stays current.
#pragma once

#include <string>
#include <string_view>

namespace esd::version {

std::string_view Version();  // "0.1.0"
std::string_view Commit();   // "abc1234" or "unknown"

// The line `PROGRAM --version` prints: "esd 0.1.0 (git abc1234)".
std::string VersionLine(std::string_view program);

}  // namespace esd::version
