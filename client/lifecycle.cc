// esd::client's stream lifecycle and scavenge calls (client/client.h).
#include <capnp/message.h>

#include <string>

#include "client/client.h"
#include "client/client_internal.h"
#include "protocol/esd.capnp.h"

namespace esd::client {

namespace {

using internal::SetExpected;
using internal::Str;

template <typename T>
T Wait(Client& c, kj::Promise<T> promise) {
  try {
    return promise.wait(c.wait_scope());
  } catch (const kj::Exception& e) {
    throw ErrorOf(e);
  }
}

LifecycleResult ToLifecycleResult(rpc::LifecycleResult::Reader r) {
  LifecycleResult out;
  switch (r.which()) {
    case rpc::LifecycleResult::OK:
      out.position = r.getOk().getPosition();
      out.metadata_version = r.getOk().getMetadataVersion();
      out.timestamp_micros = r.getOk().getTimestampMicros();
      break;
    case rpc::LifecycleResult::WRONG_EXPECTED_VERSION:
      out.outcome = LifecycleResult::Outcome::kWrongExpectedVersion;
      if (r.getWrongExpectedVersion().getStreamExists()) out.actual_version = r.getWrongExpectedVersion().getActualVersion();
      break;
    case rpc::LifecycleResult::STREAM_DELETED: out.outcome = LifecycleResult::Outcome::kStreamDeleted; break;
    case rpc::LifecycleResult::NOT_FOUND: out.outcome = LifecycleResult::Outcome::kNotFound; break;
    case rpc::LifecycleResult::REJECTED:
      out.outcome = LifecycleResult::Outcome::kRejected;
      out.reject_code = internal::RejectName(r.getRejected().getCode());
      out.reason = Str(r.getRejected().getReason());
      break;
    default:
      out.outcome = LifecycleResult::Outcome::kRejected;
      out.reject_code = "unknown";
      out.reason = "the server answered with an outcome this client does not know";
  }
  return out;
}

const char* StateName(rpc::ScavengeState s) {
  switch (s) {
    case rpc::ScavengeState::IDLE: return "idle";
    case rpc::ScavengeState::RUNNING: return "running";
    case rpc::ScavengeState::STOPPING: return "stopping";
    case rpc::ScavengeState::FINISHED: return "finished";
    case rpc::ScavengeState::STOPPED: return "stopped";
    case rpc::ScavengeState::FAILED: return "failed";
  }
  return "unknown";
}

ScavengeStatus ToScavengeStatus(rpc::ScavengeStatus::Reader s) {
  ScavengeStatus out;
  out.state = StateName(s.getState());
  out.started_micros = s.getStartedMicros();
  out.finished_micros = s.getFinishedMicros();
  out.segments_total = s.getSegmentsTotal();
  out.segments_done = s.getSegmentsDone();
  out.segments_rewritten = s.getSegmentsRewritten();
  out.bytes_total = s.getBytesTotal();
  out.bytes_read = s.getBytesRead();
  out.bytes_reclaimed = s.getBytesReclaimed();
  out.events_removed = s.getEventsRemoved();
  out.read_rate_cap = s.getReadRateCap();
  out.error = Str(s.getError());
  return out;
}

}  // namespace

LifecycleResult Client::DeleteStream(const std::string& stream, Expected expected, bool hard) {
  auto req = internal::StoreOf(*impl_).deleteStreamRequest();
  req.setStream(stream);
  SetExpected(req.initExpected(), expected);
  req.setHard(hard);
  return ToLifecycleResult(Wait(*this, req.send()).getResult());
}

LifecycleResult Client::TruncateStream(const std::string& stream, uint64_t before) {
  auto req = internal::StoreOf(*impl_).truncateStreamRequest();
  req.setStream(stream);
  req.setBefore(before);
  return ToLifecycleResult(Wait(*this, req.send()).getResult());
}

LifecycleResult Client::SetStreamMetadata(const std::string& stream, const StreamMetadata& metadata,
                                          Expected expected) {
  auto req = internal::StoreOf(*impl_).setStreamMetadataRequest();
  req.setStream(stream);
  SetExpected(req.initExpected(), expected);
  auto m = req.initMetadata();
  m.setHasMaxAge(metadata.max_age_micros.has_value());
  m.setMaxAgeMicros(metadata.max_age_micros.value_or(0));
  m.setHasMaxCount(metadata.max_count.has_value());
  m.setMaxCount(metadata.max_count.value_or(0));
  m.setTruncateBefore(metadata.truncate_before);
  m.setCustom(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(metadata.custom.data()), metadata.custom.size()));
  return ToLifecycleResult(Wait(*this, req.send()).getResult());
}

StreamMetadataResult Client::GetStreamMetadata(const std::string& stream) {
  auto req = internal::StoreOf(*impl_).getStreamMetadataRequest();
  req.setStream(stream);
  auto resp = Wait(*this, req.send());
  auto r = resp.getResult();
  StreamMetadataResult out;
  if (r.isRejected()) {
    out.ok = false;
    out.reject_code = internal::RejectName(r.getRejected().getCode());
    out.reason = Str(r.getRejected().getReason());
    return out;
  }
  auto ok = r.getOk();
  auto m = ok.getMetadata();
  if (m.getHasMaxAge()) out.metadata.max_age_micros = m.getMaxAgeMicros();
  if (m.getHasMaxCount()) out.metadata.max_count = m.getMaxCount();
  out.metadata.truncate_before = m.getTruncateBefore();
  out.metadata.hard_deleted = m.getHardDeleted();
  out.metadata.custom = Str(m.getCustom());
  if (ok.getWritten()) out.metadata_version = ok.getMetadataVersion();
  return out;
}

Client::ScavengeStartResult Client::ScavengeStart() {
  auto admin = internal::SessionOf(*impl_).adminRequest().send().getAdmin();
  auto resp = Wait(*this, admin.scavengeStartRequest().send());
  return {resp.getStarted(), Str(resp.getReason()), ToScavengeStatus(resp.getStatus())};
}

ScavengeStatus Client::GetScavengeStatus() {
  auto admin = internal::SessionOf(*impl_).adminRequest().send().getAdmin();
  return ToScavengeStatus(Wait(*this, admin.scavengeStatusRequest().send()).getStatus());
}

Client::ScavengeStopResult Client::ScavengeStop() {
  auto admin = internal::SessionOf(*impl_).adminRequest().send().getAdmin();
  auto resp = Wait(*this, admin.scavengeStopRequest().send());
  return {resp.getWasRunning(), ToScavengeStatus(resp.getStatus())};
}

}  // namespace esd::client
