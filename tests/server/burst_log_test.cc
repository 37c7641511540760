#include "server/burst_log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace esd::server {
namespace {

using namespace std::chrono_literals;

// What the log wrote, from a memory stream.
struct CapturedLog {
  CapturedLog() : file(open_memstream(&buffer, &size)) {}
  ~CapturedLog() {
    std::fclose(file);
    std::free(buffer);
  }
  std::string Text() {
    std::fflush(file);
    return std::string(buffer, size);
  }
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* file;
};

TEST(BurstLog, TheFirstOfABurstIsWrittenAndTheRestAreCountedIntoTheNextLine) {
  CapturedLog out;
  BurstLog log(10s, out.file);
  const auto t0 = BurstLog::Clock::time_point{} + 1h;
  EXPECT_TRUE(log.Log("accept failed: EMFILE", t0));
  EXPECT_FALSE(log.Log("accept failed: EMFILE", t0 + 1s));
  EXPECT_FALSE(log.Log("accept failed: EMFILE", t0 + 9s));
  EXPECT_EQ(out.Text(), "esd: accept failed: EMFILE\n");
  EXPECT_TRUE(log.Log("accept failed: ENFILE", t0 + 10s));
  EXPECT_EQ(out.Text(),
            "esd: accept failed: EMFILE\n"
            "esd: accept failed: ENFILE (2 more like it since the last such line)\n");
  EXPECT_TRUE(log.Log("again", t0 + 30s));
  EXPECT_EQ(out.Text().substr(out.Text().rfind("esd:")), "esd: again\n") << "nothing was held back this time";
}

}  // namespace
}  // namespace esd::server
