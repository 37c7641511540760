#include "server/tls_acceptor.h"

#include <arpa/inet.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "log/log.h"
#include "protocol/transport.h"

namespace esd::server {

namespace {

// The first bytes of a connection are those of a TLS hello (protocol/transport.h).
bool OpensWithTlsHello(const kj::byte* b, size_t n) {
  return n == transport::kHelloSniffBytes && transport::LooksLikeTlsHello(b, n);
}

// What a plain client may send after the alert is read and dropped, up to this much, before
// the socket is closed: closing it with unread bytes would reset the connection, and the
// reset may reach the client before it has read the alert.
constexpr size_t kDrainBytes = 64 * 1024;

std::string PeerAddress(kj::AsyncIoStream& stream) {
  sockaddr_storage addr{};
  kj::uint len = sizeof(addr);
  if (kj::runCatchingExceptions([&] { stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &len); }) != nullptr) {
    return "a client";
  }
  char host[INET6_ADDRSTRLEN] = "?";
  char text[INET6_ADDRSTRLEN + 16];
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    std::snprintf(text, sizeof(text), "%s:%u", host, static_cast<unsigned>(ntohs(a->sin_port)));
    return text;
  }
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    std::snprintf(text, sizeof(text), "[%s]:%u", host, static_cast<unsigned>(ntohs(a->sin6_port)));
    return text;
  }
  return "a unix socket client";
}

// Why a handshake failed, in a few words. kj reports OpenSSL's errors as
// "OpenSSL error; message = error:0A000418:SSL routines::tlsv1 alert unknown ca".
std::string Reason(const kj::Exception& e) {
  constexpr std::string_view kClosed = "the client closed the connection during the handshake";
  if (e.getType() == kj::Exception::Type::DISCONNECTED) return std::string(kClosed);
  std::string text = e.getDescription().cStr();
  text = text.substr(0, text.find('\n'));
  const size_t at = text.find("message = ");
  if (at == std::string::npos) return text;
  text = text.substr(text.rfind(':') + 1);  // past "error:CODE:LIB:FUNC:"
  if (text.find("unexpected eof") != std::string::npos) return std::string(kClosed);
  if (text.find("alert") != std::string::npos) {
    const bool certificate = text.find("certificate") != std::string::npos || text.find("unknown ca") != std::string::npos;
    return (certificate ? "the client refused the certificate (" : "the client ended the handshake (") + text + ")";
  }
  return "TLS: " + text;
}

kj::Promise<void> Drain(kj::AsyncIoStream& stream, size_t left) {
  auto buffer = kj::heapArray<kj::byte>(4096);
  kj::byte* at = buffer.begin();
  const size_t size = buffer.size();
  return stream.tryRead(at, 1, size).then([&stream, left, buffer = kj::mv(buffer)](size_t n) -> kj::Promise<void> {
    if (n == 0 || n >= left) return kj::READY_NOW;
    return Drain(stream, left - n);
  });
}

kj::TlsContext::Options ContextOptions(const kj::TlsKeypair& keypair) {
  kj::TlsContext::Options options;
  options.defaultKeypair = keypair;
  return options;
}

}  // namespace

struct TlsAcceptor::Attempt {
  enum class Kind { kDone, kSilent, kNotTls, kFailed };
  Kind kind;
  std::string reason;                 // kNotTls, kFailed
  kj::Own<kj::AsyncIoStream> stream;  // kDone: the TLS stream; kNotTls: the plain one, to answer
  static Attempt Of(Kind kind, std::string reason = "", kj::Own<kj::AsyncIoStream> stream = {}) {
    return Attempt{kind, std::move(reason), kj::mv(stream)};
  }
};

TlsAcceptor::TlsAcceptor(const std::string& cert_pem, const std::string& key_pem, kj::Timer& timer,
                         std::atomic<uint64_t>& failures)
    : keypair_{kj::TlsPrivateKey(key_pem.c_str()), kj::TlsCertificate(cert_pem.c_str())},
      context_(ContextOptions(keypair_)),
      timer_(timer),
      failures_(failures),
      log_() {}

