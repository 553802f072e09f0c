#include "runtime/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace runtime {

namespace {
std::atomic<int> current_level{static_cast<int>(log_level::info)};

const char* name(log_level l) {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info ";
    case log_level::warn: return "warn ";
    case log_level::error: return "error";
  }
  return "?";
}
}  // namespace

void set_log_level(log_level level) { current_level = static_cast<int>(level); }
bool log_enabled(log_level level) { return static_cast<int>(level) >= current_level; }

void log_line(log_level level, std::string_view component, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(message.size() + 64);
  line.append(stamp).append(" ").append(name(level)).append(" [").append(component).append("] ");
  // One event, one line: control characters from peers never split it.
  for (char c : message) line.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  line.push_back('\n');
  // One write(2) per line so lines from several processes never interleave.
  auto rc = ::write(2, line.data(), line.size());
  (void)rc;  // nowhere to report a failing stderr
}

}  // namespace runtime
