// systemd's readiness protocol: esd tells $NOTIFY_SOCKET READY=1 once it serves, as a unit
// with Type=notify (packaging/esd.service) needs.
#include "server/sd_notify.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd::server {
namespace {

// A datagram socket in the role of systemd's notification socket: a path, or an abstract
// name given as "@name". Sets $NOTIFY_SOCKET while it lives.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      ADD_FAILURE() << "cannot bind " << name << ": " << std::strerror(errno);
    }
    ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
  }
  // The next datagram; "" when none comes within 60 s (a bound on a hang, not a timing test).
  std::string Receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 60'000) <= 0) return "";
    char buf[256];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string name_;
  int fd_ = -1;
};

TEST(SdNotify, SendsTheStateToThePathInNotifySocket) {
  storage::testing::TempDir dir;
  NotifySocket socket((dir.path() / "notify").string());
  std::string error;
  ASSERT_TRUE(NotifyServiceManager("READY=1", &error)) << error;
  EXPECT_EQ(socket.Receive(), "READY=1");
}

TEST(SdNotify, SendsToAnAbstractName) {
  NotifySocket socket("@esd-sd-notify-test-" + std::to_string(::getpid()));
  std::string error;
  ASSERT_TRUE(NotifyServiceManager("STOPPING=1", &error)) << error;
  EXPECT_EQ(socket.Receive(), "STOPPING=1");
}

TEST(SdNotify, WithoutNotifySocketNothingIsSentAndAllIsWell) {
  ::unsetenv("NOTIFY_SOCKET");
  std::string error;
  EXPECT_TRUE(NotifyServiceManager("READY=1", &error));
  EXPECT_EQ(error, "");
}

TEST(SdNotify, ASocketNobodyListensOnIsAnErrorNamingIt) {
  storage::testing::TempDir dir;
  const std::string path = (dir.path() / "nobody").string();
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  std::string error;
  EXPECT_FALSE(NotifyServiceManager("READY=1", &error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(NotifyServiceManager("READY=1", &error));
  EXPECT_NE(error.find("relative/path"), std::string::npos) << error;
  ::unsetenv("NOTIFY_SOCKET");
}

TEST(SdNotify, EsdSaysReadyOnceItServesAndStoppingWhenItStops) {
  storage::testing::TempDir dir;
  NotifySocket socket((dir.path() / "notify").string());
  testing::EsdProcess esd(dir.path() / "data");  // inherits $NOTIFY_SOCKET
  EXPECT_EQ(socket.Receive(), "READY=1");
  // Ready means served: the health endpoint answers now.
  EXPECT_NE(testing::HttpGet(esd.http_address(), "/health").find("200"), std::string::npos);
  EXPECT_EQ(esd.Stop(SIGTERM), 0);
  EXPECT_EQ(socket.Receive(), "STOPPING=1");
}

}  // namespace
}  // namespace esd::server
