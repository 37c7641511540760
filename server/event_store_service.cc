#include "server/event_store_service.h"

#include <kj/debug.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "domain/order_commands.h"
#include "server/subscription.h"
#include "storage/stream_page.h"

namespace esd::server {

namespace {

using storage::Status;

bool IsKnown(rpc::Direction d) { return d == rpc::Direction::FORWARD || d == rpc::Direction::BACKWARD; }

// An AppendResult or a LifecycleResult.
template <typename Result>
void Reject(Result result, rpc::RejectCode code, kj::StringPtr reason) {
  auto rejected = result.initRejected();
  rejected.setCode(code);
  rejected.setReason(reason);
}

// A failed write's Status as the RejectCode a client gets; the typed outcomes each result
// has a member of its own for (a wrong expected version ...) are not passed here.
template <typename Result>
void RejectFor(Result out, const Status& s) {
  const std::string& msg = s.message();
  switch (s.code()) {
    case Status::Code::kInvalidArgument: return Reject(out, rpc::RejectCode::INVALID_ARGUMENT, msg.c_str());
    case Status::Code::kIdempotencyConflict: return Reject(out, rpc::RejectCode::IDEMPOTENCY_CONFLICT, msg.c_str());
    case Status::Code::kOutOfSpace: return Reject(out, rpc::RejectCode::OUT_OF_SPACE, msg.c_str());
    case Status::Code::kOverloaded: return Reject(out, rpc::RejectCode::OVERLOADED, msg.c_str());
    default: return Reject(out, rpc::RejectCode::UNAVAILABLE, s.ToString().c_str());
  }
}

// A refused write as an append or a lifecycle call answers it: the typed outcomes both
// results have (wrong expected version, stream deleted), else a RejectCode.
template <typename Result>
void FillRefusal(Result out, const Status& s) {
  switch (s.code()) {
    case Status::Code::kWrongExpectedVersion: {
      auto w = out.initWrongExpectedVersion();
      w.setStreamExists(s.actual_version().has_value());
      w.setActualVersion(s.actual_version() ? s.actual_version()->value : 0);
      return;
    }
    case Status::Code::kStreamDeleted: return out.setStreamDeleted();
    default: return RejectFor(out, s);
  }
}

void FillAppendResult(rpc::AppendResult::Builder out, const storage::AppendResult& r) {
  if (r.ok()) {
    auto ok = out.initOk();
    ok.setFirstVersion(r->first_version.value);
    ok.setLastVersion(r->last_version.value);
    ok.setFirstPosition(r->first_position.value);
    ok.setLastPosition(r->last_position.value);
    ok.setTimestampMicros(r->timestamp);
    ok.setAlreadyWritten(r->already_written);
    return;
  }
  FillRefusal(out, r.status());
}

// A lifecycle call's result: `r` is the write of its event to "$$<stream>".
void FillLifecycleResult(rpc::LifecycleResult::Builder out, const storage::AppendResult& r) {
  if (r.ok()) {
    auto ok = out.initOk();
    ok.setPosition(r->last_position.value);
    ok.setMetadataVersion(r->last_version.value);
    ok.setTimestampMicros(r->timestamp);
    return;
  }
  if (r.status().code() == Status::Code::kNotFound) return out.setNotFound();
  FillRefusal(out, r.status());
}

storage::ExpectedVersion ExpectedOf(rpc::ExpectedVersion::Reader ev) {
  switch (ev.which()) {
    case rpc::ExpectedVersion::ANY: return storage::ExpectedVersion::Any();
    case rpc::ExpectedVersion::NO_STREAM: return storage::ExpectedVersion::NoStream();
    case rpc::ExpectedVersion::STREAM_EXISTS: return storage::ExpectedVersion::StreamExists();
    case rpc::ExpectedVersion::EXACT: return storage::ExpectedVersion::Exact(storage::StreamVersion(ev.getExact()));
  }
  KJ_FAIL_REQUIRE("unknown kind of expected version", static_cast<uint>(ev.which()));
}

void FillMetadata(rpc::StreamMetadata::Builder out, const storage::StreamMetadata& m) {
  out.setHasMaxAge(m.max_age_micros.has_value());
  out.setMaxAgeMicros(m.max_age_micros.value_or(0));
  out.setHasMaxCount(m.max_count.has_value());
  out.setMaxCount(m.max_count.value_or(0));
  out.setTruncateBefore(m.truncate_before.value);
  out.setHardDeleted(m.hard_deleted);
  out.setCustom(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(m.custom.data()), m.custom.size()));
}

std::string ToString(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
std::string ToString(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }

}  // namespace

capnp::MessageSize OneSegment(uint64_t bytes, size_t events) {
  return capnp::MessageSize{64 + bytes / 8 + 24 * events, 0};
}

bool EventFilter::Matches(const storage::EventView& e) const {
  if (!MatchesStream(e.stream)) return false;
  if (types.empty()) return true;
  for (const auto& t : types) {
    if (e.type == t) return true;
  }
  return false;
}

EventFilter ReadFilter(rpc::Filter::Reader filter) {
  auto types = filter.getEventTypes();
  KJ_REQUIRE(types.size() <= kMaxFilterTypes, "a filter names at most 64 event types", types.size());
  KJ_REQUIRE(filter.getStreamPrefix().size() <= kMaxFilterTextBytes, "a filter's stream prefix is at most 255 bytes",
             filter.getStreamPrefix().size());
  EventFilter f;
  f.stream_prefix = ToString(filter.getStreamPrefix());
  for (auto t : types) {
    KJ_REQUIRE(t.size() <= kMaxFilterTextBytes, "a filter's event type is at most 255 bytes", t.size());
    f.types.push_back(ToString(t));
  }
  return f;
}

// Views into a segment are not NUL-terminated, which capnp::Text::Reader requires: copy
// into a Text::Builder of the right size instead (capnp adds the NUL).
void CopyText(capnp::Text::Builder to, std::string_view from) {
  if (!from.empty()) std::memcpy(to.begin(), from.data(), from.size());
}

void FillDamage(rpc::Damage::Builder out, const storage::Status& damage) {
  std::string reason = damage.message();
  if (const auto& where = damage.damage()) {
    out.setFile(where->file);
    out.setOffset(where->offset);
    out.setHasPosition(where->position.has_value());
    out.setPosition(where->position.value_or(0));
    // Status::Damaged's message is "<place>: <what>"; the place has fields of its own.
    const std::string place = where->ToString() + ": ";
    if (reason.rfind(place, 0) == 0) reason.erase(0, place.size());
  }
  out.setReason(reason);
}

void FillRecorded(rpc::RecordedEvent::Builder out, const storage::EventView& e) {
  CopyText(out.initStream(e.stream.size()), e.stream);
  out.setVersion(e.version.value);
  out.setPosition(e.position.value);
  out.setId(capnp::Data::Reader(e.id.bytes.data(), e.id.bytes.size()));
  CopyText(out.initType(e.type.size()), e.type);
  CopyText(out.initContentType(e.content_type.size()), e.content_type);
  out.setTimestampMicros(e.timestamp);
  out.setMetadata(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(e.metadata.data()), e.metadata.size()));
  out.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(e.data.data()), e.data.size()));
}

