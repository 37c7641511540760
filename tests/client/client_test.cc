// client/client.cc pieces that need no daemon.
#include "client/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <set>
#include <string>
#include <thread>

namespace esd::client {
namespace {

TEST(NewEventId, IdsAreVersion4UuidsAndDoNotRepeat) {
  std::set<EventId> seen;
  for (int i = 0; i < 10'000; ++i) {
    const EventId id = NewEventId();
    EXPECT_EQ(id[6] >> 4, 4) << "version 4";
    EXPECT_EQ(id[8] >> 6, 2) << "RFC 4122 variant";
    EXPECT_TRUE(seen.insert(id).second) << FormatEventId(id);
  }
}

// A process that forks after it drew ids (a pre-forking server) must not hand its children
// the same sequence: the same id from two processes reads to esd as a retry of one append.
TEST(NewEventId, AForkedChildDrawsIdsOfItsOwn) {
  (void)NewEventId();  // this thread's generator is seeded before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const EventId id = NewEventId();
    _exit(::write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  const EventId mine = NewEventId();
  EventId childs{};
  EXPECT_EQ(::read(fds[0], childs.data(), childs.size()), static_cast<ssize_t>(childs.size()));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(FormatEventId(mine), FormatEventId(childs)) << "the child repeated the parent's next id";
}

// A server whose machine loses power or its network sends no FIN and no reset. This one
// (a plain socket on loopback) takes the connection, reads the client's first messages (the
// login), and from then on drops everything that arrives for it (a socket filter that
// accepts nothing), as a powered-off machine would. The client, waiting for the login's
// answer, must learn that the server is gone: its keepalive probes go unanswered.
TEST(ClientKeepAlive, AConnectionToAServerThatVanishedSilentlyFailsAsDisconnected) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);

  // The client on a thread of its own: its Connect waits for an answer that never comes.
  std::promise<std::string> outcome;
  std::future<std::string> done = outcome.get_future();
  std::thread client([&outcome, port = ntohs(address.sin_port)] {
    ConnectOptions options;
    options.address = "127.0.0.1:" + std::to_string(port);
    options.keepalive_seconds = 1;
    try {
      (void)Client::Connect(options);
      outcome.set_value("connected");
    } catch (const Error& e) {
      outcome.set_value(std::string(e.kind() == Error::Kind::kDisconnected ? "disconnected: " : "other error: ") +
                        e.what());
    }
  });
  // No ASSERT from here to the join: the thread must be joined (or detached) on every path.
  const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(listener);
  char first[64];
  const bool login_read = server >= 0 && ::read(server, first, sizeof(first)) > 0;
  sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
  sock_fprog program{1, &drop};
  const bool silent =
      login_read && ::setsockopt(server, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) == 0;
  EXPECT_TRUE(silent) << "the server could not go silent: " << std::strerror(errno);
  if (!silent && server >= 0) ::close(server);  // a FIN ends the client's wait

  // A bound, not a timing: without keepalive the client would wait for good.
  const bool ended = done.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  if (ended) {
    client.join();
    const std::string what = done.get();
    EXPECT_EQ(what.rfind("disconnected: ", 0), 0u) << what;
  } else {
    client.detach();  // blocked for good; the process ends it
    ADD_FAILURE() << "the client still waits 60 s after its server vanished";
  }
  if (silent) ::close(server);
}
}  // namespace
}  // namespace esd::client
