// LoggedCalls: a call that fails with an exception leaves a line naming the call and the
// reason; a call that ends because the client went away, or that succeeds, leaves none.
#include "server/failed_calls.h"

#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/debug.h>

#include <memory>
#include <sstream>
#include <string>

#include "log/log.h"
#include "protocol/esd.capnp.h"

namespace esd::server {
namespace {

// An Admin whose status call fails as its `failure` says, at once or later (in a promise).
class FailingAdmin final : public LoggedCalls<rpc::Admin> {
 public:
  enum class How { kThrowNow, kRejectLater, kDisconnected, kSucceed };
  explicit FailingAdmin(How how, RpcLatency* latency = nullptr) : LoggedCalls(latency), how_(how) {
    SetFailedCallInterval(std::chrono::hours(1));
  }
  kj::Promise<void> status(StatusContext context) override {
    switch (how_) {
      case How::kThrowNow: KJ_FAIL_REQUIRE("no status today");
      case How::kRejectLater:
        return kj::evalLater([] { kj::throwFatalException(KJ_EXCEPTION(FAILED, "the disk said no")); });
      case How::kDisconnected: kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the client left"));
      case How::kSucceed: context.getResults().initStatus().setVersion("v"); return kj::READY_NOW;
    }
    return kj::READY_NOW;
  }

 private:
  const How how_;
};

class FailedCallsTest : public ::testing::Test {
 protected:
  void SetUp() override { log::Init(log::Level::kInfo, log::Format::kText, out_); }
  void TearDown() override { log::Init(log::Level::kInfo, log::Format::kText); }
  // Calls status on `admin` (a fresh FailingAdmin by default); returns whether it failed.
  bool CallStatus(FailingAdmin::How how) {
    rpc::Admin::Client admin = kj::heap<FailingAdmin>(how);
    return CallStatus(admin);
  }
  bool CallStatus(rpc::Admin::Client& admin) {
    return kj::runCatchingExceptions([&] { admin.statusRequest().send().wait(*ws_); }) != nullptr;
  }
  // Held by pointer: their destructors may throw, a test fixture's may not.
  std::unique_ptr<kj::EventLoop> loop_ = std::make_unique<kj::EventLoop>();
  std::unique_ptr<kj::WaitScope> ws_ = std::make_unique<kj::WaitScope>(*loop_);
  std::ostringstream out_;
};

TEST_F(FailedCallsTest, AnExceptionThrownAtOnceIsLoggedWithTheCallsName) {
  EXPECT_TRUE(CallStatus(FailingAdmin::How::kThrowNow));
  EXPECT_NE(out_.str().find(" warn  esd: Admin.status failed: "), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("no status today"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("call=Admin.status"), std::string::npos) << out_.str();
}

TEST_F(FailedCallsTest, APromiseThatFailsLaterIsLoggedToo) {
  EXPECT_TRUE(CallStatus(FailingAdmin::How::kRejectLater));
  EXPECT_NE(out_.str().find("Admin.status failed: the disk said no"), std::string::npos) << out_.str();
}

TEST_F(FailedCallsTest, AClientThatLeftOrACallThatSucceedsLeavesNoLine) {
  EXPECT_TRUE(CallStatus(FailingAdmin::How::kDisconnected));
  EXPECT_FALSE(CallStatus(FailingAdmin::How::kSucceed));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(FailedCallsTest, RepeatedFailuresOfOneCallOnOneConnectionAreOneLineAPeriod) {
  rpc::Admin::Client admin = kj::heap<FailingAdmin>(FailingAdmin::How::kThrowNow);  // one line an hour
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(CallStatus(admin));
  size_t lines = 0;
  for (char c : out_.str()) lines += c == '\n';
  EXPECT_EQ(lines, 1u) << out_.str();
}

// The latency of every call of ours, answered or failed, is recorded when it settles.
uint64_t TimedStatusCalls(const RpcLatency& latency) {
  for (const auto& s : latency.Series()) {
    if (s.labels == MetricLabels{{"service", "Admin"}, {"method", "status"}}) return s.histogram.count;
  }
  return 0;
}

TEST_F(FailedCallsTest, EveryCallIsTimedWhenItSettlesWhetherItFailedOrNot) {
  RpcLatency latency;
  rpc::Admin::Client later = kj::heap<FailingAdmin>(FailingAdmin::How::kRejectLater, &latency);
  auto pending = later.statusRequest().send();
  EXPECT_EQ(TimedStatusCalls(latency), 0u) << "not while it runs";
  EXPECT_THROW(pending.wait(*ws_), kj::Exception);
  EXPECT_EQ(TimedStatusCalls(latency), 1u);
  EXPECT_NE(out_.str().find("Admin.status failed: the disk said no"), std::string::npos) << out_.str();
  for (auto how : {FailingAdmin::How::kThrowNow, FailingAdmin::How::kSucceed}) {
    rpc::Admin::Client admin = kj::heap<FailingAdmin>(how, &latency);
    CallStatus(admin);
  }
  EXPECT_EQ(TimedStatusCalls(latency), 3u);
}

}  // namespace
}  // namespace esd::server