size_t RecordBytes(const std::vector<storage::EventView>& events) {
  size_t bytes = 0;
  for (const auto& e : events) bytes += storage::format::RecordOf(e).size();
  return bytes;
}

void CopyRecords(const std::vector<storage::EventView>& events, uint8_t* to) {
  const uint8_t* run = nullptr;
  size_t run_size = 0;
  for (const auto& e : events) {
    const auto record = storage::format::RecordOf(e);
    if (run + run_size == record.data()) {
      run_size += record.size();
      continue;
    }
    if (run_size > 0) std::memcpy(to, run, run_size);
    to += run_size;
    run = record.data();
    run_size = record.size();
  }
  if (run_size > 0) std::memcpy(to, run, run_size);
}

uint32_t RecordPage::Take(const storage::Store::RecordRun& run) {
  if (!filter_.MatchesStream(run.stream)) {
    next_ = run.first.value + run.count;
    return run.count;
  }
  // What fits; the rest is the next page's.
  auto part = run.Front(max_count_ - count_, bytes_ < max_bytes_ ? max_bytes_ - bytes_ : 0);
  if (part.count == 0 && count_ == 0) part = run.Front(1, UINT64_MAX);
  if (part.count > 0) {
    runs_.push_back(part.records);
    bytes_ += part.records.size();
    count_ += part.count;
    next_ = part.first.value + part.count;
  }
  return part.count;
}

