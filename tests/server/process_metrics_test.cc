#include "server/process_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "storage/test_util.h"

namespace esd::server {
namespace {

// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
// cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss ...
constexpr char kStat[] =
    "4242 (esd (a) b) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 5 0 12345 104857600 2560 "
    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";

TEST(ProcStat, CpuMemoryAndStartTimeComeFromTheirFields) {
  const auto p = ParseProcStat(kStat, 100, 4096, 1'700'000'000);
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->cpu_seconds, 4.0) << "(250 + 150) ticks at 100 per second";
  EXPECT_DOUBLE_EQ(p->start_time_seconds, 1'700'000'000 + 123.45);
  EXPECT_DOUBLE_EQ(p->virtual_bytes, 104857600);
  EXPECT_DOUBLE_EQ(p->resident_bytes, 2560.0 * 4096);
}

TEST(ProcStat, TextThatIsNotAStatLineIsRefused) {
  EXPECT_FALSE(ParseProcStat("", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("4242 (esd) S 1 2 3", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("no parenthesis here", 100, 4096, 0).has_value());
  std::string garbled = kStat;
  garbled.replace(garbled.find("250"), 3, "abc");
  EXPECT_FALSE(ParseProcStat(garbled, 100, 4096, 0).has_value());
}

TEST(ProcessMetrics, ThisProcessHasEveryFamilyWithPlausibleValues) {
  MetricsText m;
  AddProcessMetrics(m);
  const std::string text = m.Take();
  for (const char* family : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                             "process_virtual_memory_bytes ", "process_start_time_seconds ", "process_open_fds ",
                             "process_max_fds "}) {
    EXPECT_NE(text.find(std::string("\n") + family), std::string::npos) << family << "\n" << text;
  }
  const size_t at = text.find("\nprocess_start_time_seconds ");
  ASSERT_NE(at, std::string::npos);
  const double started = std::stod(text.substr(at + 28));
  EXPECT_GT(started, 1'600'000'000) << "seconds since the epoch, not since boot";
}

TEST(FreeBytes, IsKnownForADirectoryAndNotForAMissingOne) {
  storage::testing::TempDir dir;
  const auto free = FreeBytes(dir.path());
  ASSERT_TRUE(free.has_value());
  EXPECT_GT(*free, 0u);
  EXPECT_FALSE(FreeBytes(dir.path() / "missing").has_value());
}

}  // namespace
}  // namespace esd::server
