// The client's side of TLS, and telling TLS and plain connections apart. Internal to the
// client library (client.cc uses it); its users see ConnectOptions and Error.
//
// Why not kj::TlsContext::wrapClient (capnp 0.9.2): it checks the server's certificate
// against a DNS name only (X509_VERIFY_PARAM_set1_host), so connecting to 127.0.0.1 fails
// "hostname mismatch" with a certificate made for IP address 127.0.0.1, and it exposes
// nothing to check an address with. It also finishes the handshake before it checks, so
// the server sees a client that refuses its certificate as one that connected and left.
// Here OpenSSL checks the certificate during the handshake (SSL_VERIFY_PEER) against an IP
// address or a DNS name, whichever the target is, and refuses with an alert that tells the
// server why.
#pragma once

#include <kj/async-io.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/client.h"

namespace esd::client::internal {

struct TlsTarget {
  std::string address;  // as the caller gave it; for messages only
  // What the certificate must hold: an IPv4 or IPv6 address (checked against its IP address
  // names) or a DNS name (against its DNS names, wildcards allowed; also sent as SNI).
  std::string name;
  std::string ca_file;  // PEM certificate(s) to trust; empty: the system's store
};

struct TlsOutcome {
  kj::Own<kj::AsyncIoStream> stream;  // null when the handshake failed
  Error::ConnectProblem problem = Error::ConnectProblem::kNone;
  std::string message;  // for people: what went wrong, naming the target and the certificate
};

// Runs the TLS handshake as the client over `stream` (a connection to target.address).
// Resolves to the TLS stream once the certificate chains to a trusted one and holds
// target.name, else to the problem and a message saying what was expected and what the
// certificate holds; never rejects. The stream, once returned, is used like any other on
// this thread's event loop (one read and one write at a time, as kj requires).
kj::Promise<TlsOutcome> ConnectTls(kj::Own<kj::AsyncIoStream> stream, const TlsTarget& target);

// The host of an address as Client::Connect takes it: "HOST" of "HOST:PORT", "ADDR" of
// "[ADDR]:PORT" (IPv6), the address itself when it has no port; "" for "unix:PATH".
std::string HostOf(const std::string& address);

// The first bytes a server sent on a plain connection (protocol/transport.h). A TLS server
// answers a plain client with a TLS record (esd sends an alert), which no Cap'n Proto
// message starts with; it tells "this port speaks TLS" from "the server went away".
class FirstBytes {
 public:
  void Add(const kj::byte* bytes, size_t n);
  bool LookLikeTls() const;  // a TLS record header: content type 20..23, version 3.x

 private:
  std::array<kj::byte, 2> bytes_{};
  size_t size_ = 0;
};

// `stream`, recording the first bytes read from it in `first`, which must outlive it.
kj::Own<kj::AsyncIoStream> RecordFirstBytes(kj::Own<kj::AsyncIoStream> stream, FirstBytes& first);

}  // namespace esd::client::internal