void RecordPage::CopyTo(uint8_t* to) const {
  for (const auto& run : runs_) {
    std::memcpy(to, run.data(), run.size());
    to += run.size();
  }
}

kj::Promise<void> EventStoreService::append(AppendContext context) {
  auto params = context.getParams();
  // Without a size hint capnp callocs 8 KiB for every answer; an append's answer is a few
  // words (a rejection's message may take one more segment).
  return ServeAppend(ctx_, role_, params.getStream(), params.getExpected(), params.getEvents(),
                     [context]() mutable { return context.getResults(capnp::MessageSize{32, 0}).initResult(); });
}

kj::Promise<void> ServeAppend(ServerContext& ctx, Role role, capnp::Text::Reader stream,
                              rpc::ExpectedVersion::Reader expected_version, capnp::List<rpc::EventData>::Reader list,
                              kj::Function<rpc::AppendResult::Builder()> answer) {
  if (ctx.stopping) {
    ctx.ops.appends.Add({"unavailable"});
    Reject(answer(), rpc::RejectCode::UNAVAILABLE, "the server is shutting down; nothing was written, retry once it is back");
    return kj::READY_NOW;
  }
  if (role < Role::kWriter) {
    ctx.ops.appends.Add({"permission_denied"});
    Reject(answer(), rpc::RejectCode::PERMISSION_DENIED,
           kj::str("role ", RoleName(role), " may not append (needs writer or admin)"));
    return kj::READY_NOW;
  }
  if (auto refusal = domain::RawAppendRefusal(std::string_view(stream.cStr(), stream.size()))) {
    ctx.ops.appends.Add({"invalid_argument"});
    Reject(answer(), rpc::RejectCode::INVALID_ARGUMENT, refusal->c_str());
    return kj::READY_NOW;
  }
  const storage::ExpectedVersion expected = ExpectedOf(expected_version);
  // The request's bytes are copied here: they cross to the writer thread. A count the store
  // would refuse is refused before the copy, which would cost ~100 bytes per event.
  if (const uint32_t limit = ctx.store.options().max_events_per_append; list.size() > limit) {
    ctx.ops.appends.Add({"invalid_argument"});
    Reject(answer(), rpc::RejectCode::INVALID_ARGUMENT,
           kj::str("an append carries at most ", limit, " events, this one has ", list.size(),
                   "; nothing was written: split it into several appends"));
    return kj::READY_NOW;
  }
  // One buffer for every field of every event (storage::PackedEvents), sized first: the ids
  // are checked on the way, and each capnp accessor (bounds-checked) runs once per field.
  struct Fields {
    const capnp::byte* id;
    capnp::Text::Reader type, content_type;
    capnp::Data::Reader metadata, data;
  };
  std::vector<Fields> fields;
  fields.reserve(list.size());
  size_t bytes = 0;
  for (uint i = 0; i < list.size(); ++i) {
    auto e = list[i];
    auto id = e.getId();
    if (id.size() != 16) {
      ctx.ops.appends.Add({"invalid_argument"});
      Reject(answer(), rpc::RejectCode::INVALID_ARGUMENT, kj::str("event ", i, ": the id must be 16 bytes, got ", id.size()));
      return kj::READY_NOW;
    }
    Fields& f = fields.emplace_back(Fields{id.begin(), e.getType(), e.getContentType(), e.getMetadata(), e.getData()});
    bytes += f.type.size() + f.content_type.size() + f.metadata.size() + f.data.size();
  }
  storage::PackedEvents events{std::make_unique_for_overwrite<char[]>(bytes), {}};
  events.events.reserve(list.size());
  char* at = events.bytes.get();
  auto take = [&at](const void* from, size_t n) {
    if (n > 0) std::memcpy(at, from, n);
    std::string_view view(at, n);
    at += n;
    return view;
  };
  for (const Fields& f : fields) {
    storage::format::EventFields& out = events.events.emplace_back();
    std::memcpy(out.id.bytes.data(), f.id, 16);
    out.type = take(f.type.begin(), f.type.size());
    out.content_type = take(f.content_type.begin(), f.content_type.size());
    out.metadata = take(f.metadata.begin(), f.metadata.size());
    out.data = take(f.data.begin(), f.data.size());
  }
  auto appended = AppendOnLoop(ctx, ToString(stream), expected, std::move(events));
  return appended.then([&ctx, answer = kj::mv(answer)](kj::Own<storage::AppendResult> r) mutable {
    if (r->ok()) {
      ctx.ops.appends_ok.fetch_add(1, std::memory_order_relaxed);
    } else {
      ctx.ops.appends.Add({AppendOutcome(r->status())});
    }
    FillAppendResult(answer(), *r);
  });
}

