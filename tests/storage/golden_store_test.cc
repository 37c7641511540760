// The golden stores (tests/storage/golden/vN/, each made by make_golden_vN.sh with the esd of
// segment format version N): today's Store opens a copy of each, reads back every event
// exactly as it was written, verifies it clean and appends to it. Every version stays in
// the list at the end for as long as esd exists (docs/storage.md, "Format versions and the
// golden store").
#include "golden_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "storage/format.h"
#include "storage/store.h"
#include "storage/verify.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::CopyGoldenStore;
using testing::EventDigest;
using testing::GoldenManifest;
using testing::TempDir;

const std::filesystem::path kGoldenDir = ESD_GOLDEN_DIR;

GoldenManifest ReadManifest(const std::string& name) {
  std::ifstream in(kGoldenDir / name);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw std::runtime_error("cannot read " + (kGoldenDir / name).string());
  std::string error;
  auto m = testing::ParseManifest(text.str(), &error);
  if (!m) throw std::runtime_error(error);
  return *m;
}

// The options esd ran with when it wrote the store (make_golden_v1.sh).
Options GoldenOptions() {
  Options o = testing::SmallOptions();
  o.max_event_size = 32 * 1024;
  return o;
}

// One event, copied out of the mapping.
struct Event {
  uint64_t position = 0, version = 0, timestamp = 0;
  EventId id;
  std::string stream, type, content_type, metadata, data;
  bool operator==(const Event&) const = default;
};

Event Copy(const EventView& e) {
  return {e.position.value, e.version.value, e.timestamp, e.id,
          std::string(e.stream), std::string(e.type), std::string(e.content_type),
          std::string(e.metadata), std::string(e.data)};
}

std::string Describe(const VerifyReport& r) {
  std::string out;
  for (const auto& p : r.problems) out += p.file + " @" + std::to_string(p.offset) + ": " + p.what + "\n";
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  return out;
}

// The parameter is the folder's name, "v1", "v2", ...; its manifest is "<name>.manifest".
class GoldenStore : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    manifest_ = ReadManifest(GetParam() + ".manifest");
    CopyGoldenStore(kGoldenDir / GetParam(), data_);
  }

  // The stream with the most events (the first such by name).
  const testing::GoldenStream& LongestStream() const {
    return *std::max_element(manifest_.streams.begin(), manifest_.streams.end(),
                             [](const auto& a, const auto& b) { return a.events < b.events; });
  }

  // Every event of $all, in pages of 100 so that reads cross segments mid-page.
  static std::vector<Event> ReadAllEvents(const Store& store) {
    std::vector<Event> all;
    for (;;) {
      auto page = store.ReadAll(GlobalPosition(all.size()), 100);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok() || page.value().empty()) return all;
      for (const auto& e : page.value()) all.push_back(Copy(e));
    }
  }

  TempDir tmp_;
  const std::filesystem::path data_ = tmp_.path() / "data";
  GoldenManifest manifest_;
};

// The folder is what its manifest claims, so that the tests below cover sealed segments
// with index files, an active segment and snapshots of that format version.
TEST_P(GoldenStore, HoldsSealedAndActiveSegmentsOfItsFormatVersion) {
  // Not "v" + std::to_string(...): g++ 12's -Wrestrict false positive (GCC bug 105329).
  std::string folder = "v";
  folder += std::to_string(manifest_.format_version);
  EXPECT_EQ(folder, GetParam());
  int sealed = 0, active = 0;
  for (const auto& seg : testing::SegmentFiles(data_)) {
    const auto bytes = testing::ReadFileBytes(seg);
    ASSERT_GE(bytes.size(), format::kSegmentHeaderSize) << seg;
    format::SegmentHeader h;
    std::memcpy(&h, bytes.data(), sizeof h);
    EXPECT_EQ(h.magic, format::kSegmentMagic) << seg;
    EXPECT_EQ(h.format_version, manifest_.format_version) << seg;
    EXPECT_EQ(h.segment_size, 64u * 1024) << seg;
    auto idx = seg;
    idx.replace_extension(".idx");
    ++(std::filesystem::exists(idx) ? sealed : active);
  }
  EXPECT_GE(sealed, 3);
  EXPECT_EQ(active, 1);
  EXPECT_FALSE(std::filesystem::exists(data_ / "LOCK")) << "the golden store is checked in without its LOCK";
  EXPECT_TRUE(std::filesystem::exists(data_ / "snapshots" / "projections" / "orders.snap"));
  EXPECT_FALSE(std::filesystem::is_empty(data_ / "snapshots" / "orders"));
  EXPECT_GE(manifest_.events, 300u);
  EXPECT_GE(manifest_.streams.size(), 20u);
}

