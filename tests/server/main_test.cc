// The esd binary's front door (server/main.cc): --version, --help, and the exit codes, one
// meaning each: 0 ok, 1 a failure at run time, 2 bad usage.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

struct EsdRun {
  int code = -1;
  std::string out;  // stdout and stderr
};

EsdRun RunEsd(const std::vector<std::string>& args) {
  std::string cmd = ESD_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  EsdRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) r.out.append(buf);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(EsdMain, VersionPrintsVersionAndCommitAndExitsZero) {
  const EsdRun r = RunEsd({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"(esd \d+\.\d+\.\d+ \(git ([0-9a-f]{7,}|unknown)\)\n)"))) << r.out;
}

// The running daemon says in /metrics what --version says.
TEST(EsdMain, MetricsNameTheSameBuildAsVersion) {
  std::smatch m;
  const std::string line = RunEsd({"--version"}).out;
  ASSERT_TRUE(std::regex_match(line, m, std::regex(R"(esd (\S+) \(git (\S+)\)\n)"))) << line;
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("# TYPE esd_build_info gauge\nesd_build_info{version=\"" + m[1].str() + "\",commit=\"" +
                         m[2].str() + "\"} 1\n"),
            std::string::npos)
      << metrics;
}

TEST(EsdMain, HelpListsTheExitCodes) {
  const EsdRun r = RunEsd({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("exit codes:\n  0  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  1  failure at run time"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  2  bad usage"), std::string::npos) << r.out;
}

TEST(EsdMain, EveryUsageErrorExitsTwoAndStartsNothing) {
  storage::testing::TempDir dir;
  const std::string data = (dir.path() / "data").string();
  const std::string conf = (dir.path() / "esd.conf").string();
  std::ofstream(conf) << "no-such-key = 1\n";
  const std::vector<std::vector<std::string>> bad = {
      {"--bogus"},                          // unknown flag
      {"--data-dir"},                       // missing value
      {"--fsync", "sometimes"},             // bad value
      {"--segment-size", "1000"},           // bad value (the store would refuse it)
      {"--max-event-size", "99999999"},     // bad value
      {"--log-level", "loud"},              // bad value
      {"--tls-cert", "c.pem"},              // conflicting flags
      {"--config", conf},                   // a bad line in the config file
      {"--config", conf + ".missing"},      // a config file that cannot be read
      {"--listen", "0.0.0.0:1"},            // non-loopback without --auth
  };
  for (auto args : bad) {
    args.insert(args.begin(), {"--data-dir", data});
    const EsdRun r = RunEsd(args);
    EXPECT_EQ(r.code, 2) << args.back() << ": " << r.out;
    EXPECT_EQ(r.out.rfind("esd: ", 0), 0u) << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(data)) << "a usage error creates no data directory";
}

TEST(EsdMain, AStoreThatCannotBeOpenedExitsOne) {
  storage::testing::TempDir dir;
  const auto file = dir.path() / "not-a-directory";
  std::ofstream(file) << "x";
  const EsdRun r = RunEsd({"--data-dir", file.string(), "--listen", "127.0.0.1:0", "--http", "off"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot open the store in " + file.string()), std::string::npos) << r.out;
}

}  // namespace
}  // namespace esd
