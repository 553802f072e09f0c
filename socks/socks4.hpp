// socks4.hpp - server-side SOCKS4 and SOCKS4a: request parsing and replies.
// Same contract as socks5.hpp (pure, need_more/done/invalid, results
// independent of how the bytes were split); shares its address and result
// types. A client's first byte tells the versions apart (4 or 5).
//
// Request: VN=4 CD DSTPORT(2) DSTIP(4) USERID NUL, and for SOCKS4a (DSTIP
// 0.0.0.x with x != 0) a host name NUL after it.
#pragma once

#include "socks/socks5.hpp"

namespace socks {

constexpr uint8_t socks4_version = 0x04;

struct request4 {
  uint8_t cmd = 0;     // 1 CONNECT, 2 BIND; anything else is the caller's to refuse
  address dst;         // ipv4, or domain for SOCKS4a
  std::string userid;  // as sent (0..255 bytes)
  bool operator==(const request4&) const = default;
};
parsed<request4> parse_socks4_request(std::span<const uint8_t> in);

// Reply: VN=0 CD (0x5A granted, 0x5B rejected) DSTPORT DSTIP. An IPv6 or
// domain `bound` is written as 0.0.0.0 with its port.
void write_socks4_reply(std::vector<uint8_t>& out, bool granted, const address& bound);

}  // namespace socks
