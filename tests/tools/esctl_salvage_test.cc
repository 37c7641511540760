// esctl --data-dir DIR salvage: the remedy esd names when it refuses a damaged store. Run as
// esd prints it, it moves the damage aside and esd then starts with every event before it.
#include <gtest/gtest.h>

#include <regex>

#include "server/esd_process.h"
#include "storage/store.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using storage::testing::BatchOffsets;
using storage::testing::SegmentFiles;

class EsctlSalvageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
    for (int i = 0; i < 40; ++i) {
      const std::string s = "sv-" + std::to_string(i % 3);
      ASSERT_TRUE(store->AppendSync(s, storage::ExpectedVersion::Any(),
                                    storage::testing::MakeEvents(s, i / 3, 1, 0, 100)).ok());
    }
  }
  storage::testing::TempDir dir_;
};

TEST_F(EsctlSalvageTest, TheCommandEsdNamesLetsItStartWithEveryEventBeforeTheDamage) {
  const auto seg = SegmentFiles(dir_.path()).back();
  const uint64_t bad = BatchOffsets(seg)[25];
  storage::testing::FlipByte(seg, bad + 100);

  std::string refusal;
  try {
    testing::EsdProcess esd(dir_.path());
    FAIL() << "esd started on a damaged store:\n" << esd.Output();
  } catch (const std::runtime_error& e) {
    refusal = e.what();
  }
  EXPECT_NE(refusal.find("offset " + std::to_string(bad)), std::string::npos) << refusal;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(refusal, m, std::regex("run 'esctl (salvage --data-dir [^']+)'"))) << refusal;
  std::vector<std::string> args;
  std::istringstream words(m[1].str());
  for (std::string w; words >> w;) args.push_back(w);
  ASSERT_EQ(args.size(), 3u) << m[1];
  EXPECT_EQ(args[2], dir_.path().string());

  std::vector<std::string> dry = args;
  dry.push_back("--dry-run");
  const Result preview = RunEsctl(dry);
  EXPECT_EQ(preview.code, 0) << preview.out << preview.err;
  EXPECT_NE(preview.out.find("would move"), std::string::npos) << preview.out;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "quarantine"));

  const Result r = RunEsctl(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("damage at segments/" + seg.filename().string() + " offset " + std::to_string(bad) +
                       " (position 25)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("the log now ends at position 25"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Nothing was deleted"), std::string::npos) << r.out;

  testing::EsdProcess esd(dir_.path());
  const Result all = RunEsctl({"--connect", esd.rpc_address(), "read-all", "--count", "1000"});
  EXPECT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(Lines(all.out).size(), 25u) << all.out;

  const Result again = RunEsctl(args);
  EXPECT_EQ(again.code, 1) << "esd holds the directory: " << again.out << again.err;
  EXPECT_NE(again.err.find("in use by another esd process"), std::string::npos) << again.err;
}

TEST_F(EsctlSalvageTest, AStoreWithoutDamageIsLeftAsItIs) {
  const Result r = RunEsctl({"--data-dir", dir_.path().string(), "salvage"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no damage found: the log ends cleanly at position 40"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "quarantine"));
}

TEST_F(EsctlSalvageTest, WithoutDataDirItSaysWhatItNeeds) {
  const Result r = RunEsctl({"salvage"});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--data-dir DIR"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace esd
