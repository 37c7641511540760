#include "client/tls.h"

#include <arpa/inet.h>
#include <kj/debug.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

#include "protocol/transport.h"

namespace esd::client::internal {

namespace {

// Plaintext encrypted per step of a write, and ciphertext read from the socket at a time:
// a 64 MiB message costs 64 KiB of buffers, not a second copy of itself.
constexpr size_t kChunk = 64 * 1024;

bool IsIpAddress(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// OpenSSL's reasons for the last failure on this thread (and empties its error queue).
std::string TakeOpenSslErrors() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!text.empty()) text += "; ";
    text += reason != nullptr ? reason : "error " + std::to_string(ERR_GET_REASON(e));
  }
  return text;
}

class FirstBytesStream final : public transport::ForwardingStream {
 public:
  FirstBytesStream(kj::Own<kj::AsyncIoStream> inner, FirstBytes& first)
      : ForwardingStream(kj::mv(inner)), first_(first) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    return inner_.tryRead(buffer, min_bytes, max_bytes).then([this, buffer](size_t n) {
      first_.Add(static_cast<const kj::byte*>(buffer), n);
      return n;
    });
  }

 private:
  FirstBytes& first_;
};

// TLS over `inner` with OpenSSL and two memory BIOs: what the server sent is written into
// `in_` as it arrives, what OpenSSL wants sent is taken from `out_` and written to `inner`
// in order (write_tail_), whether a write, a read (a TLS 1.3 key update answer) or the
// handshake produced it.
class TlsClientStream final : public transport::ForwardingStream {
 public:
  // Takes `ssl`, which must have no BIOs yet.
  TlsClientStream(kj::Own<kj::AsyncIoStream> inner, SSL* ssl)
      : ForwardingStream(kj::mv(inner)), ssl_(ssl), in_(BIO_new(BIO_s_mem())), out_(BIO_new(BIO_s_mem())) {
    KJ_ASSERT(in_ != nullptr && out_ != nullptr, "out of memory");
    SSL_set_bio(ssl_, in_, out_);  // the SSL owns them from here
    SSL_set_app_data(ssl_, this);  // for RememberCertificate
  }
  ~TlsClientStream() noexcept(false) {
    SSL_free(ssl_);
    if (certificate_ != nullptr) X509_free(certificate_);
  }

  // Resolves to true once the handshake is done and the certificate verified, to false when
  // OpenSSL refused it (error() and the accessors below say why).
  kj::Promise<bool> Handshake() {
    ERR_clear_error();
    const int r = SSL_connect(ssl_);
    if (r == 1) return Flush().then([] { return true; });  // TLS 1.3: our Finished
    if (SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) {
      return Flush().then([this] { return Fill(); }).then([this] { return Handshake(); });
    }
    error_ = TakeOpenSslErrors();
    // The alert OpenSSL queued tells the server why; a server that has gone cannot take it.
    return Flush().then([] { return false; }, [](kj::Exception&&) { return false; });
  }

  void NoteFailure(const kj::Exception& e) {
    error_ = e.getDescription().cStr();
    eof_ = eof_ || e.getType() == kj::Exception::Type::DISCONNECTED;  // a reset is an end too
  }
  const std::string& error() const { return error_; }
  bool eof() const { return eof_; }
  // The first bytes the server sent (up to 2), and how many it sent in all.
  kj::ArrayPtr<const kj::byte> first_bytes() const { return kj::arrayPtr(first_.data(), first_size_); }
  long verify_result() const { return SSL_get_verify_result(ssl_); }
  X509* certificate() const { return certificate_; }  // the server's, once it sent one

