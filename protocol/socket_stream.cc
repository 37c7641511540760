#include "protocol/socket_stream.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <kj/debug.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace esd::transport {

namespace {

// At most this many pieces go to one sendmsg(); the rest after it.
constexpr size_t kMaxPieces = 64;

// A read that waits for at least this many more bytes asks the kernel to wake it only once
// they are all queued (SO_RCVLOWAT); a smaller one is not worth the two setsockopt() calls.
constexpr size_t kLowWaterMin = 64 * 1024;

// One recvmsg(): the bytes read (0 at the end of the stream, -1 when there were none, EAGAIN),
// and in `left` what the receive queue still holds (1 when the kernel did not say).
ssize_t Receive(int fd, kj::byte* out, size_t max_bytes, int& left) {
  iovec iov{out, max_bytes};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
    KJ_FAIL_SYSCALL("recvmsg", errno);
  }
  left = 1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      std::memcpy(&left, CMSG_DATA(c), sizeof(int));
    }
  }
  return n;
}

}  // namespace

SocketStream::SocketStream(kj::UnixEventPort& port, kj::AutoCloseFd fd)
    : fd_(kj::mv(fd)), observer_(port, fd_.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ_WRITE) {}

// The observer leaves the event port before the descriptor closes (members go in reverse).
SocketStream::~SocketStream() noexcept(false) = default;

kj::Promise<size_t> SocketStream::tryRead(void* buffer, size_t min_bytes, size_t max_bytes) {
  return Read(static_cast<kj::byte*>(buffer), min_bytes, max_bytes, 0);
}

kj::Promise<size_t> SocketStream::Read(kj::byte* out, size_t min_bytes, size_t max_bytes, size_t done) {
  KJ_IF_MAYBE(armed, readable_) {
    WakeFor(min_bytes);
    auto wait = kj::mv(*armed);
    readable_ = nullptr;
    return wait.then([this, out, min_bytes, max_bytes, done] { return Read(out, min_bytes, max_bytes, done); });
  }
  for (;;) {
    int left = 1;
    const ssize_t n = Receive(fd_.get(), out, max_bytes, left);
    ++reads_;
    if (n < 0) {  // woken for bytes an earlier read took: wait for the next edge
      ++empty_reads_;
      readable_ = observer_.whenBecomesReadable();
      return Read(out, min_bytes, max_bytes, done);
    }
    if (n == 0) return done;  // the end of the stream (or max_bytes == 0)
    const auto got = static_cast<size_t>(n);
    done += got;
    out += got;
    max_bytes -= got;
    min_bytes = min_bytes > got ? min_bytes - got : 0;
    // Empty now: whatever comes next raises an edge, which the armed wait keeps.
    if (left == 0) readable_ = observer_.whenBecomesReadable();
    if (min_bytes == 0) return done;
    if (readable_ != nullptr) return Read(out, min_bytes, max_bytes, done);
  }
}

void SocketStream::WakeFor(size_t min_bytes) {
  // The kernel caps it below the receive buffer's limit, and wakes a reader before it is
  // reached when the queue presses on memory or the window closes: never a hang.
  const int want = min_bytes >= kLowWaterMin ? static_cast<int>(std::min<size_t>(min_bytes, INT_MAX)) : 1;
  if (want == low_water_) return;
  if (::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) == 0) {
    low_water_ = want;
  } else {
    low_water_ = 0;  // unknown: set it again before the next wait
  }
}

kj::Promise<void> SocketStream::write(const void* buffer, size_t size) {
  return Write(kj::arrayPtr(static_cast<const kj::byte*>(buffer), size), nullptr);
}

kj::Promise<void> SocketStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  if (pieces.size() == 0) return kj::READY_NOW;
  return Write(pieces[0], pieces.slice(1, pieces.size()));
}