TEST_P(GoldenStore, StoreWrittenByThatFormatVersionOpensAndReadsBack) {
  auto opened = Store::Open(data_, GoldenOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = *opened.value();
  EXPECT_EQ(store.DurablePosition(), GlobalPosition(manifest_.events));
  EXPECT_EQ(store.StreamCount(), manifest_.streams.size());

  const auto all = ReadAllEvents(store);
  ASSERT_EQ(all.size(), manifest_.events);
  EventDigest digest;
  uint64_t last_timestamp = 0;
  for (const auto& e : all) {
    EXPECT_GE(e.timestamp, last_timestamp) << "at position " << e.position;
    last_timestamp = e.timestamp;
    digest.Add({GlobalPosition(e.position), StreamVersion(e.version), e.id, e.timestamp, e.stream, e.type,
                e.content_type, e.metadata, e.data});
  }
  EXPECT_EQ(digest.value(), manifest_.digest) << "an event of $all reads back other than it was written";

  auto computed = testing::ComputeManifest(store);
  ASSERT_TRUE(computed.ok()) << computed.status().ToString();
  EXPECT_EQ(computed.value().streams, manifest_.streams);
  EXPECT_EQ(computed.value().digest, manifest_.digest);
}

TEST_P(GoldenStore, EveryStreamReadsBackBothWaysAsInAll) {
  auto opened = Store::Open(data_, GoldenOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = *opened.value();
  const auto all = ReadAllEvents(store);
  ASSERT_EQ(all.size(), manifest_.events);
  std::map<std::string, std::vector<const Event*>> by_stream;
  for (const auto& e : all) by_stream[e.stream].push_back(&e);
  ASSERT_EQ(by_stream.size(), manifest_.streams.size());

  for (const auto& s : manifest_.streams) {
    SCOPED_TRACE(s.name);
    const auto& expected = by_stream[s.name];
    ASSERT_EQ(expected.size(), s.events);
    auto info = store.GetStreamInfo(s.name);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->last_version, StreamVersion(s.last_version));
    EXPECT_EQ(info->event_count, s.events);
    EXPECT_EQ(info->last_position, GlobalPosition(expected.back()->position));

    // Pages of 7 events, so that a read starts and stops inside batches and segments.
    std::vector<Event> forward;
    for (;;) {
      auto page = store.ReadStream(s.name, StreamVersion(forward.size()), 7);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      if (page.value().empty()) break;
      for (const auto& e : page.value()) forward.push_back(Copy(e));
    }
    ASSERT_EQ(forward.size(), expected.size());
    for (size_t i = 0; i < forward.size(); ++i) {
      EXPECT_EQ(forward[i].version, i);
      EXPECT_TRUE(forward[i] == *expected[i]) << "version " << i;
    }

    std::vector<Event> backward;
    uint64_t from = s.last_version;
    for (bool more = true; more;) {
      auto page = store.ReadStream(s.name, StreamVersion(from), 7, Direction::kBackward);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      ASSERT_FALSE(page.value().empty());
      for (const auto& e : page.value()) backward.push_back(Copy(e));
      more = backward.back().version > 0;
      from = backward.back().version - 1;
    }
    ASSERT_EQ(backward.size(), expected.size());
    for (size_t i = 0; i < backward.size(); ++i) {
      EXPECT_TRUE(backward[i] == *expected[expected.size() - 1 - i]) << "version " << backward[i].version;
    }
  }
}

TEST_P(GoldenStore, StoreWrittenByThatFormatVersionVerifiesClean) {
  auto report = VerifyStore(data_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report.value().ok()) << Describe(report.value());
  EXPECT_TRUE(report.value().notes.empty())
      << "open would repair something of an older version (an index file of that version that this esd does not "
         "read?): "
      << Describe(report.value());
  EXPECT_EQ(report.value().events, manifest_.events);
  EXPECT_EQ(report.value().index_files, report.value().segments - 1) << "every sealed segment's index is checked";
}

TEST_P(GoldenStore, AppendToAGoldenStreamContinuesItsVersionsAndSurvivesReopen) {
  const testing::GoldenStream& stream = LongestStream();
  ASSERT_GE(stream.last_version, 1u);
  std::vector<Event> golden;
  {
    auto opened = Store::Open(data_, GoldenOptions());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = *opened.value();
    golden = ReadAllEvents(store);

    // A retry of an event the golden store holds is recognised, not written again.
    auto first = store.ReadStream(stream.name, StreamVersion(0), 1);
    ASSERT_TRUE(first.ok() && first.value().size() == 1);
    const Event e0 = Copy(first.value()[0]);
    auto retry = store.AppendSync(stream.name, ExpectedVersion::NoStream(),
                                  {{e0.id, e0.type, e0.content_type, e0.metadata, e0.data}});
    ASSERT_TRUE(retry.ok()) << retry.status().ToString();
    EXPECT_TRUE(retry.value().already_written);
    EXPECT_EQ(retry.value().first_position, GlobalPosition(e0.position));

    auto stale = store.AppendSync(stream.name, ExpectedVersion::Exact(StreamVersion(stream.last_version - 1)),
                                  testing::MakeEvents(stream.name, stream.last_version + 1, 1));
    EXPECT_EQ(stale.status().code(), Status::Code::kWrongExpectedVersion);

    auto appended = store.AppendSync(stream.name, ExpectedVersion::Exact(StreamVersion(stream.last_version)),
                                     testing::MakeEvents(stream.name, stream.last_version + 1, 2));
    ASSERT_TRUE(appended.ok()) << appended.status().ToString();
    EXPECT_FALSE(appended.value().already_written);
    EXPECT_EQ(appended.value().first_version, StreamVersion(stream.last_version + 1));
    EXPECT_EQ(appended.value().first_position, GlobalPosition(manifest_.events));
    EXPECT_GE(appended.value().timestamp, golden.back().timestamp) << "commit times never go back";
    auto fresh = store.AppendSync("after-golden", ExpectedVersion::NoStream(), testing::MakeEvents("after-golden", 0, 3));
    ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
    EXPECT_EQ(fresh.value().first_position, GlobalPosition(manifest_.events + 2));
  }

  auto reopened = Store::Open(data_, GoldenOptions());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  const auto all = ReadAllEvents(*reopened.value());
  ASSERT_EQ(all.size(), manifest_.events + 5);
  EventDigest digest;
  for (size_t i = 0; i < manifest_.events; ++i) {
    const Event& e = all[i];
    EXPECT_TRUE(e == golden[i]) << "position " << i;
    digest.Add({GlobalPosition(e.position), StreamVersion(e.version), e.id, e.timestamp, e.stream, e.type,
                e.content_type, e.metadata, e.data});
  }
  EXPECT_EQ(digest.value(), manifest_.digest);
  auto tail = reopened.value()->ReadStream(stream.name, StreamVersion(stream.last_version + 1), 10);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  ASSERT_EQ(tail.value().size(), 2u);
  EXPECT_EQ(tail.value()[1].version, StreamVersion(stream.last_version + 2));
  EXPECT_EQ(std::string(tail.value()[0].data), testing::ExpectedData(stream.name, stream.last_version + 1, 0, 40));
  EXPECT_EQ(reopened.value()->GetStreamInfo("after-golden")->event_count, 3u);
  reopened.value().reset();

  auto report = VerifyStore(data_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report.value().ok()) << Describe(report.value());
  EXPECT_EQ(report.value().events, manifest_.events + 5);
}

// The manifest's own reader: a damaged manifest must not pass for an empty one.
TEST(GoldenManifest, AManifestLineItDoesNotKnowIsRefusedWithItsNumber) {
  std::string error;
  EXPECT_FALSE(testing::ParseManifest("format-version 1\nevents 3\ndigest xxh3-64 00000000000000ff\nstreem 1 0 a\n",
                                      &error));
  EXPECT_NE(error.find("line 4"), std::string::npos) << error;
  EXPECT_FALSE(testing::ParseManifest("format-version 1\nevents 3\n", &error));
  EXPECT_NE(error.find("digest"), std::string::npos) << error;
  auto m = testing::ParseManifest(
      "# c\nformat-version 1\nevents 3\ndigest xxh3-64 00000000000000ff\nstream 2 1 a b\norder o-1 al open -5 0\n",
      &error);
  ASSERT_TRUE(m.has_value()) << error;
  EXPECT_EQ(m->digest, 0xffu);
  ASSERT_EQ(m->streams.size(), 1u);
  EXPECT_EQ(m->streams[0].name, "a b");
  ASSERT_EQ(m->orders.size(), 1u);
  EXPECT_EQ(m->orders[0].total_cents, -5);
}

// Runs the generator with `args`; its exit code, and stdout and stderr together in `*output`.
int RunGenerator(const std::string& args, std::string* output) {
  TempDir tmp;
  const auto log = tmp.path() / "out.txt";
  const std::string command =
      "bash '" + (kGoldenDir / "make_golden_v1.sh").string() + "' " + args + " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  *output = text.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(GoldenGenerator, RefusesToOverwriteTheFrozenStoreAndSaysHowToMakeItAgain) {
  const auto before = testing::ReadFileBytes(kGoldenDir / "v1.manifest");
  std::string output;
  EXPECT_EQ(RunGenerator("", &output), 2) << output;
  EXPECT_NE(output.find("the golden store of format version 1 is frozen"), std::string::npos) << output;
  EXPECT_NE(output.find("git rm -r " + (kGoldenDir / "v1").string() + " " + (kGoldenDir / "v1.manifest").string()),
            std::string::npos)
      << output;
  EXPECT_EQ(testing::ReadFileBytes(kGoldenDir / "v1.manifest"), before);
}

TEST(GoldenGenerator, NamesTheBuildCommandWhenABinaryIsMissing) {
  TempDir tmp;
  std::string output;
  const std::string build = (tmp.path() / "no-build").string();
  EXPECT_EQ(RunGenerator("'" + build + "' '" + tmp.path().string() + "'", &output), 1) << output;
  EXPECT_NE(output.find("build it first (ninja -C " + build + " esd esctl esbench storage_golden_manifest)"),
            std::string::npos)
      << output;
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "v1")) << "nothing was written";
}

// Every golden store ever made: a new format version adds its folder here, none leaves.
INSTANTIATE_TEST_SUITE_P(FormatVersion, GoldenStore, ::testing::Values("v1"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace esd::storage