  // The verify callback: keeps the server's certificate for the messages, and lets OpenSSL
  // decide (`ok`).
  static int RememberCertificate(int ok, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* self = ssl == nullptr ? nullptr : static_cast<TlsClientStream*>(SSL_get_app_data(ssl));
    X509* leaf = X509_STORE_CTX_get0_cert(store);
    if (self != nullptr && self->certificate_ == nullptr && leaf != nullptr && X509_up_ref(leaf) == 1) {
      self->certificate_ = leaf;
    }
    return ok;
  }

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    return Read(static_cast<kj::byte*>(buffer), min_bytes, max_bytes, 0);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    auto pieces = kj::heapArray<kj::ArrayPtr<const kj::byte>>({kj::arrayPtr(static_cast<const kj::byte*>(buffer), size)});
    auto view = pieces.asPtr();
    return Write(view, 0, 0).attach(kj::mv(pieces));
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return Write(pieces, 0, 0);
  }
  void shutdownWrite() override {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify
    ERR_clear_error();
    shutdown_ = Flush().then([this] { inner_.shutdownWrite(); }).eagerlyEvaluate([](kj::Exception&&) {});
  }

 private:
  // Reads at least min_bytes (fewer only at the end), more if OpenSSL has them at hand.
  kj::Promise<size_t> Read(kj::byte* buffer, size_t min_bytes, size_t max_bytes, size_t done) {
    while (done < max_bytes) {
      size_t n = 0;
      ERR_clear_error();
      const int r = SSL_read_ex(ssl_, buffer + done, max_bytes - done, &n);
      if (r == 1) {
        done += n;
        continue;
      }
      switch (SSL_get_error(ssl_, r)) {
        case SSL_ERROR_WANT_READ:
          if (done >= min_bytes) return done;
          if (BIO_ctrl_pending(out_) > 0) Flush().detach([](kj::Exception&&) {});  // a failure shows in the next write
          return Fill().then([this, buffer, min_bytes, max_bytes, done] {
            return Read(buffer, min_bytes, max_bytes, done);
          });
        case SSL_ERROR_ZERO_RETURN:  // close_notify, or the end (SSL_OP_IGNORE_UNEXPECTED_EOF)
          return done;
        default:
          return KJ_EXCEPTION(DISCONNECTED, "TLS: reading from the server failed", TakeOpenSslErrors());
      }
    }
    return done;
  }

  // Encrypts up to kChunk bytes of `pieces` from (piece, offset), sends them, then the rest.
  kj::Promise<void> Write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces, size_t piece, size_t offset) {
    size_t taken = 0;
    while (piece < pieces.size() && taken < kChunk) {
      const auto p = pieces[piece];
      const size_t n = std::min(p.size() - offset, kChunk - taken);
      size_t written = 0;
      ERR_clear_error();
      if (n > 0 && (SSL_write_ex(ssl_, p.begin() + offset, n, &written) != 1 || written != n)) {
        return KJ_EXCEPTION(DISCONNECTED, "TLS: writing to the server failed", TakeOpenSslErrors());
      }
      offset += n;
      taken += n;
      if (offset == p.size()) ++piece, offset = 0;
    }
    auto sent = Flush();
    if (piece == pieces.size()) return sent;
    return sent.then([this, pieces, piece, offset] { return Write(pieces, piece, offset); });
  }

  // Sends what OpenSSL has queued, after everything queued before; resolves once it is sent.
  kj::Promise<void> Flush() {
    const size_t pending = BIO_ctrl_pending(out_);
    if (pending > 0) {
      auto bytes = kj::heapArray<kj::byte>(pending);
      KJ_ASSERT(BIO_read(out_, bytes.begin(), static_cast<int>(pending)) == static_cast<int>(pending));
      write_tail_ = write_tail_.addBranch()
                        .then([this, bytes = kj::mv(bytes)]() mutable {
                          const auto view = bytes.asPtr();
                          return inner_.write(view.begin(), view.size()).attach(kj::mv(bytes));
                        })
                        .fork();
    }
    return write_tail_.addBranch();
  }

  // Reads what the server sent next into in_.
  kj::Promise<void> Fill() {
    return inner_.tryRead(read_buffer_.begin(), 1, read_buffer_.size()).then([this](size_t n) {
      if (n == 0) {
        eof_ = true;
        BIO_set_mem_eof_return(in_, 0);  // from now on an end, not "try again"
        return;
      }
      for (size_t i = 0; i < n && first_size_ < first_.size(); ++i) first_[first_size_++] = read_buffer_[i];
      KJ_ASSERT(BIO_write(in_, read_buffer_.begin(), static_cast<int>(n)) == static_cast<int>(n));
    });
  }

  SSL* ssl_;
  BIO* in_;   // owned by ssl_
  BIO* out_;  // owned by ssl_
  X509* certificate_ = nullptr;
  kj::Array<kj::byte> read_buffer_ = kj::heapArray<kj::byte>(kChunk);
  std::array<kj::byte, 2> first_{};
  size_t first_size_ = 0;
  bool eof_ = false;
  std::string error_;
  // Declared last, destroyed first: their continuations use the members above.
  kj::ForkedPromise<void> write_tail_ = kj::Promise<void>(kj::READY_NOW).fork();
  kj::Promise<void> shutdown_ = nullptr;
};

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

// "DNS:a, IP:10.0.0.1", or what stands in for names when there are none.
std::string CertificateNames(X509* cert) {
  if (cert == nullptr) return "nothing (the server sent no certificate)";
  std::string names;
  auto* general = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; general != nullptr && i < sk_GENERAL_NAME_num(general); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(general, i);
    std::string one;
    if (n->type == GEN_DNS) {
      one = "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                 static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
    } else if (n->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(n->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = "?";
      if (len == 4 || len == 16) {
        ::inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(n->d.iPAddress), text, sizeof(text));
      }
      one = std::string("IP:") + text;
    }
    if (!one.empty()) names += (names.empty() ? "" : ", ") + one;
  }
  GENERAL_NAMES_free(general);
  if (!names.empty()) return names;
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
  return std::string("no DNS name or IP address (its subject is ") + subject + ")";
}

