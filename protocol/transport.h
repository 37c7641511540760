// Below the RPC: what esd's client and daemon share about the byte stream of a connection
// (docs/server.md, "TLS").
//
// Telling TLS and plain connections apart, from the first bytes either side reads:
// - A TLS client opens with a handshake record header: 16 03 xx. No Cap'n Proto message
//   starts so (its first word is a segment count, below 512), so the daemon knows a plain
//   client from its first 3 bytes (LooksLikeTlsHello).
// - The daemon answers a client that does not open so with kPlainClientAlert, a TLS alert
//   record, then closes. A plain client whose first bytes read are a TLS record header
//   (LooksLikeTlsRecord) knows that the port speaks TLS, and can say so instead of "lost
//   the connection". Any TLS server's alert reads so, not only esd's.
// - A TLS client whose hello is answered with bytes that are not a TLS record knows that the
//   port does not speak TLS.
#pragma once

#include <kj/async-io.h>
#include <kj/io.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace esd::transport {

// A fatal protocol_version alert (TLS 1.2 record): 15 = alert, 03 03, length 2, 02 = fatal,
// 46 = protocol_version.
inline constexpr kj::byte kPlainClientAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46};

// The daemon reads this many bytes to tell a TLS hello from anything else.
inline constexpr size_t kHelloSniffBytes = 3;

// The first `n` bytes of a connection (n <= kHelloSniffBytes) are, or could be the start of,
// a TLS handshake record header.
inline bool LooksLikeTlsHello(const kj::byte* b, size_t n) {
  return (n < 1 || b[0] == 0x16) && (n < 2 || b[1] == 0x03);
}

// `b` (n >= 2 bytes) starts with a TLS record header: content type 20..23 (change cipher
// spec, alert, handshake, application data), major version 3.
inline bool LooksLikeTlsRecord(const kj::byte* b, size_t n) { return n >= 2 && b[0] >= 20 && b[0] <= 23 && b[1] == 3; }

// The first bytes of a connection that speaks the framed protocol (protocol/frames.capnp),
// after TLS if the port speaks TLS: "ESF1". A Cap'n Proto RPC connection starts with a
// segment count (below 512 as a little-endian word), so the daemon tells the two apart by
// these four bytes.
inline constexpr kj::byte kFramesMagic[] = {'E', 'S', 'F', '1'};
inline constexpr size_t kProtocolSniffBytes = sizeof(kFramesMagic);
inline bool IsFramesMagic(const kj::byte* b, size_t n) {
  return n == kProtocolSniffBytes && std::memcmp(b, kFramesMagic, n) == 0;
}

// "16 03 01": bytes for a log line or an error message.
inline std::string HexBytes(const kj::byte* b, size_t n) {
  std::string text;
  char one[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(one, sizeof(one), "%s%02x", i == 0 ? "" : " ", b[i]);
    text += one;
  }
  return text;
}

// A stream that passes everything to `inner` but what a subclass overrides: the base of the
// wrappers that look at a connection's bytes on their way.
class ForwardingStream : public kj::AsyncIoStream {
 public:
  // `inner` must outlive the ForwardingStream.
  explicit ForwardingStream(kj::AsyncIoStream& inner) : inner_(inner) {}
  // Owns `inner`.
  explicit ForwardingStream(kj::Own<kj::AsyncIoStream> inner) : inner_(*inner), owned_(kj::mv(inner)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    return inner_.tryRead(buffer, min_bytes, max_bytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override { return inner_.write(buffer, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_.write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_.whenWriteDisconnected(); }
  void shutdownWrite() override { inner_.shutdownWrite(); }
  void abortRead() override { inner_.abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_.getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner_.setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override { inner_.getsockname(addr, length); }
  void getpeername(struct sockaddr* addr, kj::uint* length) override { inner_.getpeername(addr, length); }

 protected:
  kj::AsyncIoStream& inner_;

 private:
  kj::Own<kj::AsyncIoStream> owned_;  // null unless owned
};

// `inner`, with `prefix` (bytes already read from it) read first: what the daemon read to
// tell protocols apart goes back in front of the stream.
class PrefixedStream final : public ForwardingStream {
 public:
  PrefixedStream(kj::Own<kj::AsyncIoStream> inner, kj::Array<kj::byte> prefix)
      : ForwardingStream(kj::mv(inner)), prefix_(kj::mv(prefix)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    if (taken_ == prefix_.size()) return inner_.tryRead(buffer, min_bytes, max_bytes);
    const size_t n = std::min(max_bytes, prefix_.size() - taken_);
    std::memcpy(buffer, prefix_.begin() + taken_, n);
    taken_ += n;
    if (n >= min_bytes) return n;
    return inner_.tryRead(static_cast<kj::byte*>(buffer) + n, min_bytes - n, max_bytes - n).then([n](size_t m) {
      return n + m;
    });
  }

 private:
  kj::Array<kj::byte> prefix_;
  size_t taken_ = 0;
};

// Appends what is written to a vector: the framed protocol's peers (server/framed_connection.h,
// client/appender.h) serialize each message into the bytes of their next write.
class ByteVectorOutput final : public kj::OutputStream {
 public:
  explicit ByteVectorOutput(std::vector<kj::byte>& to) : to_(to) {}
  void write(const void* buffer, size_t size) override {
    const auto* b = static_cast<const kj::byte*>(buffer);
    to_.insert(to_.end(), b, b + size);
  }

 private:
  std::vector<kj::byte>& to_;
};

// Reads ahead into a buffer of its own. Cap'n Proto 0.9.2 reads each message with two reads
// (its first word, then the rest) and each read is a syscall: three or four per call on a
// busy connection (the call, its Finish, the EAGAIN that ends a burst). Reading up to
// kBufferBytes at once serves several small messages from one syscall. A read larger than the
// buffer goes straight into the caller's memory, so large messages are not copied twice.
class BufferedReads : public ForwardingStream {
 public:
  static constexpr size_t kBufferBytes = 8192;
  using ForwardingStream::ForwardingStream;

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    auto* out = static_cast<kj::byte*>(buffer);
    const size_t n = Take(out, max_bytes);
    if (n >= min_bytes) return n;
    return ReadMore(out + n, min_bytes - n, max_bytes - n, n);
  }

 private:
  size_t Take(kj::byte* out, size_t max_bytes) {
    const size_t n = std::min(max_bytes, end_ - begin_);
    if (n > 0) std::memcpy(out, buffer_ + begin_, n);
    begin_ += n;
    return n;
  }
  // The buffer is empty here. `done`: bytes already given to the caller.
  kj::Promise<size_t> ReadMore(kj::byte* out, size_t min_bytes, size_t max_bytes, size_t done) {
    if (max_bytes >= kBufferBytes) {
      return ForwardingStream::tryRead(out, min_bytes, max_bytes).then([done](size_t got) { return done + got; });
    }
    return ForwardingStream::tryRead(buffer_, min_bytes, kBufferBytes).then([this, out, max_bytes, done](size_t got) {
      begin_ = 0;
      end_ = got;
      return done + Take(out, max_bytes);  // fewer than min_bytes only at the end of the stream
    });
  }

  kj::byte buffer_[kBufferBytes];
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace esd::transport
