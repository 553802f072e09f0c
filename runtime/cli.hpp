// The command line both executables share: `-c FILE`, `--check`, `--help`, `--version`,
// and running an io_context until SIGINT or SIGTERM.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <optional>
#include <string>

namespace runtime {

struct cli_options {
  std::string config_file;
  bool check_only = false;
  // --new-secret FILE or --new-token FILE: write a generated key and exit.
  enum class new_key { none, secret, token } make_key = new_key::none;
  std::string key_file;
};

// Parses argv. Prints help or an error itself; returns nullopt with `exit_code`
// set when the program should exit right away.
std::optional<cli_options> parse_cli(int argc, char** argv, std::string_view program, std::string_view help,
                                     int& exit_code);

// Holds SIGINT and SIGTERM back until run_until_signal is ready for them, so
// a stop request during start-up (key derivation, binding) still ends the
// process cleanly rather than by the signal's default action.
void hold_stop_signals();

// How a process stops on SIGTERM or SIGINT.
struct stop_plan {
  // Stop accepting, tell the peers (SHUTDOWN), let what is in flight go on.
  std::function<void()> begin;
  // True once nothing is in flight any more: the process may exit now.
  std::function<bool()> finished;
  // The grace is over: reset what is left (apps see ECONNRESET, never a
  // FIN on a stream that did not end) and tell the peers why.
  std::function<void()> reset_rest;
  // How long what is in flight may take to finish (limits.shutdown_grace).
  std::chrono::milliseconds grace{1000};
};

// Runs `io` until a signal arrives, then follows `plan`: the loop stops
// once plan.finished(), or plan.grace after the signal (plan.reset_rest
// then runs, and its last words get a moment to leave). A second signal
// stops the loop at once.
void run_until_signal(boost::asio::io_context& io, stop_plan plan);

}  // namespace runtime
