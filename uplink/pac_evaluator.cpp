#include "uplink/pac_evaluator.hpp"

#include <fcntl.h>
#include <pacparser.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace uplink {

namespace {

// The child's last error from pacparser (it prints, it does not return them).
char child_error[512];

int keep_error(const char* fmt, va_list args) {
  const auto used = std::strlen(child_error);
  if (used + 2 < sizeof child_error) {
    std::vsnprintf(child_error + used, sizeof child_error - used, fmt, args);
  }
  return 0;
}

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const auto n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// In the child: each answer as "A <answer>\n"; a failure as "E <why>\n".
[[noreturn]] void child(int out, const std::string& script, const std::vector<pac_query>& queries) {
  pacparser_set_error_printer(keep_error);
  if (!pacparser_init()) {
    write_all(out, "E the JavaScript engine did not start: " + one_line(child_error) + "\n");
    ::_exit(0);
  }
  if (!pacparser_parse_pac_string(script.c_str())) {
    write_all(out, "E it does not parse: " + one_line(child_error) + "\n");
    ::_exit(0);
  }
  for (const auto& q : queries) {
    child_error[0] = '\0';
    char* answer = pacparser_find_proxy(q.url.c_str(), q.host.c_str());
    if (!answer) {
      write_all(out, "E FindProxyForURL(\"" + q.url + "\") failed: " + one_line(child_error) + "\n");
      ::_exit(0);
    }
    write_all(out, "A " + one_line(answer) + "\n");
  }
  ::_exit(0);
}

}  // namespace

pac_evaluation evaluate_pac(const std::string& script, const std::vector<pac_query>& queries,
                            std::chrono::milliseconds timeout) {
  pac_evaluation result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.error = std::string("cannot make a pipe: ") + std::strerror(errno);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    result.error = std::string("cannot start the PAC evaluator: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1], script, queries);
  }
  ::close(fds[1]);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      timed_out = true;
      break;
    }
    char buf[4096];
    const auto n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    if (got.size() > 1024 * 1024) break;  // no PAC answer is that long
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    result.error = "FindProxyForURL did not return within " + std::to_string(timeout.count()) +
                   " ms (a loop, or a slow dnsResolve?)";
    return result;
  }
  std::size_t pos = 0;
  while (pos < got.size()) {
    const auto nl = got.find('\n', pos);
    if (nl == std::string::npos) break;
    const auto line = got.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("E ", 0) == 0) {
      result.error = line.substr(2);
      result.answers.clear();
      return result;
    }
    if (line.rfind("A ", 0) == 0) result.answers.push_back(line.substr(2));
  }
  if (result.answers.size() != queries.size()) {
    result.error = WIFSIGNALED(status) ? "the PAC evaluator died (signal " + std::to_string(WTERMSIG(status)) + ")"
                                       : "the PAC evaluator stopped early";
    result.answers.clear();
  }
  return result;
}

}  // namespace uplink
