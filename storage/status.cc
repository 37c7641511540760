#include "storage/status.h"

#include <cstring>

namespace esd::storage {

Status Status::WrongExpectedVersion(std::string stream, ExpectedVersion expected,
                                    std::optional<StreamVersion> actual) {
  Status s(Code::kWrongExpectedVersion,
           "stream '" + stream + "': expected version " + expected.ToString() + ", actual " +
               (actual ? std::to_string(actual->value) : std::string("no stream")));
  s.actual_version_ = actual;
  return s;
}

Status Status::StreamDeleted(std::string_view stream) {
  return {Code::kStreamDeleted, "stream '" + std::string(stream) + "' was hard-deleted: it can never be written or read again"};
}

std::string DamageLocation::ToString() const {
  std::string s = file + " offset " + std::to_string(offset);
  if (position) s += " (position " + std::to_string(*position) + ")";
  return s;
}

Status Status::Damaged(DamageLocation where, const std::string& what) {
  Status s(Code::kCorruption, where.ToString() + ": " + what);
  s.damage_ = std::move(where);
  return s;
}

Status Status::IOError(const std::string& what, int errno_value) {
  return Status(Code::kIOError, what + ": " + std::strerror(errno_value));
}

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kWrongExpectedVersion: return "wrong expected version";
    case Code::kIdempotencyConflict: return "idempotency conflict";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kOutOfSpace: return "out of space";
    case Code::kIOError: return "I/O error";
    case Code::kCorruption: return "corruption";
    case Code::kLocked: return "locked";
    case Code::kClosed: return "closed";
    case Code::kOverloaded: return "overloaded";
    case Code::kStreamDeleted: return "stream deleted";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace esd::storage
