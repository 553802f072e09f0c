#include "runtime/cli.hpp"
#include "runtime/version.hpp"

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
    if (a == "-V" || a == "--version") {
      std::cout << program << " (lstp) " << version << "\n";
      exit_code = 0;
      return std::nullopt;
    }
    if (a == "--check") {
      o.check_only = true;
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      o.config_file = argv[++i];
    } else if ((a == "--new-secret" || a == "--new-token") && i + 1 < argc) {
      o.make_key = a == "--new-secret" ? cli_options::new_key::secret : cli_options::new_key::token;
      o.key_file = argv[++i];
    } else {
      std::cerr << program << ": unknown argument \"" << a << "\" (try --help)\n";
      exit_code = 2;
      return std::nullopt;
    }
  }
  if (o.make_key != cli_options::new_key::none) return o;
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

void run_until_signal(boost::asio::io_context& io, stop_plan plan) {
  using clock = std::chrono::steady_clock;
  // After reset_rest, the ERROR frames and resets it queued get this long to leave.
  constexpr auto last_words = std::chrono::milliseconds(200);
  constexpr auto poll = std::chrono::milliseconds(20);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  set_stop_signals_blocked(false);  // a signal held since start-up is delivered now, to `signals`
  boost::asio::steady_timer check(io);
  clock::time_point grace_end{};
  bool reset_done = false;
  std::function<void()> watch = [&] {
    check.expires_after(poll);
    check.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (plan.finished && plan.finished()) {
        log_info("main", "stopped: nothing left in flight");
        return io.stop();
      }
      if (!reset_done && clock::now() >= grace_end) {
        reset_done = true;
        log_info("main", "stopping: the grace of ", plan.grace.count(), " ms is over, resetting what is left");
        if (plan.reset_rest) plan.reset_rest();
        grace_end = clock::now() + last_words;
      } else if (reset_done && clock::now() >= grace_end) {
        return io.stop();
      }
      watch();
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec,
                                                                               int signo) {
    if (ec) return;
    if (grace_end != clock::time_point{}) {
      log_info("main", "signal ", signo, " again: stopping at once");
      // Reset first, so nothing in flight is left for the app to take as
      // finished (and the objects tied to one another let go).
      if (!reset_done && plan.reset_rest) plan.reset_rest();
      return io.stop();
    }
    log_info("main", "signal ", signo, ": stopping (", plan.grace.count(), " ms for what is in flight)");
    grace_end = clock::now() + plan.grace;
    signals.async_wait(on_signal);
    if (plan.begin) plan.begin();
    watch();
  };
  signals.async_wait(on_signal);
  io.run();
}

}  // namespace runtime
