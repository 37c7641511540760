// What the files of esd::client share beyond client.h: the connection's capabilities, for
// the calls implemented outside client.cc (lifecycle.cc). Not installed; not for users.
#pragma once

#include <kj/async-io.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "protocol/esd.capnp.h"

namespace esd::client::internal {

rpc::Session::Client& SessionOf(Client::Impl& impl);
rpc::EventStore::Client& StoreOf(Client::Impl& impl);
// "invalid-argument", "permission-denied" ... as AppendResult::reject_code says them.
const char* RejectName(rpc::RejectCode code);
// The wire form of an expected version (appends, deletes, metadata).
void SetExpected(rpc::ExpectedVersion::Builder out, Expected expected);
AppendResult ToAppendResult(rpc::AppendResult::Reader r);
CommandOutcome ToOutcome(rpc::CommandResult::Reader r);
// A command's request sized for its texts, so that it is one small segment: without a
// size hint Cap'n Proto gives each request an 8 KiB first segment, calloc'ed and zeroed.
capnp::MessageSize CommandSize(std::initializer_list<size_t> text_bytes);
// A command's id (a random one when `command_id` is empty) and correlation id.
void SetMeta(rpc::CommandMeta::Builder meta, const std::string& command_id, const std::string& correlation_id);
std::string Str(capnp::Text::Reader t);
std::string Str(capnp::Data::Reader d);

// Words that make an append's request of these events one segment, which the daemon reads
// without segment lookups.
inline capnp::MessageSize AppendRequestSize(const std::string& stream, const std::vector<NewEvent>& events) {
  uint64_t bytes = stream.size();
  for (const NewEvent& e : events) bytes += e.type.size() + e.content_type.size() + e.metadata.size() + e.data.size() + 64;
  return capnp::MessageSize{64 + bytes / 8 + 16 * events.size(), 0};
}

// An append's request: EventStore.append's params, or the framed protocol's Append.
template <typename Builder>
void FillAppend(Builder& out, const std::string& stream, Expected expected, const std::vector<NewEvent>& events) {
  auto bytes = [](const std::string& s) {
    return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(s.data()), s.size());
  };
  out.setStream(stream);
  SetExpected(out.initExpected(), expected);
  auto list = out.initEvents(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const NewEvent& e = events[i];
    list[i].setId(capnp::Data::Reader(e.id.data(), e.id.size()));
    list[i].setType(e.type);
    list[i].setContentType(e.content_type);
    list[i].setMetadata(bytes(e.metadata));
    list[i].setData(bytes(e.data));
  }
}

// KJ allows one event loop per thread: the Clients (and Appenders) of a thread share it, and
// it lives as long as the last of them.
struct ThreadLoop {
  ThreadLoop() : io(kj::setupAsyncIo()) {}
  kj::AsyncIoContext io;
  static std::shared_ptr<ThreadLoop> Get();
};

// Runs the thread's loop until `promise` settles: its value, or the Error (ErrorOf) for its
// exception. What every synchronous call of Client and Appender waits with.
template <typename T>
T WaitFor(kj::AsyncIoContext& io, kj::Promise<T> promise) {
  try {
    return promise.wait(io.waitScope);
  } catch (const kj::Exception& e) {
    throw ErrorOf(e);
  }
}
// Client::RunUntil and RunFor, and the Appender's.
bool RunLoopUntil(kj::AsyncIoContext& io, const std::function<bool()>& done, std::chrono::milliseconds timeout);
void RunLoopFor(kj::AsyncIoContext& io, std::chrono::milliseconds duration);
// "reader", "writer" or "admin".
std::string RoleName(rpc::Role role);

class FirstBytes;
// The connection `options` ask for, TLS set up if asked (Error kConnect with its
// ConnectProblem if not); a plain one records its first bytes read in `first_bytes`, which
// must outlive it.
kj::Own<kj::AsyncIoStream> OpenStream(kj::AsyncIoContext& io, const ConnectOptions& options, FirstBytes& first_bytes);

}  // namespace esd::client::internal
