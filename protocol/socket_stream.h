// A TCP connection's byte stream that reads the socket once per arrival of bytes.
//
// kj's socket stream (0.9.2) reads until read() says EAGAIN before it waits for the socket:
// on a connection that carries one request at a time (esbench's W2, a client waiting for
// each answer), every request costs a second read that finds nothing, on both sides. A short
// read does not prove that the socket is empty (kj's own comment: a signal can cut a read
// short), so this stream asks the kernel instead: with TCP_INQ set, every recvmsg() reports
// in a control message the bytes the receive queue still holds (Linux 4.18; one or more
// after a FIN, so the end of the stream is read too). When it holds none, the stream waits
// for the socket's next edge, and arms that wait at once: bytes that arrive while nobody
// reads fulfil the wait rather than pass unseen.
//
// A read that waits for many bytes (at least 64 KiB more: a subscription's push, a large
// append) sets the socket's low-water mark (SO_RCVLOWAT) to them, so the kernel wakes it once
// they are all queued instead of once per arriving segment; a smaller read sets it back to 1
// before it waits. The mark never exceeds what the waiting read needs (it could not finish
// sooner), and the kernel wakes a reader below it at the end of the stream, on an error, or
// when the queue presses on memory. W4 in docs/performance.md has what it saves.
//
// Writes are kj's: sendmsg() (no SIGPIPE), and when the socket's buffer is full, a wait for
// room. Everything else a kj stream does (shutdown, socket options, addresses) is a syscall
// on the descriptor.
//
// Single-threaded, like every kj stream: use it on the event loop that made it.
#pragma once

#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/io.h>

#include <cstdint>

namespace esd::transport {

class SocketStream final : public kj::AsyncIoStream {
 public:
  // `fd`: a connected, non-blocking TCP socket with TCP_INQ set, owned from here on.
  SocketStream(kj::UnixEventPort& port, kj::AutoCloseFd fd);
  ~SocketStream() noexcept(false);

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override;
  // `pieces` and what they point to must stay valid until the promise resolves.
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  kj::Promise<void> whenWriteDisconnected() override;
  void shutdownWrite() override;
  void abortRead() override;
  void getsockopt(int level, int option, void* value, kj::uint* length) override;
  void setsockopt(int level, int option, const void* value, kj::uint length) override;
  void getsockname(struct sockaddr* addr, kj::uint* length) override;
  void getpeername(struct sockaddr* addr, kj::uint* length) override;
  kj::Maybe<int> getFd() const override { return fd_.get(); }

  // Reads that found the socket empty (EAGAIN): one per wake-up for bytes an earlier read
  // already took, which the kernel's edge reports late. Tests look at it.
  uint64_t empty_reads() const { return empty_reads_; }
  // recvmsg() calls, empty ones included. Tests look at it.
  uint64_t reads() const { return reads_; }

 private:
  kj::Promise<size_t> Read(kj::byte* out, size_t min_bytes, size_t max_bytes, size_t done);
  // Before a wait for `min_bytes` more: the receive queue's low-water mark (SO_RCVLOWAT) at
  // those bytes when they are many, else at 1 byte. It never exceeds what the waiting read
  // needs, so the wake-up it holds back is one the read could not have used.
  void WakeFor(size_t min_bytes);
  kj::Promise<void> Write(kj::ArrayPtr<const kj::byte> first, kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> more);

  kj::AutoCloseFd fd_;
  kj::UnixEventPort::FdObserver observer_;
  kj::Maybe<kj::Promise<void>> readable_;  // armed when a read left the receive queue empty
  kj::Maybe<kj::ForkedPromise<void>> write_disconnected_;
  uint64_t empty_reads_ = 0;
  uint64_t reads_ = 0;
  int low_water_ = 1;  // the socket's SO_RCVLOWAT as last set (0: unknown)
};

// `stream` as a SocketStream when it is a TCP socket (kj's, from a listener's accept() or a
// connect()): its descriptor is duplicated and `stream` closed. Anything else (a unix socket,
// TLS, an in-memory pipe), or when the duplicate or TCP_INQ fails (out of descriptors, an
// old kernel), comes back as it was: kj's stream reads correctly, with one more read per
// arrival.
kj::Own<kj::AsyncIoStream> AdoptTcpSocket(kj::Own<kj::AsyncIoStream> stream, kj::UnixEventPort& port);

// Keepalive on a TCP connection, for a peer that goes without a word (its machine lost power
// or its network): once the connection has been idle for `idle_seconds` (at most
// kMaxKeepAliveSeconds, Linux's bound; more is taken as that), the kernel probes the peer
// every KeepAliveInterval(idle_seconds) and ends the connection after kKeepAliveProbes
// unanswered probes. Reads and writes then fail (ETIMEDOUT). A peer that is alive answers
// the probes in its kernel, however long its application stays silent or leaves its
// receive window closed. (No TCP_USER_TIMEOUT: Linux applies it to zero-window probes too,
// so it would end a live subscriber that has not read for that long. Unacknowledged data
// to a vanished peer ends a connection after the kernel's retransmissions, tcp_retries2.)
// False for a stream that is not a TCP socket (a unix socket, an in-memory pipe), with
// nothing changed, or when the kernel refuses an option (errno says why); never throws, so
// that the accept loop cannot fail on it.
inline constexpr int kKeepAliveProbes = 3;
inline constexpr int kMaxKeepAliveSeconds = 32'767;
constexpr int KeepAliveInterval(int idle_seconds) { return idle_seconds >= 3 ? idle_seconds / 3 : 1; }
bool SetKeepAlive(kj::AsyncIoStream& stream, int idle_seconds);

}  // namespace esd::transport
