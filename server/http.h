// The daemon's side door: a small HTTP/1.x server for GET /metrics, /health and /ready, and the
// watcher of SIGTERM/SIGINT. Both live on one thread of their own, apart from the KJ event
// loop, so that a scrape or a signal never waits behind RPC work (DESIGN.md "Threads").
// Boost.Asio/Beast stay inside http.cc: this header compiles without Boost.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace esd::server {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Serves GET requests and watches SIGTERM/SIGINT, on one thread of its own running a
// boost::asio::io_context. Route handlers and the signal callback run on that thread, one at
// a time: they must be quick and must reach other threads' state only in thread-safe ways
// (atomics, kj::Executor). A handler that throws yields a 500.
//
// Limits: a request (headers or body) over 64 KiB is refused (431/413) and its connection
// closed; a connection that does not deliver a whole request within `idle_timeout` is
// closed; past 256 open connections new ones are closed at once. Each connection is served
// independently, so a stalled client delays no one else.
class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;
  struct Options {
    std::string address;  // "host:port"; port 0 picks a free one; empty: no HTTP, signals only
    std::map<std::string, Handler> routes;  // exact path -> handler, e.g. "/metrics", "/health"
    std::function<void(int signal)> on_signal;  // SIGTERM/SIGINT; null: don't watch signals
    // Each accept that failed (it is retried after 100 ms), on the server's thread.
    std::function<void(const std::string& error)> on_accept_error;
    std::chrono::milliseconds idle_timeout{30000};
  };

  // Binds and starts the thread. nullptr and *error set when the address cannot be bound.
  // The signal handlers are installed before Start returns, so a signal raised after that is
  // reported (to on_signal, once per delivery) rather than killing the process; they are
  // restored to the default when the server stops.
  static std::unique_ptr<HttpServer> Start(Options options, std::string* error);

  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;  // the bound port (useful with port 0); 0 without HTTP

  // Stops accepting, closes connections, joins the thread; idempotent. Called from a handler
  // or on_signal (that is, on the server's own thread) it only begins the stop: the join is
  // left to a later Stop() or the destructor, which must then run on another thread. Other
  // than that, call it from one thread at a time (the owner's).
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace esd::server
