// Operator logs: one line per event, "time level [component] message", on
// stderr. Messages name the tunnel and channel they concern and never hold a
// secret. Not thread-safe beyond a line: each line is written with one call.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace runtime {

enum class log_level { debug = 0, info = 1, warn = 2, error = 3 };

void set_log_level(log_level level);
bool log_enabled(log_level level);
void log_line(log_level level, std::string_view component, std::string_view message);

// log(level, "middle", "paired tunnel ", id, " ...")
template <class... Args>
void log(log_level level, std::string_view component, const Args&... args) {
  if (!log_enabled(level)) return;
  std::ostringstream s;
  (s << ... << args);
  log_line(level, component, s.str());
}

template <class... Args>
void log_info(std::string_view component, const Args&... args) { log(log_level::info, component, args...); }
template <class... Args>
void log_warn(std::string_view component, const Args&... args) { log(log_level::warn, component, args...); }
template <class... Args>
void log_error(std::string_view component, const Args&... args) { log(log_level::error, component, args...); }
template <class... Args>
void log_debug(std::string_view component, const Args&... args) { log(log_level::debug, component, args...); }

}  // namespace runtime