// Reads answer at once unless this connection already has kMaxOutgoingBytes of answers
// unsent (connection.h): then they wait until its client has taken enough of them.
kj::Promise<void> EventStoreService::readStream(ReadStreamContext context) {
  return connection_->WhenOutgoingBelow(kMaxOutgoingBytes).then([this, context]() mutable { ReadStreamNow(context); });
}

kj::Promise<void> EventStoreService::readAll(ReadAllContext context) {
  return connection_->WhenOutgoingBelow(kMaxOutgoingBytes).then([this, context]() mutable { ReadAllNow(context); });
}

kj::Promise<void> EventStoreService::listStreams(ListStreamsContext context) {
  return connection_->WhenOutgoingBelow(kMaxOutgoingBytes).then([this, context]() mutable { ListStreamsNow(context); });
}

void EventStoreService::ReadStreamNow(ReadStreamContext context) {
  auto params = context.getParams();
  KJ_REQUIRE(IsKnown(params.getDirection()), "unknown direction", static_cast<uint>(params.getDirection()));
  const uint32_t count = std::min(params.getCount(), kMaxReadCount);
  const auto direction = params.getDirection() == rpc::Direction::FORWARD ? storage::Direction::kForward
                                                                          : storage::Direction::kBackward;
  const uint64_t from = params.getFromVersion();
  auto page = storage::ReadStreamPage(ctx_.store, ToString(params.getStream()), storage::StreamVersion(from), count,
                                      direction, kMaxReadBytes, WireSize);
  if (!page.ok()) {
    const Status& s = page.status();
    auto result = context.getResults().initResult();
    result.setNextVersion(from);
    if (s.code() == Status::Code::kNotFound) {
      result.setNotFound();
      result.setEndOfStream(true);
      return;
    }
    if (s.code() == Status::Code::kStreamDeleted) {
      result.setStreamDeleted();
      result.setEndOfStream(true);
      return;
    }
    if (s.IsDataLoss()) {
      ctx_.damage_log.Report(s, "a read of stream '" + ToString(params.getStream()) + "'");
      FillDamage(result.initDamaged(), s);
      return;
    }
    KJ_FAIL_ASSERT("reading the stream failed", s.ToString());
  }
  uint64_t bytes = 0;
  for (const auto& e : page->events) bytes += WireSize(e);
  auto result = context.initResults(OneSegment(bytes, page->events.size())).initResult();
  auto list = result.initEvents(page->events.size());
  for (size_t i = 0; i < page->events.size(); ++i) FillRecorded(list[i], page->events[i]);
  result.setNextVersion(page->next.value);
  result.setEndOfStream(page->end);
}