kj::Promise<void> SocketStream::Write(kj::ArrayPtr<const kj::byte> first,
                                      kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> more) {
  for (;;) {
    iovec iov[kMaxPieces];
    size_t count = 0, total = 0;
    iov[count++] = {const_cast<kj::byte*>(first.begin()), first.size()};
    total += first.size();
    for (size_t i = 0; i < more.size() && count < kMaxPieces; ++i) {
      iov[count++] = {const_cast<kj::byte*>(more[i].begin()), more[i].size()};
      total += more[i].size();
    }
    if (total == 0 && count == 1 + more.size()) return kj::READY_NOW;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n;
    do {
      n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) KJ_FAIL_SYSCALL("sendmsg", errno);
      return observer_.whenBecomesWritable().then([this, first, more] { return Write(first, more); });
    }
    // Drop what was sent. What is left is written again at once: a short write usually means
    // a full buffer, which the next sendmsg's EAGAIN then says for certain.
    auto sent = static_cast<size_t>(n);
    while (sent >= first.size() && more.size() > 0) {
      sent -= first.size();
      first = more[0];
      more = more.slice(1, more.size());
    }
    first = first.slice(std::min(sent, first.size()), first.size());
    if (first.size() == 0 && more.size() == 0) return kj::READY_NOW;
  }
}

kj::Promise<void> SocketStream::whenWriteDisconnected() {
  KJ_IF_MAYBE(fork, write_disconnected_) { return fork->addBranch(); }
  auto fork = observer_.whenWriteDisconnected().fork();
  auto branch = fork.addBranch();
  write_disconnected_ = kj::mv(fork);
  return branch;
}

void SocketStream::shutdownWrite() { KJ_SYSCALL(::shutdown(fd_.get(), SHUT_WR)); }

void SocketStream::abortRead() { KJ_SYSCALL(::shutdown(fd_.get(), SHUT_RD)); }

void SocketStream::getsockopt(int level, int option, void* value, kj::uint* length) {
  socklen_t n = *length;
  KJ_SYSCALL(::getsockopt(fd_.get(), level, option, value, &n));
  *length = n;
}

void SocketStream::setsockopt(int level, int option, const void* value, kj::uint length) {
  KJ_SYSCALL(::setsockopt(fd_.get(), level, option, value, length));
}

void SocketStream::getsockname(struct sockaddr* addr, kj::uint* length) {
  socklen_t n = *length;
  KJ_SYSCALL(::getsockname(fd_.get(), addr, &n));
  *length = n;
}

void SocketStream::getpeername(struct sockaddr* addr, kj::uint* length) {
  socklen_t n = *length;
  KJ_SYSCALL(::getpeername(fd_.get(), addr, &n));
  *length = n;
}

kj::Own<kj::AsyncIoStream> AdoptTcpSocket(kj::Own<kj::AsyncIoStream> stream, kj::UnixEventPort& port) {
  int fd = -1;
  KJ_IF_MAYBE(f, stream->getFd()) { fd = *f; }
  if (fd < 0) return stream;
  // Only a TCP socket takes TCP_INQ (a unix socket says EOPNOTSUPP).
  const int on = 1;
  if (::setsockopt(fd, SOL_TCP, TCP_INQ, &on, sizeof(on)) != 0) return stream;
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // O_NONBLOCK is the socket's, kept
  if (copy < 0) return stream;
  stream = nullptr;  // kj's observer leaves the event port, its descriptor closes
  return kj::heap<SocketStream>(port, kj::AutoCloseFd(copy));
}

bool SetKeepAlive(kj::AsyncIoStream& stream, int idle_seconds) {
  int fd = -1;
  KJ_IF_MAYBE(f, stream.getFd()) { fd = *f; }
  int protocol = 0;
  socklen_t length = sizeof(protocol);
  if (fd < 0 || idle_seconds <= 0 || ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) != 0 ||
      protocol != IPPROTO_TCP) {
    return false;
  }
  const int idle = std::min(idle_seconds, kMaxKeepAliveSeconds);
  const int on = 1, interval = KeepAliveInterval(idle), probes = kKeepAliveProbes;
  return ::setsockopt(fd, SOL_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) == 0 &&
         ::setsockopt(fd, SOL_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) == 0 &&
         ::setsockopt(fd, SOL_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0;
}

}  // namespace esd::transport
