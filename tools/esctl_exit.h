// esctl's exit codes: one meaning each, the same for every command. The table below is the
// one place they are written for people; `esctl help` prints it and docs/esctl.md copies it.
//
// Where permission denied belongs: 1, with a refused token. Both say "this token may not do
// this here": nothing about the request itself is wrong, and the same denial must read the
// same whether the daemon answers it as an exception (status, verify, backup ...) or as a
// typed result (append, order commands). 3 is kept for requests the server looked at and
// refused on their merits (a retry with other input or after a pause may be done).
#pragma once

#include <string_view>

namespace esd::esctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // could not do it: connect, token, permission, not found, I/O, esd running on DIR
constexpr int kExitUsage = 2;    // bad usage, always found before connecting or opening anything
constexpr int kExitNotDone = 3;  // the server refused the request on its merits; nothing was written
constexpr int kExitDamage = 4;   // damage found, or met where a command needed the log's bytes

constexpr std::string_view kExitCodeTable = R"(exit codes (the same for every command):
  0  ok
  1  failure: cannot connect, refused token, permission denied (the token's role may not do
     it), server unavailable or out of space, not found, I/O error, esd running on DIR
  2  bad usage: found before connecting or opening anything; nothing was done
  3  not done: the server refused the request and wrote nothing: wrong expected version, an
     append rejected (invalid, a reserved stream), a business rule, a conflict, an
     idempotency conflict (a --command-id used before for another command), overloaded
     (retry shortly), a stream that was hard-deleted, a truncate past the stream's end, a
     scavenge that is running already
  4  damage: verify or dump found some, or a read, tail or order command met damaged bytes
     of the log (the file, offset and position are named on stderr)
)";

// The exit code for a request the server answered with a reject code (client/client.h:
// AppendResult::reject_code, CommandOutcome::code), for append and order commands alike.
// A code this esctl does not know yet is a failure (1): it cannot say that nothing was written.
constexpr int ExitForRejectCode(std::string_view code) {
  if (code == "invalid-argument" || code == "idempotency-conflict" || code == "overloaded") return kExitNotDone;
  if (code == "data-loss") return kExitDamage;
  return kExitFailure;  // permission-denied, unavailable, out-of-space, unknown
}

}  // namespace esd::esctl
