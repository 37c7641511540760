// esctl stream delete | truncate | meta, against a real esd.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using client::Expected;
using client::NewEvent;

class EsctlStream : public ::testing::Test {
 protected:
  void SetUp() override {
    esd_ = std::make_unique<testing::EsdProcess>(dir_.path() / "data");
    c_ = client::Client::Connect(esd_->rpc_address());
  }
  void AppendN(const std::string& stream, int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(c_->Append(stream, Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  }
  Result Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--connect", esd_->rpc_address()});
    return RunEsctl(args);
  }
  std::vector<uint64_t> Versions(const std::string& stream) {
    std::vector<uint64_t> out;
    if (auto events = c_->ReadStream(stream, 0, 100)) {
      for (const auto& e : *events) out.push_back(e.version);
    }
    return out;
  }

  storage::testing::TempDir dir_;
  std::unique_ptr<testing::EsdProcess> esd_;
  std::unique_ptr<client::Client> c_;
};

TEST_F(EsctlStream, DeleteMakesTheStreamReadAsNotFoundAndAnAppendRecreatesItFromTheNextVersion) {
  AppendN("cart", 2);
  Result r = Ctl({"stream", "delete", "cart"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "deleted stream 'cart' (position 2): it reads as not found; an append recreates it from version 2; "
                   "`esctl scavenge start` frees its disk space\n");
  r = Ctl({"read", "cart"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("stream 'cart' has no events"), std::string::npos) << r.err;
  r = Ctl({"append", "cart", "--type", "E", "--data", "{}", "--expected-version", "no-stream"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Versions("cart"), std::vector<uint64_t>{2});
}

TEST_F(EsctlStream, AHardDeleteIsForGoodAndEveryLaterChangeSaysSo) {
  AppendN("gone", 1);
  Result r = Ctl({"--json", "stream", "delete", "gone", "--hard"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"result\":\"deleted\",\"stream\":\"gone\",\"hard\":true,\"position\":1,\"metadataVersion\":0}\n");
  AppendN("gone-too", 1);
  r = Ctl({"stream", "delete", "gone-too", "--hard"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hard-deleted stream 'gone-too' (position 3): it can never be written or read again; `esctl "
                   "scavenge start` frees its disk space\n");

  r = Ctl({"stream", "delete", "gone", "--hard"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot delete stream 'gone': it was hard-deleted, and can never be written, read or changed "
                       "again; nothing was written"),
            std::string::npos)
      << r.err;
  r = Ctl({"stream", "truncate", "gone", "--before", "1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot truncate stream 'gone': it was hard-deleted"), std::string::npos) << r.err;
  r = Ctl({"stream", "meta", "gone", "--max-count", "1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot set the metadata of stream 'gone': it was hard-deleted"), std::string::npos) << r.err;
  r = Ctl({"append", "gone", "--type", "E", "--data", "{}"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("append rejected: stream 'gone' was hard-deleted (esctl stream delete --hard) and can never be "
                       "written again; nothing was written"),
            std::string::npos)
      << r.err;
  r = Ctl({"read", "gone"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("stream 'gone' was hard-deleted: it is never read or written again"), std::string::npos)
      << r.err;
  r = Ctl({"stream", "meta", "gone"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("hard-deleted     yes\n"), std::string::npos) << r.out;
}

TEST_F(EsctlStream, DeletingAnUnknownStreamOrWithAWrongExpectedVersionChangesNothing) {
  AppendN("s", 2);
  Result r = Ctl({"stream", "delete", "nope"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot delete stream 'nope': it has no events (never written, or deleted already); nothing "
                       "was written. `esctl streams` lists the streams"),
            std::string::npos)
      << r.err;
  r = Ctl({"stream", "delete", "s", "--expected-version", "0"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("wrong expected version: stream 's' is at version 1 (expected 0); nothing was written. See it "
                       "with `esctl read s`, then retry with --expected-version 1"),
            std::string::npos)
      << r.err;
  r = Ctl({"stream", "delete", "s", "--expected-version", "soon"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--expected-version: expected any, no-stream, stream-exists or a version number, got 'soon'"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Versions("s"), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(c_->ReadAll(0, 100).events.size(), 2u) << "nothing was written";
}

TEST_F(EsctlStream, TruncateRemovesTheVersionsBelowAndRefusesToGoPastTheEnd) {
  AppendN("t", 5);
  Result r = Ctl({"stream", "truncate", "t", "--before", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "truncated stream 't': versions below 3 are removed (position 5)\n");
  EXPECT_EQ(Versions("t"), (std::vector<uint64_t>{3, 4}));

  r = Ctl({"stream", "truncate", "t", "--before", "9"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot truncate stream 't' (invalid-argument): "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(the stream's last version is 4: --before is at most 5, which removes every event)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Versions("t"), (std::vector<uint64_t>{3, 4}));

  r = Ctl({"stream", "truncate", "t"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("stream truncate: --before VERSION is required"), std::string::npos) << r.err;
  r = Ctl({"stream", "truncate", "nope", "--before", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot truncate stream 'nope': it has no events"), std::string::npos) << r.err;
}

TEST_F(EsctlStream, MetaShowsTheDefaultsThenSetsKeepsWhatIsNotGivenAndShowsItBack) {
  AppendN("m", 5);
  Result r = Ctl({"stream", "meta", "m"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "stream           m\n"
            "max-age          none\n"
            "max-count        none\n"
            "truncate-before  0\n"
            "hard-deleted     no\n"
            "custom           none\n"
            "metadata version none (never written)\n"
            "events           versions 0..4 readable\n");

  r = Ctl({"stream", "meta", "m", "--max-age", "2h", "--max-count", "3", "--custom", "{\"owner\": \"team-a\"}"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("set the metadata of stream 'm' (metadata version 0, position 5)\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("max-age          2h\nmax-count        3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("custom           {\"owner\":\"team-a\"}\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("events           versions 2..4 readable\n"), std::string::npos) << "max-count in reads: " << r.out;
  EXPECT_EQ(Versions("m"), (std::vector<uint64_t>{2, 3, 4}));

  r = Ctl({"--json", "stream", "meta", "m", "--max-count", "none"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"stream\":\"m\",\"maxAgeMicros\":7200000000,\"maxAge\":\"2h\",\"maxCount\":null,\"truncateBefore\":2,"
            "\"hardDeleted\":false,\"custom\":{\"owner\":\"team-a\"},\"metadataVersion\":1,\"lastVersion\":4,"
            "\"firstKept\":2}\n")
      << "what max-count removed stays removed";
  EXPECT_EQ(Versions("m"), (std::vector<uint64_t>{2, 3, 4}));
}

TEST_F(EsctlStream, MetaRefusesBadValuesNamingTheFlagAndSendsNothing) {
  AppendN("m", 1);
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--max-count", "0"}, "--max-count: expected a count of events, 1 or more, got '0' (--max-count none removes the limit)"},
      {{"--max-count", "-3"}, "--max-count: expected a count of events, 1 or more, got '-3'"},
      {{"--max-count", "many"}, "--max-count: expected a count of events, 1 or more, got 'many'"},
      {{"--max-age", "30"}, "--max-age: expected a duration such as 500ms, 30s, 15m, 2h or 7d (a whole number, 1 or "
                            "more, and one unit), or none, got '30'"},
      {{"--max-age", "-5s"}, "--max-age: expected a duration such as 500ms"},
      {{"--max-age", "1.5h"}, "--max-age: expected a duration such as 500ms"},
      {{"--custom", "{owner: a}"}, "--custom: not valid JSON; quote it for the shell, e.g. --custom '{\"owner\":\"team-a\"}'"},
      {{"--expected-version", "0"}, "stream meta: --expected-version goes with a change (--max-age, --max-count or "
                                    "--custom)"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"stream", "meta", "m"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    const Result r = Ctl(args);
    EXPECT_EQ(r.code, 2) << c.flags[0] << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_EQ(c_->GetStreamMetadata("m").metadata_version, std::nullopt) << "nothing was written";
}

TEST_F(EsctlStream, MetaWithAStaleExpectedVersionIsRefusedAndSaysHowToSeeIt) {
  AppendN("m", 1);
  ASSERT_EQ(Ctl({"stream", "meta", "m", "--max-count", "5"}).code, 0);
  const Result r = Ctl({"stream", "meta", "m", "--max-count", "2", "--expected-version", "no-stream"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("wrong expected version: the metadata of stream 'm' is at version 0 (expected no-stream); "
                       "nothing was written. See it with `esctl stream meta m`, then retry with --expected-version 0"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(c_->GetStreamMetadata("m").metadata.max_count, 5u);
  EXPECT_EQ(Ctl({"stream", "meta", "m", "--max-count", "2", "--expected-version", "0"}).code, 0);
  EXPECT_EQ(c_->GetStreamMetadata("m").metadata.max_count, 2u);
}

TEST_F(EsctlStream, TheStreamGroupNamesItsCommandsAndStreamsStillLists) {
  Result r = Ctl({"stream"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("stream: missing the command; one of: delete, truncate, meta"), std::string::npos) << r.err;
  r = Ctl({"stream", "purge", "s"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown command 'stream purge'; one of: delete, truncate, meta"), std::string::npos) << r.err;
  r = Ctl({"stream", "delete", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("usage: esctl stream delete STREAM [--hard] [--expected-version V]", 0), 0u) << r.out;
  AppendN("listed", 1);
  r = Ctl({"streams"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("listed ", 0), 0u) << r.out;
}

TEST(EsctlStreamRoles, AReaderTokenMayNotDeleteAndIsToldWhichRoleMay) {
  storage::testing::TempDir dir;
  const auto tokens = dir.path() / "tokens";
  std::ofstream(tokens) << "r-token reader\nw-token writer\n";
  testing::EsdProcess esd(dir.path() / "data", {"--auth", tokens.string()});
  auto writer = client::Client::Connect(esd.rpc_address(), "w-token");
  ASSERT_TRUE(writer->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  for (const std::vector<std::string>& cmd : {std::vector<std::string>{"stream", "delete", "s"},
                                              {"stream", "truncate", "s", "--before", "1"},
                                              {"stream", "meta", "s", "--max-count", "1"}}) {
    std::vector<std::string> args = {"--connect", esd.rpc_address(), "--token", "r-token"};
    args.insert(args.end(), cmd.begin(), cmd.end());
    const Result r = RunEsctl(args);
    EXPECT_EQ(r.code, 1) << cmd[1] << ": " << r.err;
    EXPECT_NE(r.err.find("(permission-denied): role reader may not"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Deleting, truncating and changing metadata need a token with the writer role; pass one "
                         "with --token or $ESD_TOKEN."),
              std::string::npos)
        << r.err;
  }
  const Result show = RunEsctl({"--connect", esd.rpc_address(), "--token", "r-token", "stream", "meta", "s"});
  EXPECT_EQ(show.code, 0) << "showing is a read: " << show.err;
  EXPECT_EQ(writer->ReadStream("s", 0, 10)->size(), 1u) << "nothing changed";
}

}  // namespace
}  // namespace esd
