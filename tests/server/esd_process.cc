#include "esd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

namespace esd::testing {

EsdProcess::EsdProcess(const std::filesystem::path& data_dir, std::vector<std::string> extra_args,
                       std::optional<rlimit> open_files) {
  std::vector<std::string> args = {ESD_BINARY, "--data-dir", data_dir.string(), "--listen", "127.0.0.1:0",
                                   "--http", "127.0.0.1:0", "--segment-size", "4194304"};
  for (auto& a : extra_args) args.push_back(std::move(a));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    if (open_files && ::setrlimit(RLIMIT_NOFILE, &*open_files) != 0) _exit(126);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
  // Read until the ready line (or the child's exit); 60 s bounds a hang, it is no timing test.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  static const std::regex kReady(R"(esd ready: rpc=(\S+) http=(\S+))");
  std::smatch m;
  while (!std::regex_search(output_, m, kReady)) {
    pollfd p{out_fd_, POLLIN, 0};
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0 || ::poll(&p, 1, left) <= 0) throw std::runtime_error("esd did not get ready:\n" + output_);
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof(buf));
    if (n <= 0) throw std::runtime_error("esd exited before it was ready:\n" + output_);
    output_.append(buf, static_cast<size_t>(n));
  }
  rpc_ = m[1];
  http_ = m[2];
}

EsdProcess::~EsdProcess() {
  if (pid_ > 0) Kill();
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::string EsdProcess::Output() {
  char buf[4096];
  while (true) {
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) break;
    ssize_t n = ::read(out_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    output_.append(buf, static_cast<size_t>(n));
  }
  return output_;
}

bool EsdProcess::WaitForOutput(const std::string& needle, size_t times) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto count = [&] {
    size_t n = 0;
    for (size_t at = output_.find(needle); at != std::string::npos; at = output_.find(needle, at + needle.size())) ++n;
    return n;
  };
  while (count() < times) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{out_fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::read(out_fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    output_.append(buf, static_cast<size_t>(n));
  }
  return true;
}

int EsdProcess::Stop(int signo) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signo);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  Output();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void EsdProcess::Kill() { Stop(SIGKILL); }

int ConnectLoopback(const std::string& host_port, int receive_buffer_bytes) {
  const auto colon = host_port.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
  ::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (receive_buffer_bytes > 0) {  // before connect: it sets the window the peer is offered
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot connect to " + host_port);
  }
  return fd;
}

void DropEverythingArriving(int fd) {
  sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);  // keep 0 bytes: drop
  sock_fprog program{1, &drop};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) != 0) {
    throw std::runtime_error(std::string("SO_ATTACH_FILTER: ") + std::strerror(errno));
  }
}

std::string SendAndReadToEnd(const std::string& host_port, const std::string& bytes) {
  int fd = ConnectLoopback(host_port);
  (void)::write(fd, bytes.data(), bytes.size());
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) answer.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return answer;
}

std::string HttpGet(const std::string& host_port, const std::string& path) {
  return SendAndReadToEnd(host_port, "GET " + path + " HTTP/1.0\r\nHost: " + host_port + "\r\n\r\n");
}

std::optional<double> MetricSample(const std::string& text, const std::string& series) {
  const std::string line_start = "\n" + series + " ";
  const size_t at = text.find(line_start);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(text.c_str() + at + line_start.size(), nullptr);
}

size_t EsdProcess::OpenFds() const {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd")) ++n;
  return n;
}

}  // namespace esd::testing
