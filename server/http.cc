#include "server/http.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility> (DESIGN.md).
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <csignal>
#include <exception>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "server/config.h"
#include "storage/background.h"

namespace esd::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr size_t kMaxConnections = 256;

// The status for a request the parser refused, or 0 when there is no one left to answer
// (the client went away, timed out, or we are stopping).
unsigned StatusForReadError(const beast::error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category()) return 0;
  switch (static_cast<http::error>(ec.value())) {
    case http::error::end_of_stream:
    case http::error::partial_message:
      return 0;
    case http::error::header_limit:
    case http::error::buffer_overflow:
      return 431;
    case http::error::body_limit:
      return 413;
    default:
      return 400;
  }
}

Response MakeResponse(unsigned version, unsigned status, std::string body) {
  Response res;
  res.version(version);
  res.result(status);
  res.set(http::field::server, "esd");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(Options opts) : options(std::move(opts)) {}

  bool Bind(std::string* error);
  net::awaitable<void> Accept();
  net::awaitable<void> Serve(tcp::socket socket);
  net::awaitable<void> WatchSignals();
  Response Respond(const Request& req);
  void CloseAll();  // on the io thread

  Options options;
  // Declared before the objects that use it, so that it is destroyed after them.
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  std::optional<net::signal_set> signals;
  uint16_t port = 0;
  std::thread thread;
  std::atomic<bool> stop_requested{false};
  // Io thread only. Streams are owned by their Serve coroutine, which unlists them on exit.
  bool stopping = false;
  std::set<beast::tcp_stream*> connections;
};

bool HttpServer::Impl::Bind(std::string* error) {
  std::string host;
  uint16_t want_port = 0;
  if (!SplitHostPort(options.address, &host, &want_port)) {
    *error = "HTTP address '" + options.address + "': expected host:port";
    return false;
  }
  beast::error_code ec;
  tcp::resolver resolver(io);
  // Numeric hosts and "localhost" only (from /etc/hosts): no DNS lookups at startup.
  auto flags = host == "localhost" ? tcp::resolver::numeric_service
                                   : tcp::resolver::numeric_host | tcp::resolver::numeric_service;
  auto endpoints = resolver.resolve(host, std::to_string(want_port), flags, ec);
  if (ec || endpoints.empty()) {
    *error = "HTTP address '" + options.address + "': " + (ec ? ec.message() : "no address");
    return false;
  }
  for (const auto& entry : endpoints) {
    acceptor.close(ec);
    acceptor.open(entry.endpoint().protocol(), ec);
    if (ec) continue;
    // Lets a restarted daemon bind while the previous one's connections sit in TIME_WAIT.
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor.bind(entry.endpoint(), ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) {
      port = acceptor.local_endpoint().port();
      return true;
    }
  }
  acceptor.close();
  *error = "HTTP address '" + options.address + "': " + ec.message();
  return false;
}

net::awaitable<void> HttpServer::Impl::Accept() {
  net::steady_timer backoff(io);
  while (!stopping) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (stopping || ec == net::error::operation_aborted) co_return;
    if (ec) {
      if (options.on_accept_error) options.on_accept_error(ec.message());
      // Out of descriptors, most likely: accepting again at once would spin.
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    if (connections.size() >= kMaxConnections) continue;  // the socket closes as it leaves scope
    net::co_spawn(io, Serve(std::move(socket)), net::detached);
  }
}

net::awaitable<void> HttpServer::Impl::Serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  connections.insert(&stream);
  struct Unlist {
    Impl* impl;
    beast::tcp_stream* stream;
    ~Unlist() { impl->connections.erase(stream); }
  } unlist{this, &stream};

  // Larger than the header limit, so that an oversized header is reported as such.
  beast::flat_buffer buffer(2 * kMaxRequestBytes);
  beast::error_code ec;
  while (!stopping) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxRequestBytes);
    parser.body_limit(kMaxRequestBytes);
    // The deadline covers the whole request, so a client trickling bytes is cut off too.
    stream.expires_after(options.idle_timeout);
    co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      unsigned status = stopping ? 0 : StatusForReadError(ec);
      if (status != 0) {
        auto reason = http::obsolete_reason(http::int_to_status(status));
        Response res = MakeResponse(11, status, std::string(reason.data(), reason.size()) + "\n");
        res.keep_alive(false);
        stream.expires_after(options.idle_timeout);
        co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
      }
      break;
    }
    Response res = Respond(parser.get());
    stream.expires_after(options.idle_timeout);
    co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
  // Half-close first so the client reads the last response before seeing the end.
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
}

Response HttpServer::Impl::Respond(const Request& req) {
  Response res;
  std::string_view target(req.target().data(), req.target().size());
  std::string path(target.substr(0, target.find('?')));
  bool head = req.method() == http::verb::head;
  if (req.method() != http::verb::get && !head) {
    res = MakeResponse(req.version(), 405, "method not allowed\n");
    res.set(http::field::allow, "GET, HEAD");
  } else if (auto route = options.routes.find(path); route == options.routes.end()) {
    res = MakeResponse(req.version(), 404, "not found\n");
  } else {
    HttpResponse out;
    try {
      out = route->second();
    } catch (const std::exception& e) {
      out = HttpResponse{500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
    } catch (...) {
      out = HttpResponse{500, "text/plain; charset=utf-8", "internal error\n"};
    }
    bool valid = out.status >= 100 && out.status <= 999;
    res = MakeResponse(req.version(), valid ? out.status : 500, std::move(out.body));
    res.set(http::field::content_type, out.content_type);
  }
  res.keep_alive(req.keep_alive());
  if (head) {
    // Content-Length stays that of the GET body, as HEAD requires.
    res.body().clear();
  }
  return res;
}

net::awaitable<void> HttpServer::Impl::WatchSignals() {
  while (!stopping) {
    beast::error_code ec;
    int signo = co_await signals->async_wait(net::redirect_error(net::use_awaitable, ec));
    if (ec || stopping) co_return;
    try {
      options.on_signal(signo);
    } catch (...) {
      // The callback's failure must not end the watch: the next SIGTERM still has to land.
    }
  }
}

void HttpServer::Impl::CloseAll() {
  if (stopping) return;
  stopping = true;
  beast::error_code ec;
  acceptor.close(ec);
  if (signals) {
    signals->cancel(ec);
    signals->clear(ec);  // restores the default dispositions
  }
  for (beast::tcp_stream* stream : connections) stream->close();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<HttpServer> HttpServer::Start(Options options, std::string* error) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (!impl->options.address.empty() && !impl->Bind(error)) return nullptr;
  if (impl->options.on_signal) {
    impl->signals.emplace(impl->io, SIGINT, SIGTERM);
    net::co_spawn(impl->io, impl->WatchSignals(), net::detached);
  }
  if (impl->acceptor.is_open()) net::co_spawn(impl->io, impl->Accept(), net::detached);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  storage::NameThread(impl->thread, "esd-http");
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() {
  if (impl_->io.get_executor().running_in_this_thread()) {
    impl_->CloseAll();
    return;
  }
  if (!impl_->stop_requested.exchange(true)) {
    Impl* impl = impl_.get();
    net::post(impl->io, [impl] { impl->CloseAll(); });
  }
  // With every socket, the acceptor and the signal wait closed, run() runs out of work.
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace esd::server
