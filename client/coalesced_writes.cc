#include "client/coalesced_writes.h"

#include <utility>

namespace esd::client::internal {

kj::Promise<void> CoalescedWrites::write(const void* buffer, size_t size) {
  if (size > kSmallBytes) {
    Flush();
    return Chain([this, buffer, size] {
      ++inner_writes_;
      return inner_.write(buffer, size);
    });
  }
  const kj::ArrayPtr<const kj::byte> piece(static_cast<const kj::byte*>(buffer), size);
  return write(kj::arrayPtr(&piece, 1));  // small: copied before it returns
}

kj::Promise<void> CoalescedWrites::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  size_t size = 0;
  for (const auto& p : pieces) size += p.size();
  if (size > kSmallBytes) {
    Flush();  // what was gathered goes first
    // The pieces stay valid until the promise returned here resolves (the caller's promise).
    return Chain([this, pieces] {
      ++inner_writes_;
      return inner_.write(pieces);
    });
  }
  for (const auto& p : pieces) gathered_.insert(gathered_.end(), p.begin(), p.end());
  if (gathered_.size() > kMaxGatheredBytes) {
    Flush();
    return Chain([] {});  // done once everything gathered so far is written
  }
  if (!flush_armed_) {
    flush_armed_ = true;
    tasks_.add(kj::evalLast([this] { Flush(); }));
  }
  return kj::READY_NOW;
}

void CoalescedWrites::Flush() {
  flush_armed_ = false;
  if (gathered_.empty()) return;
  auto bytes = kj::heap<std::vector<kj::byte>>(std::move(gathered_));
  gathered_.clear();
  tasks_.add(Chain([this, bytes = kj::mv(bytes)]() mutable {
    ++inner_writes_;
    auto& b = *bytes;
    return inner_.write(b.data(), b.size()).attach(kj::mv(bytes));
  }));
}

void CoalescedWrites::shutdownWrite() {
  Flush();
  tasks_.add(Chain([this] { inner_.shutdownWrite(); }));
}

}  // namespace esd::client::internal