void EventStoreService::ReadAllNow(ReadAllContext context) {
  auto params = context.getParams();
  const uint32_t count = std::min(params.getCount(), kMaxReadCount);
  const EventFilter filter = ReadFilter(params.getFilter());
  const bool records = params.getRecords();
  // Records filtered by stream alone are read as whole runs (Store::ReadAllRecords).
  const bool as_runs = records && filter.ByStreamOnly();
  const uint64_t durable = ctx_.store.DurablePosition().value;
  std::vector<storage::EventView> events;  // the page, but for as_runs
  uint64_t next = params.getFromPosition();
  RecordPage runs(filter, next, count, kMaxReadBytes);  // as_runs: the page
  uint64_t bytes = 0;
  std::optional<Status> damage;
  storage::GlobalPosition skipped(next);
  if (count > 0) {
    // Through read_buffer_ (pread; storage/store.h says why): the views stay valid until the
    // answer below is built.
    auto take = [&runs](const storage::Store::RecordRun& run) { return runs.Take(run); };
    auto visit = [&](const storage::EventView& e) {
      if (filter.Matches(e)) {
        if (!events.empty() && bytes + WireSize(e) > kMaxReadBytes) return false;
        events.push_back(e);
        bytes += WireSize(e);
      }
      next = e.position.value + 1;
      return events.size() < count;
    };
    const storage::GlobalPosition from(next);
    auto scanned = as_runs ? ctx_.store.ReadAllRecords(from, kMaxScanPerRead, take, read_buffer_, &skipped)
                           : ctx_.store.ReadAll(from, kMaxScanPerRead, visit, read_buffer_, &skipped);
    next = std::max(next, skipped.value);  // past removed events, so the next page does not scan them again
    if (!scanned.ok()) {
      // The events visited before the damage verified: they are answered, then the damage.
      if (!scanned.status().IsDataLoss()) KJ_FAIL_ASSERT("reading $all failed", scanned.status().ToString());
      damage = scanned.status();
      ctx_.damage_log.Report(*damage, "a read of $all");
    }
  }
  const size_t record_bytes = as_runs ? runs.bytes() : records ? RecordBytes(events) : 0;
  auto results = context.initResults(records ? capnp::MessageSize{64 + record_bytes / 8, 0}
                                             : OneSegment(bytes, events.size()));
  if (as_runs) {
    runs.CopyTo(results.initRecords(record_bytes).begin());
  } else {
    FillEvents(results, events, records, record_bytes);
  }
  next = std::max(next, params.getFromPosition());
  results.setNextPosition(next);
  results.setEndOfLog(!damage && next >= durable);
  if (damage) FillDamage(results.initDamage(), *damage);
  // A connection keeps what a usual page needs, not what its largest page took.
  if (read_buffer_.held_bytes() > kKeptReadBufferBytes) read_buffer_.Release();
}

kj::Promise<void> EventStoreService::streamInfo(StreamInfoContext context) {
  auto info = ctx_.store.GetStreamInfo(ToString(context.getParams().getStream()));
  auto out = context.getResults().initInfo();
  if (!info) {
    out.setNotFound();
  } else {
    auto found = out.initFound();
    found.setLastVersion(info->last_version.value);
    found.setEventCount(info->event_count);
    found.setLastPosition(info->last_position.value);
    found.setLastWriteMicros(info->last_write);
    found.setFirstKept(info->first_kept.value);
    found.setHardDeleted(info->hard_deleted);
    found.setHasMetadata(info->has_metadata);
  }
  return kj::READY_NOW;
}

std::optional<std::string> EventStoreService::LifecycleRefusal(std::string_view what) {
  if (ctx_.stopping) return "the server is shutting down; nothing was written, retry once it is back";
  if (role_ < Role::kWriter) {
    return "role " + std::string(RoleName(role_)) + " may not " + std::string(what) + " (needs writer or admin)";
  }
  return std::nullopt;
}

kj::Promise<void> EventStoreService::Lifecycle(
    std::string_view call, std::string_view what, rpc::LifecycleResult::Builder result,
    const std::function<void(storage::AppendCallback)>& start,
    const std::function<void(const storage::AppendResult&)>& on_ok) {
  if (auto refusal = LifecycleRefusal(what)) {
    const bool stopping = ctx_.stopping;
    ctx_.ops.lifecycle_calls.Add({std::string(call), stopping ? "unavailable" : "permission_denied"});
    Reject(result, stopping ? rpc::RejectCode::UNAVAILABLE : rpc::RejectCode::PERMISSION_DENIED, refusal->c_str());
    return kj::READY_NOW;
  }
  return WriteOnLoop(ctx_, start).then(
      [this, call = std::string(call), result, on_ok](kj::Own<storage::AppendResult> r) mutable {
        ctx_.ops.lifecycle_calls.Add({call, AppendOutcome(r->ok() ? Status::Ok() : r->status())});
        if (r->ok() && on_ok) on_ok(*r);
        FillLifecycleResult(result, *r);
      });
}

