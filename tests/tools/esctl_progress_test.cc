// esctl's progress display: the bar fits the terminal's width (injected here: no terminal is
// needed), and without a terminal it prints a line at every tenth.
#include "tools/esctl_progress.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace esd::esctl {
namespace {

// What `progress` wrote to a memory stream.
class Captured {
 public:
  Captured() : file_(open_memstream(&buf_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    std::free(buf_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

// The lines a terminal would show: split at '\r' and '\n', the clear-to-end-of-line removed.
std::vector<std::string> Redraws(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "\x1b[K") == 0) {
      i += 2;
    } else if (text[i] == '\r' || text[i] == '\n') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(text[i]);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

TEST(Progress, TheBarLineNeverReachesTheLastColumnAtAnyWidth) {
  for (int columns = 1; columns <= 300; ++columns) {
    const std::string line = Progress::BarLine("verify", 0.5, "123.4 MB/s", 12345, columns);
    EXPECT_LE(static_cast<int>(line.size()), columns - 1) << columns << ": " << line;
  }
}

TEST(Progress, AWideTerminalShowsTheBarAndANarrowOneOnlyTheFigures) {
  const std::string wide = Progress::BarLine("backup", 0.5, "10.0 MB/s", 3, 80);
  EXPECT_EQ(wide.rfind("backup [", 0), 0u) << wide;
  EXPECT_NE(wide.find("#"), std::string::npos) << wide;
  EXPECT_NE(wide.find(" 50%"), std::string::npos) << wide;
  EXPECT_NE(wide.find("ETA 3s"), std::string::npos) << wide;

  const std::string narrow = Progress::BarLine("backup", 0.5, "10.0 MB/s", 3, 40);
  EXPECT_EQ(narrow.find('['), std::string::npos) << narrow;
  EXPECT_EQ(narrow.rfind("backup:  50%", 0), 0u) << narrow;
}

TEST(Progress, TheBarIsFullAtTheEnd) {
  const std::string line = Progress::BarLine("replay", 1.0, "5 events/s", 0, 100);
  const size_t open = line.find('['), close = line.find(']');
  ASSERT_NE(open, std::string::npos);
  EXPECT_EQ(line.substr(open + 1, close - open - 1), std::string(close - open - 1, '#')) << line;
}

TEST(Progress, OnATerminalEveryRedrawFitsTheWidthAsItChanges) {
  Captured out;
  int columns = 120;
  Progress progress("verify", Progress::Unit::kBytes, out.file(), true, [&] { return columns; });
  progress(10, 100);
  columns = 30;  // the terminal was narrowed
  progress(50, 100);
  columns = 12;
  progress(100, 100);
  const std::string text = out.text();
  const std::vector<std::string> lines = Redraws(text);
  ASSERT_EQ(lines.size(), 3u) << text;
  EXPECT_LE(lines[0].size(), 119u);
  EXPECT_NE(lines[0].find('['), std::string::npos) << lines[0];
  EXPECT_LE(lines[1].size(), 29u) << lines[1];
  EXPECT_LE(lines[2].size(), 11u) << lines[2];
  EXPECT_EQ(text.back(), '\n') << "the finished bar is left on its own line";
}

TEST(Progress, WithoutATerminalItPrintsALineAtEveryTenthAndAtTheEnd) {
  Captured out;
  Progress progress("replay", Progress::Unit::kEvents, out.file(), false, [] { return 80; });
  for (uint64_t done = 0; done <= 1000; done += 50) progress(done, 1000);
  const std::vector<std::string> lines = Redraws(out.text());
  ASSERT_EQ(lines.size(), 10u) << out.text();
  EXPECT_EQ(lines.front().rfind("replay: 10% (100 events of 1000 events", 0), 0u) << lines.front();
  EXPECT_EQ(lines.back().rfind("replay: 100% (1000 events of 1000 events", 0), 0u) << lines.back();
}

TEST(Progress, FinishShowsTheEndOnceEvenWhenTheLastReportWasLost) {
  Captured out;
  Progress progress("backup", Progress::Unit::kBytes, out.file(), false, [] { return 80; });
  progress(5'000'000, 10'000'000);
  progress.Finish();
  progress.Finish();
  const std::vector<std::string> lines = Redraws(out.text());
  ASSERT_EQ(lines.size(), 2u) << out.text();
  EXPECT_EQ(lines[1].rfind("backup: 100% (5.0 MB of 5.0 MB", 0), 0u) << lines[1];
}

TEST(Progress, TheWidthComesFromColumnsWhenStderrIsNoTerminal) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);  // a pipe has no window size
  ::setenv("COLUMNS", "123", 1);
  EXPECT_EQ(TerminalColumns(fds[1]), 123);
  ::setenv("COLUMNS", "wide", 1);
  EXPECT_EQ(TerminalColumns(fds[1]), 80);
  ::unsetenv("COLUMNS");
  EXPECT_EQ(TerminalColumns(fds[1]), 80);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace esd::esctl
