// Running the esctl binary in tests: as a child process with its stdout and stderr on
// pipes, to its end (RunEsctl) or while the test reads its output (Esctl, for tail).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace esd {

struct Result {
  int code = -1;
  std::string out, err;
};

std::vector<std::string> Lines(const std::string& text);

// esctl running with its stdout and stderr on pipes. $ESD_CONNECT and $ESD_TOKEN of the
// test's environment are not passed on; `env` adds variables.
class Esctl {
 public:
  explicit Esctl(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), ESCTL_BINARY);
    std::vector<std::string> vars = env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).rfind("ESD_", 0) != 0) vars.push_back(*e);
    }
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      std::vector<char*> argv, envp;
      for (auto& a : args) argv.push_back(a.data());
      for (auto& v : vars) envp.push_back(v.data());
      argv.push_back(nullptr);
      envp.push_back(nullptr);
      ::execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Esctl() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_fd_);
    ::close(err_fd_);
  }

  // The next line of stdout. 60 s bounds a hang; it is no timing assertion.
  std::string ReadLine() {
    while (out_.find('\n') == std::string::npos) {
      if (!Pump(60'000) && out_.find('\n') == std::string::npos) {
        throw std::runtime_error("esctl printed no further line; stdout: " + out_ + " stderr: " + err_);
      }
    }
    const size_t nl = out_.find('\n');
    std::string line = out_.substr(0, nl);
    out_.erase(0, nl + 1);
    return line;
  }

  // Sends `signo` (unless 0), reads both pipes to their end and reaps the exit status.
  Result Finish(int signo = 0) {
    if (signo != 0) ::kill(pid_, signo);
    while (Pump(60'000)) continue;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out_, err_};
  }

 private:
  // Reads what is there from either pipe; false once both are closed (or on timeout).
  bool Pump(int timeout_ms) {
    pollfd p[2] = {{out_open_ ? out_fd_ : -1, POLLIN, 0}, {err_open_ ? err_fd_ : -1, POLLIN, 0}};
    if ((!out_open_ && !err_open_) || ::poll(p, 2, timeout_ms) <= 0) return false;
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents == 0) continue;
      char buf[1 << 16];  // some commands print tens of MiB
      const ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
      if (n > 0) (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
      else (i == 0 ? out_open_ : err_open_) = false;
    }
    return true;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool out_open_ = true, err_open_ = true;
  std::string out_, err_;
};

Result RunEsctl(std::vector<std::string> args, const std::vector<std::string>& env = {});


}  // namespace esd
