// SocketStream: a TCP connection read once per arrival (TCP_INQ says when the socket is
// empty) or, for a large read, once its bytes are there (SO_RCVLOWAT), which still sees
// every byte, the end of the stream, and a peer that went.
#include "protocol/socket_stream.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace esd::transport {
namespace {

constexpr auto kPatience = 30 * kj::SECONDS;  // a read that never ends fails the test, not CI

// Both ends of a loopback TCP connection, each adopted as a SocketStream. By pointer: kj
// destructors may throw.
struct Connection {
  Connection() : io(kj::setupAsyncIo()) {
    auto& network = io.provider->getNetwork();
    auto listener = network.parseAddress("127.0.0.1:0").wait(io.waitScope)->listen();
    auto address = network.parseAddress("127.0.0.1", listener->getPort()).wait(io.waitScope);
    auto connecting = address->connect();
    server = AdoptTcpSocket(listener->accept().wait(io.waitScope), io.unixEventPort);
    client = AdoptTcpSocket(connecting.wait(io.waitScope), io.unixEventPort);
  }
  SocketStream& Server() { return kj::downcast<SocketStream>(*server); }

  template <typename T>
  T Wait(kj::Promise<T> promise) {
    return io.provider->getTimer().timeoutAfter(kPatience, kj::mv(promise)).wait(io.waitScope);
  }
  void Send(kj::AsyncIoStream& to, const std::string& bytes) { Wait(to.write(bytes.data(), bytes.size())); }
  std::string Receive(kj::AsyncIoStream& from, size_t min_bytes = 1, size_t max_bytes = 4096) {
    std::string bytes(max_bytes, '\0');
    bytes.resize(Wait(from.tryRead(bytes.data(), min_bytes, max_bytes)));
    return bytes;
  }

  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> server, client;
};

TEST(SocketStream, ARequestAtATimeIsReadOnceEach) {
  auto c = std::make_unique<Connection>();
  ASSERT_NE(dynamic_cast<SocketStream*>(c->server.get()), nullptr);
  ASSERT_NE(dynamic_cast<SocketStream*>(c->client.get()), nullptr);
  constexpr int kRounds = 200;
  for (int i = 0; i < kRounds; ++i) {
    // Each side waits for the other's bytes before they are sent, as a server waits for the
    // next request and a client for its answer.
    std::string request(64, '\0'), answer(64, '\0');
    auto served = c->server->tryRead(request.data(), 1, request.size());
    c->io.waitScope.poll();
    c->Send(*c->client, "request " + std::to_string(i));
    request.resize(c->Wait(kj::mv(served)));
    ASSERT_EQ(request, "request " + std::to_string(i));
    auto answered = c->client->tryRead(answer.data(), 1, answer.size());
    c->io.waitScope.poll();
    c->Send(*c->server, "answer " + std::to_string(i));
    answer.resize(c->Wait(kj::mv(answered)));
    ASSERT_EQ(answer, "answer " + std::to_string(i));
  }
  // kj's stream reads each socket once more per request and finds it empty (200 each here);
  // these read again only when a wake-up comes late, or for the first read.
  EXPECT_LE(c->Server().empty_reads(), 1u);
  EXPECT_LE(kj::downcast<SocketStream>(*c->client).empty_reads(), 1u);
}

TEST(SocketStream, BytesThatArriveWhileNobodyReadsAreReadLater) {
  auto c = std::make_unique<Connection>();
  c->Send(*c->client, "first");
  ASSERT_EQ(c->Receive(*c->server), "first");  // the socket is empty: the next edge is awaited
  c->Send(*c->client, "second");
  c->io.waitScope.poll();  // the edge comes while no read is waiting
  c->Send(*c->client, "third");
  c->io.waitScope.poll();
  EXPECT_EQ(c->Receive(*c->server), "secondthird");
}

TEST(SocketStream, AReadWaitsUntilItsMinimumHasArrived) {
  auto c = std::make_unique<Connection>();
  std::string bytes(100, '\0');
  c->Send(*c->client, "1234");
  auto read = c->server->tryRead(bytes.data(), 10, bytes.size());
  c->io.waitScope.poll();
  c->Send(*c->client, "567890");
  bytes.resize(c->Wait(kj::mv(read)));
  EXPECT_EQ(bytes, "1234567890");
}

TEST(SocketStream, TheEndOfTheStreamIsReadAfterTheLastBytes) {
  auto c = std::make_unique<Connection>();
  c->Send(*c->client, "a");
  ASSERT_EQ(c->Receive(*c->server), "a");  // empty after it: the next edge is awaited
  c->Send(*c->client, "last");
  c->client->shutdownWrite();  // the FIN arrives with, or right behind, the last bytes
  EXPECT_EQ(c->Receive(*c->server), "last");
  EXPECT_EQ(c->Receive(*c->server), "");
  EXPECT_EQ(c->Receive(*c->server), "");  // and stays ended
}

TEST(SocketStream, AWriteLargerThanTheSocketBuffersCompletesAsThePeerReads) {
  auto c = std::make_unique<Connection>();
  std::vector<std::string> parts = {std::string(3 << 20, 'a'), "", std::string(1, 'b'), std::string(5 << 20, 'c')};
  std::vector<kj::ArrayPtr<const kj::byte>> pieces;
  std::string all;
  for (auto& p : parts) {
    pieces.push_back(kj::arrayPtr(reinterpret_cast<const kj::byte*>(p.data()), p.size()));
    all += p;
  }
  auto written = c->server->write(kj::arrayPtr(pieces.data(), pieces.size())).then([&] { c->server->shutdownWrite(); });
  auto read = c->client->readAllText();
  c->Wait(kj::mv(written));
  EXPECT_TRUE(std::string(c->Wait(kj::mv(read)).cStr()) == all);
}

// A read waiting for many bytes (a subscription's push of up to 1 MiB) is woken once they
// are all there, not for each piece that arrives (SO_RCVLOWAT).
TEST(SocketStream, AReadOfManyBytesIsWokenWhenTheyHaveAllArrived) {
  auto c = std::make_unique<Connection>();
  constexpr size_t kPiece = 32 * 1024, kPieces = 16;
  std::string bytes(kPiece * kPieces, '\0');
  auto read = c->server->tryRead(bytes.data(), bytes.size(), bytes.size());
  std::string sent;
  for (size_t i = 0; i < kPieces; ++i) {
    const std::string piece(kPiece, static_cast<char>('a' + i));
    c->Send(*c->client, piece);
    sent += piece;
    c->io.waitScope.poll();  // a wake-up for this piece would be taken here
  }
  bytes.resize(c->Wait(kj::mv(read)));
  EXPECT_TRUE(bytes == sent);
  // The first read finds the socket empty; the second takes everything. kj's stream reads
  // once per piece (17 times here).
  EXPECT_LE(c->Server().reads(), 3u);
}

// The low-water mark of a large read must not hold back the small read after it: a read
// waits for no more than it needs.
TEST(SocketStream, AReadOfAFewBytesAfterALargeOneIsWokenByThem) {
  auto c = std::make_unique<Connection>();
  const std::string large(256 * 1024, 'x');
  std::string bytes(large.size(), '\0');
  auto read = c->server->tryRead(bytes.data(), bytes.size(), bytes.size());
  c->io.waitScope.poll();
  c->Send(*c->client, large);
  ASSERT_EQ(c->Wait(kj::mv(read)), large.size());
  auto small = c->server->tryRead(bytes.data(), 1, bytes.size());
  c->io.waitScope.poll();
  c->Send(*c->client, "small");
  bytes.resize(c->Wait(kj::mv(small)));
  EXPECT_EQ(bytes, "small");
}

TEST(SocketStream, AReadOfManyBytesEndsWithTheStream) {
  auto c = std::make_unique<Connection>();
  std::string bytes(512 * 1024, '\0');
  auto read = c->server->tryRead(bytes.data(), bytes.size(), bytes.size());
  c->io.waitScope.poll();
  c->Send(*c->client, std::string(100 * 1024, 'y'));
  c->io.waitScope.poll();
  c->client->shutdownWrite();
  bytes.resize(c->Wait(kj::mv(read)));  // fewer than asked for: the end of the stream came first
  EXPECT_EQ(bytes, std::string(100 * 1024, 'y'));
}

TEST(SocketStream, AWriteToAPeerThatWentFailsAsDisconnected) {
  auto c = std::make_unique<Connection>();
  c->client = nullptr;  // closed: the first write is answered with a reset, a later one fails
  kj::Maybe<kj::Exception> failure;
  for (int i = 0; i < 1000 && failure == nullptr; ++i) {
    failure = kj::runCatchingExceptions([&] { c->Wait(c->server->write("x", 1)); });
  }
  KJ_IF_MAYBE(e, failure) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << e->getDescription().cStr();
  } else {
    ADD_FAILURE() << "1000 writes to a closed peer all succeeded";
  }
  c->Wait(c->server->whenWriteDisconnected());  // resolves: the socket has seen the reset
}

