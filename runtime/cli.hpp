// The command line both executables share: `-c FILE`, `--check`, `--help`,
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
};

// Parses argv. Prints help or an error itself; returns nullopt with `exit_code`
// set when the program should exit right away.
std::optional<cli_options> parse_cli(int argc, char** argv, std::string_view program, std::string_view help,
                                     int& exit_code);

// Holds SIGINT and SIGTERM back until run_until_signal is ready for them, so
// a stop request during start-up (key derivation, binding) still ends the
// process cleanly rather than by the signal's default action.
void hold_stop_signals();

// Runs `io` until a signal arrives; then calls `on_stop` and gives the
// process `grace` to finish before stopping the loop.
void run_until_signal(boost::asio::io_context& io, std::function<void()> on_stop,
                      std::chrono::milliseconds grace = std::chrono::milliseconds(500));

}  // namespace runtime
