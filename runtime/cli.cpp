#include "runtime/cli.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pthread.h>
#include <signal.h>

#include <iostream>

#include "runtime/log.hpp"

namespace runtime {

std::optional<cli_options> parse_cli(int argc, char** argv, std::string_view program, std::string_view help,
                                     int& exit_code) {
  cli_options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << help;
      exit_code = 0;
      return std::nullopt;
    }
    if (a == "--check") {
      o.check_only = true;
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      o.config_file = argv[++i];
    } else {
      std::cerr << program << ": unknown argument \"" << a << "\" (try --help)\n";
      exit_code = 2;
      return std::nullopt;
    }
  }
  if (o.config_file.empty()) {
    std::cerr << program << ": no configuration given: use -c FILE.yaml (try --help)\n";
    exit_code = 2;
    return std::nullopt;
  }
  return o;
}

namespace {
void set_stop_signals_blocked(bool blocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}
}  // namespace

void hold_stop_signals() {
  // A write to a connection the peer closed must fail with EPIPE, not kill
  // the process: splice(2) has no MSG_NOSIGNAL (the middle's pump uses it).
  ::signal(SIGPIPE, SIG_IGN);
  set_stop_signals_blocked(true);
}

void run_until_signal(boost::asio::io_context& io, std::function<void()> on_stop, std::chrono::milliseconds grace) {
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  set_stop_signals_blocked(false);  // a signal held since start-up is delivered now, to `signals`
  boost::asio::steady_timer grace_timer(io);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log_info("main", "signal ", signo, ": stopping");
    on_stop();
    grace_timer.expires_after(grace);
    grace_timer.async_wait([&](const boost::system::error_code&) { io.stop(); });
  });
  io.run();
}

}  // namespace runtime
