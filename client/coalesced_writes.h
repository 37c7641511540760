// The client's stream below Cap'n Proto: gathers the small writes of one event-loop turn into
// one write.
//
// capnp 0.9.2 writes every RPC message with a writev of its own, and a busy client sends two
// per call: the Finish of the answer it just took and its next call. On loopback each writev
// also runs the receiver's side of TCP, so under W2 esbench made two per append (strace), and
// its CPU per append is as large as the daemon's on the same two cores. Here a small write
// (at most kSmallBytes) is copied and reported done at once; what gathered during the turn
// goes out in one write once the queue of events is empty (evalLast: capnp sends each message
// in a continuation of the last one's write, so an evalLater comes too early). Larger writes go
// through in order behind it, uncopied. A write that fails fails every later one (the
// connection is broken then anyway; capnp learns it from its reads too).
//
// Backpressure: once kMaxGatheredBytes wait behind a write in flight, the next small write's
// promise waits for the gathered bytes to be written.
#pragma once

#include <kj/async.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <cstddef>
#include <vector>

#include "protocol/transport.h"

namespace esd::client::internal {

class CoalescedWrites final : public transport::BufferedReads, private kj::TaskSet::ErrorHandler {
 public:
  static constexpr size_t kSmallBytes = 4096;
  static constexpr size_t kMaxGatheredBytes = 64 << 10;

  explicit CoalescedWrites(kj::Own<kj::AsyncIoStream> inner) : BufferedReads(kj::mv(inner)) {}

  kj::Promise<void> write(const void* buffer, size_t size) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  // After what was written before it.
  void shutdownWrite() override;

  uint64_t inner_writes() const { return inner_writes_; }  // for tests

 private:
  // Writes what was gathered, after every write before it.
  void Flush();
  // Runs `write` after every write before it; the promise is for this write alone.
  template <typename Write>
  kj::Promise<void> Chain(Write write) {
    auto done = chain_.then(kj::mv(write)).fork();
    chain_ = done.addBranch();
    return done.addBranch();
  }
  void taskFailed(kj::Exception&& e) override { (void)e; }  // the chain carries the error

  std::vector<kj::byte> gathered_;
  bool flush_armed_ = false;
  kj::Promise<void> chain_ = kj::READY_NOW;  // the last write's completion
  uint64_t inner_writes_ = 0;
  kj::TaskSet tasks_{*this};
};

}  // namespace esd::client::internal
