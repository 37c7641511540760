// The EventStore capability (protocol/esd.capnp), for one session's role.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/esd.capnp.h"
#include "server/config.h"
#include "server/connection.h"
#include "server/context.h"
#include "server/failed_calls.h"

namespace esd::server {

class EventStoreService final : public LoggedCalls<rpc::EventStore> {
 public:
  // Reads wait while `connection` has more than kMaxOutgoingBytes of answers unsent.
  EventStoreService(ServerContext& ctx, ConnectionState& connection, Role role)
      : LoggedCalls(&ctx.ops.rpc_latency), ctx_(ctx), connection_(kj::addRef(connection)), role_(role) {}

  kj::Promise<void> append(AppendContext context) override;
  kj::Promise<void> readStream(ReadStreamContext context) override;
  kj::Promise<void> readAll(ReadAllContext context) override;
  kj::Promise<void> streamInfo(StreamInfoContext context) override;
  kj::Promise<void> subscribe(SubscribeContext context) override;
  kj::Promise<void> listStreams(ListStreamsContext context) override;
  kj::Promise<void> deleteStream(DeleteStreamContext context) override;
  kj::Promise<void> truncateStream(TruncateStreamContext context) override;
  kj::Promise<void> setStreamMetadata(SetStreamMetadataContext context) override;
  kj::Promise<void> getStreamMetadata(GetStreamMetadataContext context) override;

 private:
  void ReadStreamNow(ReadStreamContext context);
  void ReadAllNow(ReadAllContext context);
  void ListStreamsNow(ListStreamsContext context);
  // Why this session may not make a lifecycle change (`what`: "delete streams" ...), if so.
  std::optional<std::string> LifecycleRefusal(std::string_view what);
  // A lifecycle call (`call`: its label in esd_lifecycle_calls_total): refused here, or
  // `start`ed on the writer and answered into `result`; `on_ok` runs when it succeeded.
  kj::Promise<void> Lifecycle(std::string_view call, std::string_view what, rpc::LifecycleResult::Builder result,
                              const std::function<void(storage::AppendCallback)>& start,
                              const std::function<void(const storage::AppendResult&)>& on_ok = {});

  ServerContext& ctx_;
  kj::Own<ConnectionState> connection_;
  // ReadAll copies the log into this (storage::ReadBuffer); a page stops once it has read
  // a little more than a page's worth of bytes (what a page takes is bounded by
  // kMaxReadBytes before that), even if a filter kept few of them.
  storage::ReadBuffer read_buffer_{kMaxReadBytes + (1u << 20)};
  static constexpr size_t kKeptReadBufferBytes = 2u << 20;
  const Role role_;
};

// One append as every protocol serves it (EventStore.append, and frames.capnp's Append):
// refused at once (the daemon is stopping, the role may not append, a bad name, count or
// id), or its bytes copied and handed to the writer. `answer` gives where the result goes;
// it is called once, when the result is known (at once for a refusal). The readers are not
// used after this returns. Throws (KJ) for an expected version of an unknown kind.
kj::Promise<void> ServeAppend(ServerContext& ctx, Role role, capnp::Text::Reader stream,
                              rpc::ExpectedVersion::Reader expected, capnp::List<rpc::EventData>::Reader events,
                              kj::Function<rpc::AppendResult::Builder()> answer);

// Conversions shared with the subscription code.
void FillRecorded(rpc::RecordedEvent::Builder out, const storage::EventView& e);
// `events` as records (protocol/esd.capnp, Subscriber.events) into `to`, which has room for
// the sum of their storage::format::RecordOf sizes: the verified records copied as they lie
// in the log, a run of adjacent ones with one memcpy. The views must come from the store.
void CopyRecords(const std::vector<storage::EventView>& events, uint8_t* to);
// The runs of records (storage::Store::ReadAllRecords) of one readAll answer or one push:
// those of streams `filter` matches (it must filter by stream only), up to `max_count`
// events in `max_bytes` bytes, and always one event, however large. Take() is the scan's
// `take`; *next moves past every event taken or filtered out.
class RecordPage {
 public:
  // `filter` and `next` must outlive the page.
  RecordPage(const EventFilter& filter, uint64_t& next, uint64_t max_count, uint64_t max_bytes)
      : filter_(filter), next_(next), max_count_(max_count), max_bytes_(max_bytes) {}
  // Empties the page for the next, keeping its memory.
  void Clear() {
    runs_.clear();
    bytes_ = count_ = 0;
  }
  uint32_t Take(const storage::Store::RecordRun& run);
  // The runs, one after the other, into `to` (room for bytes()).
  void CopyTo(uint8_t* to) const;
  size_t bytes() const { return bytes_; }
  bool empty() const { return runs_.empty(); }
  // Frees the memory (a subscription that is live again holds none).
  void Release() { runs_ = {}; }

 private:
  const EventFilter& filter_;
  uint64_t& next_;
  const uint64_t max_count_, max_bytes_;
  std::vector<std::span<const uint8_t>> runs_;
  size_t bytes_ = 0;
  uint64_t count_ = 0;
};
// The bytes `events` take as records: the sum of their storage::format::RecordOf sizes.
size_t RecordBytes(const std::vector<storage::EventView>& events);
// Puts `events` into `out` (a readAll answer or a Subscriber.events request): as records when
// `records` (`record_bytes` = RecordBytes(events)), else as a list of RecordedEvent.
template <typename Builder>
void FillEvents(Builder& out, const std::vector<storage::EventView>& events, bool records, size_t record_bytes) {
  if (records) {
    CopyRecords(events, out.initRecords(record_bytes).begin());
    return;
  }
  auto list = out.initEvents(events.size());
  for (size_t i = 0; i < events.size(); ++i) FillRecorded(list[i], events[i]);
}
// A size hint that makes a message of `events` events of `bytes` (WireSize) one segment: a
// receiver looks up every blob outside the first segment under a mutex.
capnp::MessageSize OneSegment(uint64_t bytes, size_t events);
EventFilter ReadFilter(rpc::Filter::Reader filter);
// `damage` is data loss (Status::IsDataLoss): its place, when it has one, and what does not
// hold.
void FillDamage(rpc::Damage::Builder out, const storage::Status& damage);

}  // namespace esd::server
