#include "tools/esctl_run.h"

#include <sstream>

namespace esd {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

Result RunEsctl(std::vector<std::string> args, const std::vector<std::string>& env) {
  return Esctl(std::move(args), env).Finish();
}

}  // namespace esd
