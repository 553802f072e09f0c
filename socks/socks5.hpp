// socks5.hpp - server-side SOCKS5 (RFC 1928) and username/password
// authentication (RFC 1929): message parsing and reply building.
//
// Pure code: no sockets, no I/O, no allocation beyond the returned values.
// Every parser takes the bytes received so far (the caller's buffer, starting
// at the first byte of the message) and never throws or asserts on any input:
//
//   * need_more - the buffer holds a valid prefix of a message but not all of
//                 it. `consumed` is 0; call again once more bytes arrive.
//   * done      - one whole message was parsed. `consumed` is exactly its
//                 length; any bytes after it (e.g. pipelined data) are the
//                 caller's and are untouched.
//   * invalid   - the bytes cannot start a valid message. `error` says why,
//                 `consumed` is 0. The connection should be closed (after a
//                 reply, where the protocol has one for the fault).
//
// Faults are detected in wire order, each as soon as the byte that shows it
// is present. Hence the result does not depend on how the bytes were split
// when they arrived: every prefix of a message yields need_more or the same
// result as the whole.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace socks {

enum class parse_status { need_more, done, invalid };

// Why input was invalid; one name per distinct fault.
enum class parse_error {
  none,
  bad_version,       // greeting/request VER is not 5
  no_methods,        // greeting NMETHODS is 0
  bad_reserved,      // request RSV is not 0
  bad_address_type,  // request ATYP is not 1, 3 or 4 (answer reply 0x08)
  empty_domain,      // request ATYP=3 with a zero-length name
  nul_in_domain,     // request ATYP=3 name contains a NUL byte
  bad_auth_version,  // RFC 1929 VER is not 1
  empty_username,    // RFC 1929 ULEN is 0
  unknown_command,   // not produced by the parsers (an unknown CMD parses as
                     // done so the server can answer 0x07); for callers that
                     // want to name that refusal, e.g. in logs
  too_long,          // SOCKS4 USERID or SOCKS4a host longer than 255 bytes
  truncated,         // a UDP datagram shorter than its header
};
// Stable lowercase name of the error, e.g. "bad_version".
std::string_view to_string(parse_error);

enum class command : uint8_t { connect = 1, bind = 2, udp_associate = 3 };
// True for the three commands RFC 1928 defines.
constexpr bool is_known(command c) {
  return c == command::connect || c == command::bind || c == command::udp_associate;
}

enum class reply_code : uint8_t {
  succeeded = 0,
  general_failure = 1,
  not_allowed = 2,
  network_unreachable = 3,
  host_unreachable = 4,
  connection_refused = 5,
  ttl_expired = 6,
  command_not_supported = 7,
  address_type_not_supported = 8,
};

constexpr uint8_t socks_version = 0x05;
constexpr uint8_t userpass_version = 0x01;  // RFC 1929 sub-negotiation version
constexpr uint8_t method_no_auth = 0x00;
constexpr uint8_t method_userpass = 0x02;
constexpr uint8_t method_none_acceptable = 0xFF;

// A destination as SOCKS carries it. For domain, `host` holds the name
// (1..255 bytes, any bytes but NUL; the parser rejects others as invalid);
// for ipv4/ipv6, `ip` holds 4 or 16 bytes (ipv4 uses ip[0..3], the rest 0).
// Fields that do not belong to `type` are empty/zero in parsed values and in
// values made by the from_* factories, so == compares meaningfully.
struct address {
  enum class kind : uint8_t { ipv4 = 1, domain = 3, ipv6 = 4 };
  kind type = kind::ipv4;
  std::array<uint8_t, 16> ip{};
  std::string host;
  uint16_t port = 0;

  // For logs and messages: "1.2.3.4:80", "[::1]:80" (RFC 5952 form, with
  // IPv4-mapped addresses as "[::ffff:1.2.3.4]:80"), "example.com:443".
  // Domain bytes outside printable ASCII, and '\', are written as \xHH so an
  // untrusted name cannot forge log lines; use `host` itself for resolution.
  std::string to_string() const;

  static address from_ipv4(std::array<uint8_t, 4> ip, uint16_t port);
  static address from_ipv6(std::array<uint8_t, 16> ip, uint16_t port);
  static address from_domain(std::string host, uint16_t port);

  bool operator==(const address&) const = default;
};

template <class T>
struct parsed {
  parse_status status;
  T value;
  std::size_t consumed = 0;
  parse_error error = parse_error::none;
};

// Client greeting: VER=5 NMETHODS(1..255) METHODS[NMETHODS].
// Duplicate and unknown method values are kept as sent.
struct greeting {
  std::vector<uint8_t> methods;
  bool operator==(const greeting&) const = default;
};
parsed<greeting> parse_greeting(std::span<const uint8_t> in);

// RFC 1929 request: VER=1 ULEN(1..255) UNAME PLEN(0..255) PASSWD.
// Bytes are taken as-is (no charset assumption). An empty password is
// accepted (clients commonly send one); an empty username is invalid.
struct userpass {
  std::string username, password;
  bool operator==(const userpass&) const = default;
};
parsed<userpass> parse_userpass(std::span<const uint8_t> in);

// Client request: VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT (port big-endian).
// An unknown CMD still parses as done: raw_cmd holds the byte and cmd is that
// value cast (check is_known(cmd)) so the server can answer 0x07. An unknown
// ATYP is invalid with bad_address_type so the server can answer 0x08.
struct request {
  command cmd{};
  uint8_t raw_cmd = 0;
  address dst;
  bool operator==(const request&) const = default;
};
parsed<request> parse_request(std::span<const uint8_t> in);

// UDP request header (RFC 1928 section 7), in front of every datagram
// between the app and the relay: RSV(2)=0 FRAG ATYP DST.ADDR DST.PORT DATA.
// A datagram arrives whole, so there is no need_more: short is invalid.
// `data` points into the input. Callers drop datagrams with FRAG != 0 (the
// RFC lets a relay that does not reassemble drop fragments).
struct udp_datagram {
  uint8_t frag = 0;
  address dst;
  std::span<const uint8_t> data;
};
parsed<udp_datagram> parse_udp_datagram(std::span<const uint8_t> in);
// The header for a datagram to the app: FRAG 0, `source` as the address
// (written like write_reply's BND; data follows, appended by the caller).
void write_udp_header(std::vector<uint8_t>& out, const address& source);

// Server replies, appended to `out`.
// Method selection: VER=5 METHOD.
void write_method_choice(std::vector<uint8_t>& out, uint8_t method);
// RFC 1929 status: VER=1 STATUS (0x00 success, 0x01 failure).
void write_userpass_status(std::vector<uint8_t>& out, bool ok);
// Reply: VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT. A `bound` that cannot be
// encoded (domain of 0 or more than 255 bytes, or an out-of-range kind) is
// written as IPv4 0.0.0.0 with bound.port, so the reply is always well-formed.
void write_reply(std::vector<uint8_t>& out, reply_code code, const address& bound);

// Method choice: given the offered methods and whether users are configured:
// method_userpass if users are configured and it is offered; method_no_auth
// if no users are configured and it is offered; else method_none_acceptable.
// (With users configured, no_auth is never chosen.)
uint8_t choose_method(const greeting& g, bool users_configured);

}  // namespace socks
