// client/client.cc pieces that need no daemon.
#include "client/client.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

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

}  // namespace
}  // namespace esd::client
