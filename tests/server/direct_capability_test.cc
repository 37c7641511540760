// DirectCapability: over a real two-party RPC connection, calls of methods whose results hold
// no capability reach the server at once and answer as through capnp's own LocalClient;
// failures and cancellation behave the same; a method whose results hold a capability still
// supports pipelining.
#include "server/direct_capability.h"

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <memory>
#include <string>
#include <vector>

#include "protocol/esd.capnp.h"

namespace esd::server {
namespace {

struct Calls {
  std::vector<std::string> appended;  // stream names, in the order the server saw them
  bool cancelled_seen = false;         // the Subscription's cancel ran
  bool read_dropped = false;           // the readAll that never answers was dropped
};

class FakeSubscription final : public rpc::Subscription::Server {
 public:
  explicit FakeSubscription(Calls& calls) : calls_(calls) {}
  kj::Promise<void> cancel(CancelContext) override {
    calls_.cancelled_seen = true;
    return kj::READY_NOW;
  }

 private:
  Calls& calls_;
};

// Sets a flag when destroyed: attached to a promise, it tells that the promise was dropped.
struct DropFlag {
  explicit DropFlag(bool& flag) : flag(flag) {}
  ~DropFlag() { flag = true; }
  bool& flag;
};

class FakeStore final : public rpc::EventStore::Server {
 public:
  explicit FakeStore(Calls& calls) : calls_(calls) {}
  kj::Promise<void> append(AppendContext context) override {
    calls_.appended.emplace_back(context.getParams().getStream().cStr());
    context.getResults().initResult().initOk().setFirstPosition(calls_.appended.size() - 1);
    return kj::READY_NOW;
  }
  kj::Promise<void> streamInfo(StreamInfoContext) override { KJ_FAIL_REQUIRE("no info about that stream"); }
  kj::Promise<void> readAll(ReadAllContext context) override {
    context.allowCancellation();
    return kj::Promise<void>(kj::NEVER_DONE).attach(kj::heap<DropFlag>(calls_.read_dropped));
  }
  kj::Promise<void> subscribe(SubscribeContext context) override {
    context.getResults().setSubscription(kj::heap<FakeSubscription>(calls_));
    return kj::READY_NOW;
  }

 private:
  Calls& calls_;
};

// A server and a client on the two ends of an in-process pipe, one event loop.
struct Connection {
  Connection(Calls& calls, bool direct)
      : io(kj::setupAsyncIo()),
        pipe(io.provider->newTwoWayPipe()),
        server_network(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER),
        server(capnp::makeRpcServer(server_network, direct ? DirectCapability<rpc::EventStore>(kj::heap<FakeStore>(calls))
                                                           : rpc::EventStore::Client(kj::heap<FakeStore>(calls)))),
        client(*pipe.ends[1]),
        store(client.bootstrap().castAs<rpc::EventStore>()) {}

  kj::AsyncIoContext io;
  kj::TwoWayPipe pipe;
  capnp::TwoPartyVatNetwork server_network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> server;
  capnp::TwoPartyClient client;
  rpc::EventStore::Client store;
};

// Each test runs against a DirectCapability and, for comparison, capnp's own LocalClient:
// they must behave the same.
class DirectCapabilityTest : public ::testing::TestWithParam<bool> {
 protected:
  uint64_t Append(const std::string& stream) {
    auto request = store().appendRequest();
    request.setStream(stream);
    return request.send().wait(ws()).getResult().getOk().getFirstPosition();
  }
  rpc::EventStore::Client& store() { return c_->store; }
  kj::WaitScope& ws() { return c_->io.waitScope; }

  Calls calls_;
  std::unique_ptr<Connection> c_ = std::make_unique<Connection>(calls_, GetParam());  // by pointer: kj destructors may throw
};

TEST(MethodsWithoutCapabilities, OnlyMethodsWhoseResultsCanHoldNoCapabilityAreDirect) {
  const auto store = MethodsWithoutCapabilities(capnp::Schema::from<rpc::EventStore>());
  ASSERT_GT(store.size(), 4u);
  EXPECT_TRUE(store[0]) << "append answers an AppendResult";
  EXPECT_TRUE(store[2]) << "readAll answers events, records and a damage";
  EXPECT_FALSE(store[4]) << "subscribe answers a Subscription";
  const auto session = MethodsWithoutCapabilities(capnp::Schema::from<rpc::Session>());
  EXPECT_TRUE(session[0]) << "role";
  EXPECT_FALSE(session[1]) << "eventStore answers a capability";
}

TEST_P(DirectCapabilityTest, CallsReachTheServerInTheOrderSentAndTheirAnswersComeBack) {
  auto first = store().appendRequest();
  first.setStream("a");
  auto second = store().appendRequest();
  second.setStream("b");
  auto p1 = first.send();
  auto p2 = second.send();
  EXPECT_EQ(p1.wait(ws()).getResult().getOk().getFirstPosition(), 0u);
  EXPECT_EQ(p2.wait(ws()).getResult().getOk().getFirstPosition(), 1u);
  EXPECT_EQ(calls_.appended, (std::vector<std::string>{"a", "b"}));
}

TEST_P(DirectCapabilityTest, AnExceptionTheServerThrowsAtOnceReachesTheCaller) {
  auto request = store().streamInfoRequest();
  request.setStream("s");
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] { request.send().wait(ws()); })) {
    EXPECT_NE(std::string(e->getDescription().cStr()).find("no info about that stream"), std::string::npos)
        << e->getDescription().cStr();
  } else {
    ADD_FAILURE() << "streamInfo answered";
  }
  EXPECT_EQ(Append("after"), 0u) << "the connection keeps serving";
}

TEST_P(DirectCapabilityTest, ACallTheClientDropsIsDroppedOnTheServerWhenItAllowsCancellation) {
  {
    auto pending = store().readAllRequest().send();
    // Let it reach the server, then drop it: the client sends Finish.
    EXPECT_EQ(Append("barrier-1"), 0u);
    EXPECT_FALSE(calls_.read_dropped);
  }
  // Messages are handled in order: once this answer is back, the Finish was handled.
  EXPECT_EQ(Append("barrier-2"), 1u);
  EXPECT_TRUE(calls_.read_dropped);
}

TEST_P(DirectCapabilityTest, AMethodThatAnswersACapabilityStillTakesPipelinedCalls) {
  auto subscribed = store().subscribeRequest().send();
  // Called on the promised capability before the answer has come back.
  subscribed.getSubscription().cancelRequest().send().wait(ws());
  EXPECT_TRUE(calls_.cancelled_seen);
}

INSTANTIATE_TEST_SUITE_P(DirectAndLocal, DirectCapabilityTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Direct" : "LocalClient"; });

}  // namespace
}  // namespace esd::server
