#include "server/http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace esd::server {
namespace {

// A bound on every blocking read, only so that a broken server fails the test instead of
// hanging it; nothing here depends on how fast the server is.
constexpr int kHangGuardSeconds = 30;

class Client {
 public:
  explicit Client(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket");
    timeval tv{kHangGuardSeconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect");
    }
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // False when the server has closed or reset the connection.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        ended_by_server_ = errno == EPIPE || errno == ECONNRESET;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // True once the server has closed or reset the connection (not when a read only timed
  // out: a server that never answers is not one that refused).
  bool EndedByServer() const { return ended_by_server_; }

  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
  };

  // One response; for a HEAD request the body is not read, whatever Content-Length says.
  // nullopt when the connection ends first.
  std::optional<Response> Read(bool head = false) {
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Response res;
    std::istringstream lines(pending_.substr(0, end + 2));
    pending_.erase(0, end + 4);
    std::string line;
    std::getline(lines, line);
    if (line.compare(0, 7, "HTTP/1.") != 0 || line.size() < 12) return std::nullopt;
    res.status = std::stoi(line.substr(9, 3));
    while (std::getline(lines, line) && line.size() > 1) {
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value = line.find_first_not_of(' ', colon + 1);
      res.headers[name] = line.substr(value, line.size() - 1 - value);  // without the \r
    }
    size_t length = res.headers.count("content-length") ? std::stoul(res.headers["content-length"]) : 0;
    if (head) length = 0;
    while (pending_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    res.body = pending_.substr(0, length);
    pending_.erase(0, length);
    return res;
  }

  // True when the server closes (or resets) the connection with nothing more to read.
  bool ReadsEnd() {
    while (Fill()) {
    }
    return pending_.empty() && ended_by_server_;
  }

 private:
  bool Fill() {
    char buf[4096];
    errno = 0;
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) ended_by_server_ = true;
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string pending_;
  bool ended_by_server_ = false;
};

std::string Get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n" + std::string(extra) + "\r\n";
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServer::Options options = {}) {
    options.address = "127.0.0.1:0";
    if (options.routes.empty()) {
      options.routes["/health"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
    }
    std::string error;
    server_ = HttpServer::Start(std::move(options), &error);
    ASSERT_NE(server_, nullptr) << error;
    ASSERT_NE(server_->port(), 0);
  }
  // One request on a connection of its own.
  std::optional<Client::Response> Exchange(std::string_view request) {
    Client client(server_->port());
    if (!client.Send(request)) return std::nullopt;
    return client.Read();
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, GetOfRouteReturnsHandlersResponse) {
  HttpServer::Options options;
  options.routes["/metrics"] = [] { return HttpResponse{200, "text/plain; version=0.0.4", "up 1\n"}; };
  options.routes["/health"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  StartServer(std::move(options));
  auto res = Exchange(Get("/metrics"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "up 1\n");
  EXPECT_EQ(res->headers["content-type"], "text/plain; version=0.0.4");
}

TEST_F(HttpServerTest, QueryStringIsIgnoredForRouting) {
  StartServer();
  auto res = Exchange(Get("/health?verbose=1"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  StartServer();
  auto res = Exchange(Get("/nope"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_FALSE(res->body.empty());
}

TEST_F(HttpServerTest, PostIs405WithAllowHeader) {
  StartServer();
  auto res = Exchange("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->headers["allow"], "GET, HEAD");
}

TEST_F(HttpServerTest, HandlerThatThrowsIs500) {
  HttpServer::Options options;
  options.routes["/boom"] = []() -> HttpResponse { throw std::runtime_error("boom"); };
  StartServer(std::move(options));
  auto res = Exchange(Get("/boom"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
}

TEST_F(HttpServerTest, HeadGetsHeadersButNoBody) {
  StartServer();
  Client client(server_->port());
  // The GET right behind the HEAD would be misread if any body bytes followed the HEAD's headers.
  ASSERT_TRUE(client.Send("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n" + Get("/health")));
  auto head = client.Read(/*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-length"], "3");
  auto get = client.Read();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "ok\n");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  Client client(server_->port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.Send(Get("/health")));
    auto res = client.Read();
    ASSERT_TRUE(res) << "request " << i;
    EXPECT_EQ(res->body, "ok\n");
  }
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterResponse) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.Send("GET /health HTTP/1.0\r\n\r\n"));
  auto res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "ok\n");
  EXPECT_TRUE(client.ReadsEnd());
}

TEST_F(HttpServerTest, Http10KeepAliveIsHonoured) {
  StartServer();
  Client client(server_->port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.Send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto res = client.Read();
    ASSERT_TRUE(res) << "request " << i;
    EXPECT_EQ(res->body, "ok\n");
  }
}

TEST_F(HttpServerTest, MalformedRequestGets400AndServerServesOthersAfterwards) {
  StartServer();
  {
    Client bad(server_->port());
    ASSERT_TRUE(bad.Send("THIS IS NOT HTTP\r\n\r\n"));
    auto res = bad.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_TRUE(bad.ReadsEnd());
  }
  auto res = Exchange(Get("/health"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderIsRefused) {
  StartServer();
  Client client(server_->port());
  // The server may answer 431 and close while we are still sending, so a failed send or a
  // reset in place of the response are also a refusal; silence (the read timing out) is not.
  client.Send(Get("/health", "X-Big: " + std::string(100 * 1024, 'a') + "\r\n"));
  auto res = client.Read();
  if (res) {
    EXPECT_EQ(res->status, 431);
    EXPECT_TRUE(client.ReadsEnd()) << "the connection is closed after the refusal";
  } else {
    EXPECT_TRUE(client.EndedByServer()) << "no answer at all, and the connection was not closed";
  }
}

TEST_F(HttpServerTest, SilentClientDoesNotBlockAnother) {
  StartServer();
  Client silent(server_->port());
  Client half(server_->port());
  ASSERT_TRUE(half.Send("GET /hea"));
  auto res = Exchange(Get("/health"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "ok\n");
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterTimeout) {
  HttpServer::Options options;
  options.idle_timeout = std::chrono::milliseconds(50);
  StartServer(std::move(options));
  Client client(server_->port());
  ASSERT_TRUE(client.Send("GET /hea"));
  EXPECT_TRUE(client.ReadsEnd());
}

TEST_F(HttpServerTest, ManyConcurrentClientsAreAllAnswered) {
  std::atomic<int> calls{0};
  HttpServer::Options options;
  options.routes["/health"] = [&calls] {
    calls.fetch_add(1);
    return HttpResponse{200, "text/plain", "ok\n"};
  };
  StartServer(std::move(options));
  constexpr int kThreads = 20;
  constexpr int kRequests = 10;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads reuse one connection, half open one per request.
      try {
        std::optional<Client> shared;
        if (t % 2 == 0) shared.emplace(server_->port());
        for (int i = 0; i < kRequests; ++i) {
          std::optional<Client> own;
          if (!shared) own.emplace(server_->port());
          Client& c = shared ? *shared : *own;
          if (!c.Send(Get("/health"))) continue;
          auto res = c.Read();
          if (res && res->status == 200 && res->body == "ok\n") answered.fetch_add(1);
        }
      } catch (const std::exception&) {
        // Counted as unanswered below.
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), kThreads * kRequests);
  EXPECT_EQ(calls.load(), kThreads * kRequests);
}

TEST_F(HttpServerTest, StopIsIdempotentAndReleasesThePort) {
  StartServer();
  uint16_t port = server_->port();
  {
    Client client(port);  // an open connection must not hold Stop up
    ASSERT_TRUE(client.Send(Get("/health")));
    ASSERT_TRUE(client.Read());
    server_->Stop();
    server_->Stop();
    EXPECT_TRUE(client.ReadsEnd());
  }
  server_.reset();
  HttpServer::Options options;
  options.address = "127.0.0.1:" + std::to_string(port);
  std::string error;
  auto again = HttpServer::Start(std::move(options), &error);
  ASSERT_NE(again, nullptr) << error;
  EXPECT_EQ(again->port(), port);
}

TEST_F(HttpServerTest, BusyPortFailsWithError) {
  StartServer();
  HttpServer::Options options;
  options.address = "127.0.0.1:" + std::to_string(server_->port());
  std::string error;
  EXPECT_EQ(HttpServer::Start(std::move(options), &error), nullptr);
  EXPECT_FALSE(error.empty());
}

TEST(HttpServerAddressTest, MalformedOrUnresolvableAddressesFail) {
  for (std::string address : {"nonsense", "127.0.0.1", "127.0.0.1:99999", "no.such.host.invalid:0", "[::1:0"}) {
    HttpServer::Options options;
    options.address = address;
    std::string error;
    EXPECT_EQ(HttpServer::Start(std::move(options), &error), nullptr) << address;
    EXPECT_NE(error.find(address), std::string::npos) << error;
  }
}

TEST(HttpServerAddressTest, LocalhostResolves) {
  HttpServer::Options options;
  options.address = "localhost:0";
  std::string error;
  auto server = HttpServer::Start(std::move(options), &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_NE(server->port(), 0);
}

// Collects on_signal calls from the server's thread.
struct SignalLog {
  void Add(int signo) {
    std::lock_guard lock(mutex);
    seen.push_back(signo);
    cv.notify_all();
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(kHangGuardSeconds), [&] { return seen.size() >= n; });
  }
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<int> seen;
};

TEST(HttpServerSignalTest, SignalsReachOnSignalAndDoNotKillTheProcess) {
  SignalLog log;
  HttpServer::Options options;  // no address: signals only
  options.on_signal = [&log](int signo) { log.Add(signo); };
  std::string error;
  auto server = HttpServer::Start(std::move(options), &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(server->port(), 0);

  ASSERT_EQ(::raise(SIGTERM), 0);
  ASSERT_TRUE(log.WaitFor(1));
  ASSERT_EQ(::raise(SIGINT), 0);  // the watch goes on after the first signal
  ASSERT_TRUE(log.WaitFor(2));
  server->Stop();
  std::lock_guard lock(log.mutex);
  EXPECT_EQ(log.seen, (std::vector<int>{SIGTERM, SIGINT}));
}

TEST(HttpServerSignalTest, StopFromOnSignalDoesNotDeadlock) {
  std::promise<void> called;
  std::atomic<HttpServer*> raw{nullptr};
  HttpServer::Options options;
  options.address = "127.0.0.1:0";
  options.on_signal = [&](int) {
    raw.load()->Stop();
    called.set_value();
  };
  std::string error;
  auto server = HttpServer::Start(std::move(options), &error);
  ASSERT_NE(server, nullptr) << error;
  raw = server.get();
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  ASSERT_EQ(called.get_future().wait_for(std::chrono::seconds(kHangGuardSeconds)), std::future_status::ready);
  server.reset();  // joins the thread that has already begun stopping
}

}  // namespace
}  // namespace esd::server
