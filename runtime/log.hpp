// Operator logs: one line per event, "time level [component] message", on
// stderr (or one JSON object per line, for journald and log shippers).
// Messages name the tunnel and channel they concern and never hold a
// secret. Each line is written with one call. The last lines at info and
// above are also kept for the admin page (recent_log_events).
#pragma once

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace runtime {

enum class log_level { debug = 0, info = 1, warn = 2, error = 3 };

enum class log_format { plain, json };

void set_log_level(log_level level);
void set_log_format(log_format format);
bool log_enabled(log_level level);
void log_line(log_level level, std::string_view component, std::string_view message);

// One line as the admin page shows it.
struct log_event {
  std::uint64_t number = 0;  // counts every event kept since the start
  std::string time;          // "2026-12-05T03:31:01.366Z"
  log_level level = log_level::info;
  std::string component;
  std::string message;
};
// How many events at info and above are kept.
inline constexpr std::size_t kept_log_events = 200;
// The kept events numbered above `after`, oldest first.
std::vector<log_event> recent_log_events(std::uint64_t after = 0);
std::string_view log_level_name(log_level l);

// What a line concerns, read from its message the way operators read it:
// "tunnel NAME" and "channel N" (JSON lines carry them as fields).
struct log_subject {
  std::optional<std::string> tunnel;
  std::optional<std::uint64_t> channel;
};
log_subject subject_of(std::string_view message);
// One JSON object: time, level, component, tunnel, channel (when the
// message names them), message.
std::string json_log_line(const log_event& e);

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
