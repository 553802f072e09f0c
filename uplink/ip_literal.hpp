// Whether a host string is an IPv4 or IPv6 address, and its bytes. Plain
// inet_pton, so the sans-I/O parts of uplink need no Asio.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace uplink {

struct ip_literal {
  bool v6 = false;
  std::vector<std::uint8_t> bytes;  // 4 or 16
};

inline std::optional<ip_literal> parse_ip_literal(const std::string& host) {
  std::array<std::uint8_t, 16> buf{};
  if (::inet_pton(AF_INET, host.c_str(), buf.data()) == 1) return ip_literal{false, {buf.begin(), buf.begin() + 4}};
  if (::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1) return ip_literal{true, {buf.begin(), buf.end()}};
  return std::nullopt;
}

}  // namespace uplink
