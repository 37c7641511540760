// A real esd daemon in a child process for end-to-end tests: started on free loopback
// ports (port 0) in a directory the test owns, and stopped by the test.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace esd::testing {

class EsdProcess {
 public:
  // Starts build/bin/esd with `--data-dir dir --listen 127.0.0.1:0 --http 127.0.0.1:0` plus
  // `extra_args`, and waits for its "esd ready" line. Throws std::runtime_error with the
  // daemon's output when it does not get ready.
  // `open_files`: the RLIMIT_NOFILE the daemon starts with (set in the child before exec).
  EsdProcess(const std::filesystem::path& data_dir, std::vector<std::string> extra_args = {},
             std::optional<rlimit> open_files = std::nullopt);
  ~EsdProcess();  // SIGKILL if still running
  EsdProcess(const EsdProcess&) = delete;
  EsdProcess& operator=(const EsdProcess&) = delete;

  const std::string& rpc_address() const { return rpc_; }   // "127.0.0.1:PORT" or "unix:..."
  const std::string& http_address() const { return http_; }
  pid_t pid() const { return pid_; }
  size_t OpenFds() const;  // descriptors the daemon has open now (/proc/PID/fd)

  // Sends `signo` and waits for the exit; returns the exit status (or 128 + signal).
  int Stop(int signo);
  void Kill();  // SIGKILL and reap
  // Everything the daemon printed (stdout and stderr) so far.
  std::string Output();
  // Reads the daemon's output until it holds `needle` `times` times (true), or it exits or
  // 60 s pass (false): a barrier on what the daemon says, not a sleep.
  bool WaitForOutput(const std::string& needle, size_t times = 1);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
  std::string rpc_, http_;
};

// A TCP connection to "127.0.0.1:PORT"; throws std::runtime_error when it fails. With
// receive_buffer_bytes, its SO_RCVBUF (the window the daemon may fill) is set that small.
int ConnectLoopback(const std::string& host_port, int receive_buffer_bytes = 0);

// From here on `fd`'s kernel drops every segment that arrives for it, unanswered: a socket
// filter that accepts nothing, which TCP applies before it acts on a segment. To its peer
// the socket's machine has gone without a word (power, network). Needs no privilege; throws
// std::runtime_error when the kernel refuses.
void DropEverythingArriving(int fd);

// Connects to "127.0.0.1:PORT", sends `bytes` and returns what comes back until the peer
// closes.
std::string SendAndReadToEnd(const std::string& host_port, const std::string& bytes);

// A minimal HTTP GET on loopback; returns the whole response (status line, headers, body).
std::string HttpGet(const std::string& host_port, const std::string& path);

// The value of the sample `series` (a name and its labels exactly as printed, e.g.
// `esd_appends_total{outcome="ok"}`) in /metrics text whose every line follows a newline
// (HttpGet's whole response has the headers before the first); nullopt when it is not there.
std::optional<double> MetricSample(const std::string& text, const std::string& series);

}  // namespace esd::testing