kj::Promise<void> EventStoreService::deleteStream(DeleteStreamContext context) {
  auto params = context.getParams();
  std::string stream = ToString(params.getStream());
  const storage::ExpectedVersion expected = ExpectedOf(params.getExpected());
  const bool hard = params.getHard();
  auto result = context.getResults(capnp::MessageSize{32, 0}).initResult();
  return Lifecycle(
      "delete_stream", "delete streams", result,
      [&](storage::AppendCallback done) { ctx_.store.DeleteStream(std::move(stream), expected, hard, std::move(done)); },
      [this, hard](const storage::AppendResult&) { ctx_.ops.streams_deleted.Add({hard ? "hard" : "soft"}); });
}

kj::Promise<void> EventStoreService::truncateStream(TruncateStreamContext context) {
  auto params = context.getParams();
  std::string stream = ToString(params.getStream());
  const storage::StreamVersion before(params.getBefore());
  auto result = context.getResults(capnp::MessageSize{32, 0}).initResult();
  return Lifecycle("truncate_stream", "truncate streams", result, [&](storage::AppendCallback done) {
    ctx_.store.TruncateStream(std::move(stream), before, std::move(done));
  });
}

kj::Promise<void> EventStoreService::setStreamMetadata(SetStreamMetadataContext context) {
  auto params = context.getParams();
  std::string stream = ToString(params.getStream());
  const storage::ExpectedVersion expected = ExpectedOf(params.getExpected());
  auto m = params.getMetadata();
  storage::StreamMetadata metadata;
  if (m.getHasMaxAge()) metadata.max_age_micros = m.getMaxAgeMicros();
  if (m.getHasMaxCount()) metadata.max_count = m.getMaxCount();
  metadata.truncate_before = storage::StreamVersion(m.getTruncateBefore());
  metadata.custom = ToString(m.getCustom());  // hardDeleted is deleteStream's, not set here
  auto result = context.getResults(capnp::MessageSize{32, 0}).initResult();
  return Lifecycle("set_stream_metadata", "set stream metadata", result, [&](storage::AppendCallback done) {
    ctx_.store.SetStreamMetadata(std::move(stream), expected, std::move(metadata), std::move(done));
  });
}

kj::Promise<void> EventStoreService::getStreamMetadata(GetStreamMetadataContext context) {
  auto read = ctx_.store.GetStreamMetadata(ToString(context.getParams().getStream()));
  auto result = context.getResults().initResult();
  if (!read.ok()) {
    RejectFor(result, read.status());
    return kj::READY_NOW;
  }
  auto ok = result.initOk();
  FillMetadata(ok.initMetadata(), read->metadata);
  ok.setWritten(read->metadata_version.has_value());
  ok.setMetadataVersion(read->metadata_version ? read->metadata_version->value : 0);
  return kj::READY_NOW;
}

void EventStoreService::ListStreamsNow(ListStreamsContext context) {
  auto p = context.getParams();
  const size_t count = std::min<uint32_t>(p.getCount() == 0 ? 1000 : p.getCount(), kMaxReadCount);
  // One page from the store: its cost does not grow with the number of streams.
  const auto page = ctx_.store.ListStreams(ToString(p.getPrefix()), ToString(p.getAfter()), count);
  auto results = context.getResults();
  auto list = results.initStreams(page.streams.size());
  for (size_t i = 0; i < page.streams.size(); ++i) {
    const auto& [name, info] = page.streams[i];
    list[i].setName(name);
    list[i].setLastVersion(info.last_version.value);
    list[i].setEventCount(info.event_count);
    list[i].setLastPosition(info.last_position.value);
    list[i].setLastWriteMicros(info.last_write);
  }
  results.setMore(page.more);
}

kj::Promise<void> EventStoreService::subscribe(SubscribeContext context) {
  auto params = context.getParams();
  if (ctx_.stopping) kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the server is shutting down"));
  context.getResults().setSubscription(
      StartSubscription(ctx_, params.getFrom(), ReadFilter(params.getFilter()), params.getSubscriber(),
                        params.getRecords()));
  return kj::READY_NOW;
}

}  // namespace esd::server