TEST(SocketStream, WhatIsNoTcpSocketIsLeftAsItWas) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();  // no descriptor
  auto* end = pipe.ends[0].get();
  EXPECT_EQ(AdoptTcpSocket(kj::mv(pipe.ends[0]), io.unixEventPort).get(), end);

  auto unix_pipe = io.provider->newCapabilityPipe();  // a unix socket pair: a descriptor, no TCP
  auto* unix_end = unix_pipe.ends[0].get();
  ASSERT_TRUE(unix_end->getFd() != nullptr) << "the unix socket must have a descriptor, or this checks nothing new";
  EXPECT_EQ(AdoptTcpSocket(kj::mv(unix_pipe.ends[0]), io.unixEventPort).get(), unix_end);
}

int IntOption(kj::AsyncIoStream& stream, int level, int option) {
  int value = -1;
  kj::uint length = sizeof(value);
  stream.getsockopt(level, option, &value, &length);
  return value;
}

TEST(SocketStream, KeepAliveProbesAnIdleConnectionThreeTimesAThirdOfItsIdleTimeApart) {
  auto c = std::make_unique<Connection>();
  EXPECT_EQ(IntOption(*c->server, SOL_SOCKET, SO_KEEPALIVE), 0);  // the kernel's default: a silent peer is kept
  ASSERT_TRUE(SetKeepAlive(*c->server, 300));
  EXPECT_EQ(IntOption(*c->server, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(IntOption(*c->server, SOL_TCP, TCP_KEEPIDLE), 300);
  EXPECT_EQ(IntOption(*c->server, SOL_TCP, TCP_KEEPINTVL), 100);
  EXPECT_EQ(IntOption(*c->server, SOL_TCP, TCP_KEEPCNT), 3);
  // A live peer that keeps its window closed is not ended by a user timeout.
  EXPECT_EQ(IntOption(*c->server, SOL_TCP, TCP_USER_TIMEOUT), 0);
  ASSERT_TRUE(SetKeepAlive(*c->client, 1));  // a probe a second at least
  EXPECT_EQ(IntOption(*c->client, SOL_TCP, TCP_KEEPINTVL), 1);
  ASSERT_TRUE(SetKeepAlive(*c->client, 1'000'000));  // past Linux's bound: its bound
  EXPECT_EQ(IntOption(*c->client, SOL_TCP, TCP_KEEPIDLE), kMaxKeepAliveSeconds);

  // The connection carries bytes as before.
  c->Send(*c->client, "after");
  EXPECT_EQ(c->Receive(*c->server), "after");
}

TEST(SocketStream, KeepAliveLeavesWhatIsNoTcpSocketAlone) {
  auto c = std::make_unique<Connection>();
  auto pipe = c->io.provider->newTwoWayPipe();  // a unix socket pair
  EXPECT_FALSE(SetKeepAlive(*pipe.ends[0], 300));
  EXPECT_EQ(IntOption(*pipe.ends[0], SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_FALSE(SetKeepAlive(*c->server, 0));
  EXPECT_EQ(IntOption(*c->server, SOL_SOCKET, SO_KEEPALIVE), 0);
}

}  // namespace
}  // namespace esd::transport