TlsOutcome Failed(Error::ConnectProblem problem, std::string message) {
  TlsOutcome out;
  out.problem = problem;
  out.message = std::move(message);
  return out;
}

TlsOutcome Describe(const TlsClientStream& tls, const TlsTarget& target) {
  using P = Error::ConnectProblem;
  const auto first = tls.first_bytes();
  if (first.size() > 0 && !transport::LooksLikeTlsRecord(first.begin(), first.size())) {
    return Failed(P::kServerSpeaksPlain, "esd at " + target.address +
                                             " does not speak TLS: it answered the TLS hello without TLS (bytes " +
                                             transport::HexBytes(first.begin(), first.size()) + ")");
  }
  const long verified = tls.verify_result();
  const std::string holds = CertificateNames(tls.certificate());
  if (verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return Failed(P::kCertificateName, "the certificate of esd at " + target.address + " is not for " +
                                           (IsIpAddress(target.name) ? "the IP address " : "the name ") +
                                           target.name + ": it is for " + holds);
  }
  if (verified != X509_V_OK) {
    return Failed(P::kCertificateTrust,
                  "the certificate of esd at " + target.address + " is not trusted: " +
                      X509_verify_cert_error_string(verified) + " (trusting " +
                      (target.ca_file.empty() ? "the system's certificate authorities" : target.ca_file) +
                      "; the certificate is for " + holds + ")");
  }
  if (tls.eof() && first.size() == 0) {
    return Failed(P::kTlsHandshake, "esd at " + target.address + " closed the connection during the TLS handshake");
  }
  return Failed(P::kTlsHandshake, "TLS handshake with " + target.address + " failed: " + tls.error());
}

}  // namespace

kj::Promise<TlsOutcome> ConnectTls(kj::Own<kj::AsyncIoStream> stream, const TlsTarget& target) {
  using P = Error::ConnectProblem;
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) return Failed(P::kTlsHandshake, "TLS: " + TakeOpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (target.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get()) != 1
                             : SSL_CTX_load_verify_locations(ctx.get(), target.ca_file.c_str(), nullptr) != 1) {
    return Failed(P::kOptions, target.ca_file.empty()
                                   ? "cannot load the system's certificate authorities: " + TakeOpenSslErrors()
                                   : "cannot read certificates to trust from " + target.ca_file + ": " +
                                         TakeOpenSslErrors());
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, &TlsClientStream::RememberCertificate);
  SSL* ssl = SSL_new(ctx.get());  // holds its own reference to ctx
  if (ssl == nullptr) return Failed(P::kTlsHandshake, "TLS: " + TakeOpenSslErrors());
  // An IP address is checked against the certificate's IP addresses and is no SNI name
  // (RFC 6066); a DNS name against its DNS names, and sent as SNI.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  const bool named = IsIpAddress(target.name)
                         ? X509_VERIFY_PARAM_set1_ip_asc(param, target.name.c_str()) == 1
                         : SSL_set_tlsext_host_name(ssl, target.name.c_str()) == 1 &&
                               X509_VERIFY_PARAM_set1_host(param, target.name.c_str(), 0) == 1;
  if (!named) {
    SSL_free(ssl);
    return Failed(P::kOptions, "cannot check a TLS certificate against \"" + target.name + "\": " + TakeOpenSslErrors());
  }
  auto tls = kj::heap<TlsClientStream>(kj::mv(stream), ssl);
  TlsClientStream& ref = *tls;
  return ref.Handshake()
      .catch_([&ref](kj::Exception&& e) {
        ref.NoteFailure(e);
        return false;
      })
      .then([tls = kj::mv(tls), target](bool ok) mutable -> TlsOutcome {
        if (!ok) return Describe(*tls, target);
        TlsOutcome out;
        out.stream = kj::mv(tls);
        return out;
      });
}

std::string HostOf(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return "";
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || address.find(':') != colon) return address;  // no port, or bare IPv6
  return address.substr(0, colon);
}

void FirstBytes::Add(const kj::byte* bytes, size_t n) {
  for (size_t i = 0; i < n && size_ < bytes_.size(); ++i) bytes_[size_++] = bytes[i];
}

bool FirstBytes::LookLikeTls() const { return transport::LooksLikeTlsRecord(bytes_.data(), size_); }

kj::Own<kj::AsyncIoStream> RecordFirstBytes(kj::Own<kj::AsyncIoStream> stream, FirstBytes& first) {
  return kj::heap<FirstBytesStream>(kj::mv(stream), first);
}

}  // namespace esd::client::internal
