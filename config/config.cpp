// What config.hpp offers besides the loaders: the value parsers.
#include "config/config.hpp"

#include "config/reader.hpp"

namespace config {

using reader::quote;
using reader::to_unsigned;


namespace {
// uplink reports a bad way without our error type; the message is the same.
template <typename Parse>
auto as_config_error(Parse&& parse) {
  try {
    return parse();
  } catch (const uplink::bad_way& e) {
    throw error(e.what());
  }
}
}  // namespace

endpoint parse_endpoint(const std::string& text) {
  return as_config_error([&] { return uplink::parse_endpoint(text); });
}
proxy parse_proxy_url(const std::string& text) {
  return as_config_error([&] { return uplink::parse_proxy_url(text); });
}
way parse_way(const std::string& text) {
  return as_config_error([&] { return uplink::parse_way(text); });
}

std::chrono::milliseconds parse_duration(const std::string& text) {
  const auto bad = [&]() -> error { return error("expected a duration like 10s or 250ms, got " + quote(text)); };
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::string_view digits = std::string_view(text).substr(0, i);
  const std::string_view unit = std::string_view(text).substr(i);
  if (digits.empty()) throw bad();
  std::uint64_t ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60 * 1000;
  } else if (unit == "h") {
    ms_per_unit = 60 * 60 * 1000;
  } else {
    throw bad();
  }
  // A year is far beyond any sensible timeout and keeps now() + d far from
  // overflowing a clock's representation.
  constexpr std::uint64_t max_ms = 365ULL * 24 * 60 * 60 * 1000;
  const auto n = to_unsigned(digits);
  if (!n || *n > max_ms / ms_per_unit) throw error("too long (at most 8760h): " + quote(text));
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*n * ms_per_unit));
}

std::size_t parse_size(const std::string& text) {
  const auto bad = [&]() -> error { return error("expected a size like 65536, 64KiB or 8MiB, got " + quote(text)); };
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::string_view digits = std::string_view(text).substr(0, i);
  const std::string_view unit = std::string_view(text).substr(i);
  if (digits.empty()) throw bad();
  std::uint64_t mult = 0;
  if (unit.empty()) {
    mult = 1;
  } else if (unit == "KiB") {
    mult = 1ULL << 10;
  } else if (unit == "MiB") {
    mult = 1ULL << 20;
  } else if (unit == "GiB") {
    mult = 1ULL << 30;
  } else {
    throw bad();  // "KB"/"MB" are refused rather than guessed at (1000 or 1024?)
  }
  const auto n = to_unsigned(digits);
  if (!n || *n > std::numeric_limits<std::size_t>::max() / mult) throw error("too large: " + quote(text));
  return static_cast<std::size_t>(*n * mult);
}

}  // namespace config