TlsAcceptor::~TlsAcceptor() noexcept(false) = default;

kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> TlsAcceptor::Handshake(kj::Own<kj::AsyncIoStream> stream) {
  using Kind = Attempt::Kind;
  std::string peer = PeerAddress(*stream);
  // The first bytes tell a TLS client from a plain one before OpenSSL sees them (OpenSSL
  // closes on a plain client without a word); then they are read again, as the hello's.
  auto first = kj::heapArray<kj::byte>(transport::kHelloSniffBytes);
  kj::byte* at = first.begin();
  kj::AsyncIoStream& raw = *stream;
  kj::Promise<Attempt> attempt =
      raw.tryRead(at, transport::kHelloSniffBytes, transport::kHelloSniffBytes)
          .catch_([](kj::Exception&&) -> size_t { return 0; })  // reset before a word: as silent
          .then([this, stream = kj::mv(stream), first = kj::mv(first)](size_t n) mutable -> kj::Promise<Attempt> {
            if (n == 0) return Attempt::Of(Kind::kSilent);
            if (n < transport::kHelloSniffBytes && transport::LooksLikeTlsHello(first.begin(), n)) {
              return Attempt::Of(Kind::kFailed, "the client closed the connection during the handshake");
            }
            if (!OpensWithTlsHello(first.begin(), n)) {
              return Attempt::Of(Kind::kNotTls,
                                 "the client did not open with a TLS hello (its first bytes: " +
                                     transport::HexBytes(first.begin(), n) + "; a client without TLS?); it was answered with a TLS alert",
                                 kj::mv(stream));
            }
            return context_.wrapServer(kj::heap<transport::PrefixedStream>(kj::mv(stream), kj::mv(first)))
                .then([](kj::Own<kj::AsyncIoStream> tls) { return Attempt::Of(Kind::kDone, "", kj::mv(tls)); });
          })
          .catch_([](kj::Exception&& e) { return Attempt::Of(Kind::kFailed, Reason(e)); })
          .exclusiveJoin(timer_.afterDelay(kHandshakeTimeout).then([] {
            return Attempt::Of(Kind::kFailed, "no TLS handshake within " +
                                                  std::to_string(kHandshakeTimeout / kj::SECONDS) + " s");
          }));
  return attempt.then(
      [this, peer = kj::mv(peer)](Attempt a) mutable -> kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> {
        using Result = kj::Maybe<kj::Own<kj::AsyncIoStream>>;
        switch (a.kind) {
          case Kind::kDone:
            return Result(kj::mv(a.stream));
          case Kind::kSilent:
            return Result(nullptr);
          case Kind::kNotTls:
            Failed(peer, a.reason);  // before the answer: once the client has it, the line is out
            return AnswerPlainClient(kj::mv(a.stream)).then([] { return Result(nullptr); });
          case Kind::kFailed:
            Failed(peer, a.reason);
            return Result(nullptr);
        }
        KJ_UNREACHABLE;
      });
}

kj::Promise<void> TlsAcceptor::AnswerPlainClient(kj::Own<kj::AsyncIoStream> stream) {
  kj::AsyncIoStream& s = *stream;
  return s.write(transport::kPlainClientAlert, sizeof(transport::kPlainClientAlert))
      .then([&s] {
        s.shutdownWrite();
        return Drain(s, kDrainBytes);
      })
      .exclusiveJoin(timer_.afterDelay(kHandshakeTimeout))
      .catch_([](kj::Exception&&) {})
      .attach(kj::mv(stream));
}

void TlsAcceptor::Failed(const std::string& peer, const std::string& reason) {
  ++failures_;
  if (const uint64_t n = log_.Failed()) {
    log::Warn("TLS handshake with {} failed: {} ({} failures since the last such line, at most one such line per "
              "10 s; esd_tls_handshake_failures_total counts them all)",
              peer, reason, n);
  }
}

}  // namespace esd::server
