// CoalescedWrites: the small writes of one event-loop turn reach the socket as one write, in
// order with the large ones; shutdownWrite and failures keep that order.
#include "client/coalesced_writes.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>

#include <memory>
#include <string>

namespace esd::client::internal {
namespace {

// Each end of a pipe, the writing one behind CoalescedWrites. By pointer: kj destructors may throw.
struct Pipe {
  Pipe() : io(kj::setupAsyncIo()) {
    auto pipe = io.provider->newTwoWayPipe();
    reader = kj::mv(pipe.ends[1]);
    writer = kj::heap<CoalescedWrites>(kj::mv(pipe.ends[0]));
  }
  // Everything the reader gets until the writer's end is shut down.
  std::string ReadToEnd() { return reader->readAllText().wait(io.waitScope).cStr(); }
  kj::Promise<void> Write(const std::string& s) { return writer->write(s.data(), s.size()); }

  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> reader;
  kj::Own<CoalescedWrites> writer;
};

TEST(CoalescedWrites, TheSmallWritesOfOneTurnGoOutAsOneWrite) {
  auto p = std::make_unique<Pipe>();
  // Nothing is written before the turn's queued work has run (as capnp's Finish and next call).
  auto finish = p->Write("finish;");
  auto call = p->Write("call;");
  EXPECT_EQ(p->writer->inner_writes(), 0u);
  p->io.waitScope.poll();  // runs the turn's queued work to its end
  EXPECT_EQ(p->writer->inner_writes(), 1u);
  finish.wait(p->io.waitScope);  // both were done as soon as they were copied
  call.wait(p->io.waitScope);
  p->writer->shutdownWrite();
  EXPECT_EQ(p->ReadToEnd(), "finish;call;");
  EXPECT_EQ(p->writer->inner_writes(), 1u);
}

TEST(CoalescedWrites, ALargeWriteGoesAfterWhatWasGatheredAndBeforeWhatFollows) {
  auto p = std::make_unique<Pipe>();
  const std::string large(CoalescedWrites::kSmallBytes + 1, 'L');
  (void)p->Write("a;");
  auto big = p->Write(large);
  (void)p->Write("b;");
  p->writer->shutdownWrite();
  auto all = p->reader->readAllText();
  big.wait(p->io.waitScope);
  EXPECT_EQ(std::string(all.wait(p->io.waitScope).cStr()), "a;" + large + "b;");
  EXPECT_EQ(p->writer->inner_writes(), 3u);
}

TEST(CoalescedWrites, PastTheGatheringLimitAWriteWaitsUntilWhatWasGatheredIsWritten) {
  auto p = std::make_unique<Pipe>();
  const std::string piece(CoalescedWrites::kSmallBytes, 'x');
  size_t written = 0;
  kj::Promise<void> last = kj::READY_NOW;
  while (written <= CoalescedWrites::kMaxGatheredBytes) {
    last = p->Write(piece);
    written += piece.size();
  }
  p->writer->shutdownWrite();
  auto all = p->reader->readAllText();
  last.wait(p->io.waitScope);
  EXPECT_EQ(p->writer->inner_writes(), 1u) << "the write that crossed the limit waited for one write of all";
  EXPECT_EQ(std::string(all.wait(p->io.waitScope).cStr()).size(), written);
}

// An inner stream whose writes fail.
class BrokenStream final : public kj::AsyncIoStream {
 public:
  kj::Promise<size_t> tryRead(void*, size_t, size_t) override { return kj::NEVER_DONE; }
  kj::Promise<void> write(const void*, size_t) override { return KJ_EXCEPTION(DISCONNECTED, "peer gone"); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>>) override {
    return KJ_EXCEPTION(DISCONNECTED, "peer gone");
  }
  kj::Promise<void> whenWriteDisconnected() override { return kj::NEVER_DONE; }
  void shutdownWrite() override {}
};

TEST(CoalescedWrites, AFailedWriteFailsTheWritesAfterIt) {
  auto io = kj::setupAsyncIo();
  auto writer = kj::heap<CoalescedWrites>(kj::heap<BrokenStream>());
  const std::string small = "s", large(CoalescedWrites::kSmallBytes + 1, 'L');
  writer->write(small.data(), small.size()).wait(io.waitScope);
  io.waitScope.poll();  // the gathered byte's write fails
  EXPECT_THROW(writer->write(large.data(), large.size()).wait(io.waitScope), kj::Exception);
}

}  // namespace
}  // namespace esd::client::internal
