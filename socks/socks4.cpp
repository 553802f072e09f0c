#include "socks/socks4.hpp"

#include <algorithm>

namespace socks {

namespace {
constexpr std::size_t max_field = 255;

// A NUL-terminated field starting at `from`: its end (index of the NUL), or
// npos when the NUL has not arrived (yet, or within max_field bytes).
std::size_t field_end(std::span<const uint8_t> in, std::size_t from, bool& too_long) {
  const auto limit = std::min(in.size(), from + max_field + 1);
  for (std::size_t i = from; i < limit; ++i) {
    if (in[i] == 0) return i;
  }
  too_long = in.size() > from + max_field;
  return std::string::npos;
}
}  // namespace

parsed<request4> parse_socks4_request(std::span<const uint8_t> in) {
  parsed<request4> r{parse_status::need_more, {}, 0, parse_error::none};
  auto invalid = [&](parse_error e) {
    r.status = parse_status::invalid;
    r.error = e;
    r.value = {};
    return r;
  };
  if (in.empty()) return r;
  if (in[0] != socks4_version) return invalid(parse_error::bad_version);
  if (in.size() < 8) return r;
  r.value.cmd = in[1];
  const auto port = static_cast<uint16_t>(in[2] << 8 | in[3]);
  bool too_long = false;
  const auto user_end = field_end(in, 8, too_long);
  if (user_end == std::string::npos) return too_long ? invalid(parse_error::too_long) : r;
  r.value.userid.assign(in.begin() + 8, in.begin() + static_cast<std::ptrdiff_t>(user_end));
  const bool socks4a = in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] != 0;
  if (!socks4a) {
    r.value.dst = address::from_ipv4({in[4], in[5], in[6], in[7]}, port);
    r.consumed = user_end + 1;
    r.status = parse_status::done;
    return r;
  }
  const auto host_end = field_end(in, user_end + 1, too_long);
  if (host_end == std::string::npos) return too_long ? invalid(parse_error::too_long) : r;
  if (host_end == user_end + 1) return invalid(parse_error::empty_domain);
  r.value.dst = address::from_domain(
      std::string(in.begin() + static_cast<std::ptrdiff_t>(user_end + 1), in.begin() + static_cast<std::ptrdiff_t>(host_end)),
      port);
  r.consumed = host_end + 1;
  r.status = parse_status::done;
  return r;
}

void write_socks4_reply(std::vector<uint8_t>& out, bool granted, const address& bound) {
  out.push_back(0x00);
  out.push_back(granted ? 0x5A : 0x5B);
  out.push_back(static_cast<uint8_t>(bound.port >> 8));
  out.push_back(static_cast<uint8_t>(bound.port & 0xff));
  if (bound.type == address::kind::ipv4)
    out.insert(out.end(), bound.ip.begin(), bound.ip.begin() + 4);
  else
    out.insert(out.end(), {0, 0, 0, 0});
}

}  // namespace socks
