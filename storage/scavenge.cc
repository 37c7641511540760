// Scavenge: being written (issue 13). Until it lands, StartScavenge refuses.
#include "storage/store.h"
#include "storage/store_impl.h"

namespace esd::storage {

const char* ScavengeStatus::StateName(State s) {
  switch (s) {
    case State::kIdle: return "idle";
    case State::kRunning: return "running";
    case State::kStopping: return "stopping";
    case State::kFinished: return "finished";
    case State::kStopped: return "stopped";
    case State::kFailed: return "failed";
  }
  return "?";
}

Status Store::StartScavenge() { return Status::InvalidArgument("scavenge is not built yet"); }
void Store::StopScavenge() {}
ScavengeStatus Store::GetScavengeStatus() const { return {}; }

}  // namespace esd::storage
