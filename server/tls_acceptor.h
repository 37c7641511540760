// The daemon's side of TLS: the handshake of each accepted connection.
//
// The listener accepts plain TCP connections; each one then has its handshake here, in the
// connection's own task, within kHandshakeTimeout. A client that is slow, silent or fails
// the handshake holds up nobody else and is never an accept error. (kj::TlsContext::wrapPort
// does the handshakes behind accept() instead; with capnp 0.9.2 it logs each failed one with
// a stack trace, and after one failed accept of its listener (EMFILE) it fails every later
// accept, so a TLS daemon that ran out of descriptors once never served again.)
//
// What a failed handshake leaves: one warn line in the log naming the peer and the reason, at most
// one per 10 s with the count since the last (BurstLog), and one more in `failures`
// (esd_tls_handshake_failures_total). A client that does not open with a TLS hello (a plain
// Cap'n Proto client, an HTTP request, garbage) is answered with a TLS alert record, which
// esd::client takes as "this port speaks TLS", before the connection is closed. A connection
// closed before its first byte is no handshake (TCP health checks and port probes do that):
// it is neither logged nor counted.
#pragma once

#include <kj/async-io.h>
#include <kj/compat/tls.h>
#include <kj/timer.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "server/burst_log.h"

namespace esd::server {

inline constexpr kj::Duration kHandshakeTimeout = 10 * kj::SECONDS;

class TlsAcceptor {
 public:
  // The certificate chain and private key as PEM text; throws kj::Exception when they do not
  // parse. `timer` and `failures` must outlive the TlsAcceptor. KJ thread only.
  TlsAcceptor(const std::string& cert_pem, const std::string& key_pem, kj::Timer& timer,
              std::atomic<uint64_t>& failures);
  ~TlsAcceptor() noexcept(false);
  TlsAcceptor(const TlsAcceptor&) = delete;
  TlsAcceptor& operator=(const TlsAcceptor&) = delete;

  // Resolves to the TLS stream over `stream` once the handshake is done, or to nullptr when
  // there was none (logged and counted as above, the connection closed). Never rejects.
  // Dropping the promise closes the connection. (A Maybe: kj cannot resolve a promise to a
  // null Own.)
  kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> Handshake(kj::Own<kj::AsyncIoStream> stream);

 private:
  struct Attempt;
  kj::Promise<void> AnswerPlainClient(kj::Own<kj::AsyncIoStream> stream);
  void Failed(const std::string& peer, const std::string& reason);

  kj::TlsKeypair keypair_;
  kj::TlsContext context_;
  kj::Timer& timer_;
  std::atomic<uint64_t>& failures_;
  BurstLog log_;
};

}  // namespace esd::server
