#include <cstdio>

#include "storage/file.h"
#include "tools/esctl.h"

int main(int argc, char** argv) {
  // The offline commands open the store, which keeps one descriptor per segment.
  (void)esd::storage::RaiseOpenFileLimit();
  const int code = esd::esctl::Main(argc, argv);
  if ((std::fflush(stdout) != 0 || std::ferror(stdout)) && code == 0) {
    std::perror("esctl: writing the output failed");  // e.g. a full disk behind a redirect
    return 1;
  }
  return code;
}
