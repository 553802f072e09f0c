#include "runtime/log.hpp"

#include <unistd.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <array>
#include <cstring>
#include <mutex>

namespace runtime {

namespace {
std::atomic<int> current_level{static_cast<int>(log_level::info)};
std::atomic<int> current_format{static_cast<int>(log_format::plain)};

// The admin page's window on the log: the last lines at info and above, in
// a ring of fixed slots made once. Keeping a line allocates nothing: lines
// kept in memory allocated in the middle of a burst of connections would pin
// the pages the burst leaves behind (runtime/capacity.hpp gives them back).
constexpr std::size_t kept_message_max = 600;  // longer messages are cut for the page (the log has them whole)
struct kept_slot {
  std::uint64_t number = 0;
  log_level level = log_level::info;
  char time[32] = {};
  char component[24] = {};
  std::uint16_t message_size = 0;
  char message[kept_message_max] = {};
};
struct kept_events {
  std::mutex lock;
  std::array<kept_slot, kept_log_events> slots;
  std::uint64_t next = 1;  // the number of the next line kept
};
kept_events& kept() {
  static kept_events k;
  return k;
}

void copy_cut(char* out, std::size_t room, std::string_view text) {
  const auto n = std::min(text.size(), room - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

const char* padded_name(log_level l) {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info ";
    case log_level::warn: return "warn ";
    case log_level::error: return "error";
  }
  return "?";
}

bool ends_word(char c) { return c == ' ' || c == ':' || c == ',' || c == ';' || c == '(' || c == ')' || c == '"'; }
}  // namespace

std::string_view log_level_name(log_level l) {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "?";
}

void set_log_level(log_level level) { current_level = static_cast<int>(level); }
void set_log_format(log_format format) { current_format = static_cast<int>(format); }
bool log_enabled(log_level level) { return static_cast<int>(level) >= current_level; }

log_subject subject_of(std::string_view m) {
  log_subject s;
  // The first "tunnel X" that starts the message or follows a space.
  for (std::size_t at = m.find("tunnel "); at != std::string_view::npos; at = m.find("tunnel ", at + 1)) {
    if (at != 0 && m[at - 1] != ' ') continue;
    auto begin = at + 7;
    auto end = begin;
    while (end < m.size() && !ends_word(m[end])) ++end;
    if (end > begin) s.tunnel = std::string(m.substr(begin, end - begin));
    break;
  }
  for (std::size_t at = m.find("channel "); at != std::string_view::npos; at = m.find("channel ", at + 1)) {
    if (at != 0 && m[at - 1] != ' ') continue;
    auto begin = at + 8;
    std::uint64_t v = 0;
    auto end = begin;
    while (end < m.size() && end - begin < 19 && m[end] >= '0' && m[end] <= '9') v = v * 10 + (m[end++] - '0');
    if (end > begin && (end == m.size() || ends_word(m[end]))) {
      s.channel = v;
      break;
    }
  }
  return s;
}

std::string json_log_line(const log_event& e) {
  boost::json::object o;
  o["time"] = e.time;
  o["level"] = log_level_name(e.level);
  o["component"] = e.component;
  auto subject = subject_of(e.message);
  if (subject.tunnel) o["tunnel"] = *subject.tunnel;
  if (subject.channel) o["channel"] = *subject.channel;
  o["message"] = e.message;
  return boost::json::serialize(o);
}

std::vector<log_event> recent_log_events(std::uint64_t after) {
  auto& k = kept();
  std::lock_guard guard(k.lock);
  std::vector<log_event> out;
  const auto last = k.next - 1;
  const auto first = last >= kept_log_events ? last - kept_log_events + 1 : 1;
  for (auto n = std::max(first, after + 1); n <= last; ++n) {
    const auto& slot = k.slots[n % kept_log_events];
    out.push_back({slot.number, slot.time, slot.level, slot.component, std::string(slot.message, slot.message_size)});
  }
  return out;
}

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
  // One event, one line: control characters from peers never split it.
  std::string clean;
  clean.reserve(message.size());
  for (char c : message) clean.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);

  std::string line;
  if (current_format == static_cast<int>(log_format::json))
    line = json_log_line(log_event{0, stamp, level, std::string(component), clean}) + "\n";
  if (level >= log_level::info) {
    auto& k = kept();
    std::lock_guard guard(k.lock);
    auto& slot = k.slots[k.next % kept_log_events];
    slot.number = k.next++;
    slot.level = level;
    copy_cut(slot.time, sizeof slot.time, stamp);
    copy_cut(slot.component, sizeof slot.component, component);
    slot.message_size = static_cast<std::uint16_t>(std::min(clean.size(), kept_message_max));
    std::memcpy(slot.message, clean.data(), slot.message_size);
  }
  if (line.empty()) {
    line.reserve(clean.size() + 64);
    line.append(stamp).append(" ").append(padded_name(level)).append(" [").append(component).append("] ");
    line.append(clean).push_back('\n');
  }
  // One write(2) per line so lines from several processes never interleave.
  auto rc = ::write(2, line.data(), line.size());
  (void)rc;  // nowhere to report a failing stderr
}

}  // namespace runtime
