#include "socks/socks5.hpp"

#include <algorithm>

namespace socks {

namespace {

// Reads a message front to back. Each parser checks a field the moment its
// bytes are present, so a fault in byte k is reported for every buffer that
// holds byte k; this is what makes the result independent of how the bytes
// were split on arrival.
class reader {
 public:
  explicit reader(std::span<const uint8_t> in) : in_(in) {}

  bool has(std::size_t n) const { return in_.size() - pos_ >= n; }
  uint8_t u8() { return in_[pos_++]; }
  uint16_t u16() {
    // Network byte order.
    const uint16_t v = static_cast<uint16_t>((in_[pos_] << 8) | in_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::span<const uint8_t> bytes(std::size_t n) {
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> in_;
  std::size_t pos_ = 0;
};

template <class T>
parsed<T> need_more() {
  return {parse_status::need_more, T{}, 0, parse_error::none};
}

template <class T>
parsed<T> invalid(parse_error e) {
  return {parse_status::invalid, T{}, 0, e};
}

template <class T>
parsed<T> done(T v, std::size_t consumed) {
  return {parse_status::done, std::move(v), consumed, parse_error::none};
}

std::string as_string(std::span<const uint8_t> s) {
  return std::string(s.begin(), s.end());
}

void append_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xFF));
}

void append_ipv4(std::string& s, const uint8_t* b) {
  for (int i = 0; i < 4; ++i) {
    if (i) s += '.';
    s += std::to_string(b[i]);
  }
}

void append_hex16(std::string& s, unsigned v) {
  // Lowercase, no leading zeros (RFC 5952 sections 4.1 and 4.3).
  static constexpr char digits[] = "0123456789abcdef";
  char buf[4];
  int n = 0;
  do {
    buf[n++] = digits[v & 0xF];
    v >>= 4;
  } while (v != 0);
  while (n > 0) s += buf[--n];
}

void append_ipv6(std::string& s, const std::array<uint8_t, 16>& ip) {
  // IPv4-mapped (::ffff:0:0/96) reads best in mixed notation (RFC 5952 s.5),
  // and is what inet_ntop prints, so logs match other tools.
  static constexpr uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::equal(std::begin(mapped_prefix), std::end(mapped_prefix), ip.begin())) {
    s += "::ffff:";
    append_ipv4(s, ip.data() + 12);
    return;
  }

  unsigned words[8];
  for (int i = 0; i < 8; ++i) words[i] = (unsigned{ip[2 * i]} << 8) | ip[2 * i + 1];

  // The longest run of two or more zero words becomes "::"; on a tie the
  // first run wins; a lone zero word is not shortened (RFC 5952 s.4.2).
  int best_start = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (words[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && words[j] == 0) ++j;
    if (j - i > best_len) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) {
    best_start = -1;
    best_len = 0;
  }

  for (int i = 0; i < 8;) {
    if (i == best_start) {
      s += "::";
      i += best_len;
      continue;
    }
    // Separate from the previous word, unless "::" just did.
    if (i != 0 && !(best_start >= 0 && i == best_start + best_len)) s += ':';
    append_hex16(s, words[i]);
    ++i;
  }
}

}  // namespace

std::string_view to_string(parse_error e) {
  switch (e) {
    case parse_error::none: return "none";
    case parse_error::bad_version: return "bad_version";
    case parse_error::no_methods: return "no_methods";
    case parse_error::bad_reserved: return "bad_reserved";
    case parse_error::bad_address_type: return "bad_address_type";
    case parse_error::empty_domain: return "empty_domain";
    case parse_error::nul_in_domain: return "nul_in_domain";
    case parse_error::bad_auth_version: return "bad_auth_version";
    case parse_error::empty_username: return "empty_username";
    case parse_error::unknown_command: return "unknown_command";
    case parse_error::too_long: return "too_long";
    case parse_error::truncated: return "truncated";
  }
  // A value cast from outside the enumerators; never index with it.
  return "unknown";
}

std::string address::to_string() const {
  std::string s;
  switch (type) {
    case kind::ipv4:
      append_ipv4(s, ip.data());
      break;
    case kind::ipv6:
      s += '[';
      append_ipv6(s, ip);
      s += ']';
      break;
    case kind::domain:
      // The name came off the wire: keep control bytes and the like out of
      // log lines. '\' is escaped too so the escaping is unambiguous.
      for (unsigned char c : host) {
        if (c >= 0x20 && c < 0x7F && c != '\\') {
          s += static_cast<char>(c);
        } else {
          static constexpr char digits[] = "0123456789abcdef";
          s += "\\x";
          s += digits[c >> 4];
          s += digits[c & 0xF];
        }
      }
      break;
    default:
      // Only reachable with a kind cast from an out-of-range value.
      s += '?';
      break;
  }
  s += ':';
  s += std::to_string(port);
  return s;
}

address address::from_ipv4(std::array<uint8_t, 4> ip4, uint16_t port) {
  address a;
  a.type = kind::ipv4;
  std::copy(ip4.begin(), ip4.end(), a.ip.begin());
  a.port = port;
  return a;
}

address address::from_ipv6(std::array<uint8_t, 16> ip6, uint16_t port) {
  address a;
  a.type = kind::ipv6;
  a.ip = ip6;
  a.port = port;
  return a;
}

address address::from_domain(std::string host, uint16_t port) {
  address a;
  a.type = kind::domain;
  a.host = std::move(host);
  a.port = port;
  return a;
}

parsed<greeting> parse_greeting(std::span<const uint8_t> in) {
  reader r(in);
  if (!r.has(1)) return need_more<greeting>();
  if (r.u8() != socks_version) return invalid<greeting>(parse_error::bad_version);
  if (!r.has(1)) return need_more<greeting>();
  const std::size_t n = r.u8();
  // No method at all leaves nothing to choose and nothing sensible to answer.
  if (n == 0) return invalid<greeting>(parse_error::no_methods);
  if (!r.has(n)) return need_more<greeting>();
  auto m = r.bytes(n);
  return done(greeting{std::vector<uint8_t>(m.begin(), m.end())}, r.pos());
}

parsed<userpass> parse_userpass(std::span<const uint8_t> in) {
  reader r(in);
  if (!r.has(1)) return need_more<userpass>();
  if (r.u8() != userpass_version) return invalid<userpass>(parse_error::bad_auth_version);
  if (!r.has(1)) return need_more<userpass>();
  const std::size_t ulen = r.u8();
  if (ulen == 0) return invalid<userpass>(parse_error::empty_username);
  // ULEN bytes of name plus the PLEN byte.
  if (!r.has(ulen + 1)) return need_more<userpass>();
  userpass up;
  up.username = as_string(r.bytes(ulen));
  const std::size_t plen = r.u8();
  if (!r.has(plen)) return need_more<userpass>();
  up.password = as_string(r.bytes(plen));
  return done(std::move(up), r.pos());
}

namespace {
// ATYP DST.ADDR DST.PORT, shared by requests and UDP headers.
std::pair<parse_status, parse_error> read_address(reader& r, address& a) {
  if (!r.has(1)) return std::pair{parse_status::need_more, parse_error::none};
  const uint8_t atyp = r.u8();
  switch (atyp) {
    case static_cast<uint8_t>(address::kind::ipv4): {
      if (!r.has(4 + 2)) return std::pair{parse_status::need_more, parse_error::none};
      a.type = address::kind::ipv4;
      auto b = r.bytes(4);
      std::copy(b.begin(), b.end(), a.ip.begin());
      break;
    }
    case static_cast<uint8_t>(address::kind::ipv6): {
      if (!r.has(16 + 2)) return std::pair{parse_status::need_more, parse_error::none};
      a.type = address::kind::ipv6;
      auto b = r.bytes(16);
      std::copy(b.begin(), b.end(), a.ip.begin());
      break;
    }
    case static_cast<uint8_t>(address::kind::domain): {
      if (!r.has(1)) return std::pair{parse_status::need_more, parse_error::none};
      const std::size_t len = r.u8();
      if (len == 0) return std::pair{parse_status::invalid, parse_error::empty_domain};
      if (!r.has(len)) return std::pair{parse_status::need_more, parse_error::none};
      auto name = r.bytes(len);
      // A NUL would truncate the name in any C API that later resolves it,
      // so what we log and what we connect to could differ: refuse it.
      if (std::find(name.begin(), name.end(), uint8_t{0}) != name.end())
        return std::pair{parse_status::invalid, parse_error::nul_in_domain};
      if (!r.has(2)) return std::pair{parse_status::need_more, parse_error::none};
      a.type = address::kind::domain;
      a.host = as_string(name);
      break;
    }
    default:
      // The length of DST.ADDR is unknown, so the message cannot be framed;
      // the caller answers 0x08 and closes.
      return std::pair{parse_status::invalid, parse_error::bad_address_type};
  }
  a.port = r.u16();
  return {parse_status::done, parse_error::none};
}
}  // namespace

parsed<request> parse_request(std::span<const uint8_t> in) {
  reader r(in);
  if (!r.has(1)) return need_more<request>();
  if (r.u8() != socks_version) return invalid<request>(parse_error::bad_version);
  if (!r.has(1)) return need_more<request>();
  request req;
  // Any CMD parses: refusing it is the server's decision (reply 0x07), and it
  // can only send that reply once it has read the whole request.
  req.raw_cmd = r.u8();
  req.cmd = static_cast<command>(req.raw_cmd);
  if (!r.has(1)) return need_more<request>();
  if (r.u8() != 0) return invalid<request>(parse_error::bad_reserved);
  auto [status, error] = read_address(r, req.dst);
  if (status == parse_status::need_more) return need_more<request>();
  if (status == parse_status::invalid) return invalid<request>(error);
  return done(std::move(req), r.pos());
}

void write_method_choice(std::vector<uint8_t>& out, uint8_t method) {
  out.push_back(socks_version);
  out.push_back(method);
}

void write_userpass_status(std::vector<uint8_t>& out, bool ok) {
  out.push_back(userpass_version);
  out.push_back(ok ? 0x00 : 0x01);
}

namespace {
void append_address(std::vector<uint8_t>& out, const address& bound) {
  switch (bound.type) {
    case address::kind::ipv4:
      out.push_back(static_cast<uint8_t>(address::kind::ipv4));
      out.insert(out.end(), bound.ip.begin(), bound.ip.begin() + 4);
      append_u16(out, bound.port);
      return;
    case address::kind::ipv6:
      out.push_back(static_cast<uint8_t>(address::kind::ipv6));
      out.insert(out.end(), bound.ip.begin(), bound.ip.end());
      append_u16(out, bound.port);
      return;
    case address::kind::domain:
      if (!bound.host.empty() && bound.host.size() <= 255) {
        out.push_back(static_cast<uint8_t>(address::kind::domain));
        out.push_back(static_cast<uint8_t>(bound.host.size()));
        out.insert(out.end(), bound.host.begin(), bound.host.end());
        append_u16(out, bound.port);
        return;
      }
      break;
  }
  // Unencodable: a name the one-byte length cannot carry, or a kind cast from
  // an out-of-range value. A truncated name would mislead the client, so say
  // "unspecified" (0.0.0.0) and keep the reply well-formed.
  out.push_back(static_cast<uint8_t>(address::kind::ipv4));
  out.insert(out.end(), 4, uint8_t{0});
  append_u16(out, bound.port);
}
}  // namespace

void write_reply(std::vector<uint8_t>& out, reply_code code, const address& bound) {
  out.push_back(socks_version);
  out.push_back(static_cast<uint8_t>(code));
  out.push_back(0x00);
  append_address(out, bound);
}

parsed<udp_datagram> parse_udp_datagram(std::span<const uint8_t> in) {
  reader r(in);
  // A datagram is whole: anything short is malformed, never "need more".
  if (!r.has(3)) return invalid<udp_datagram>(parse_error::truncated);
  if (r.u8() != 0 || r.u8() != 0) return invalid<udp_datagram>(parse_error::bad_reserved);
  udp_datagram d;
  d.frag = r.u8();
  auto [status, error] = read_address(r, d.dst);
  if (status == parse_status::need_more) return invalid<udp_datagram>(parse_error::truncated);
  if (status == parse_status::invalid) return invalid<udp_datagram>(error);
  d.data = in.subspan(r.pos());
  return done(std::move(d), in.size());
}

void write_udp_header(std::vector<uint8_t>& out, const address& source) {
  out.push_back(0x00);
  out.push_back(0x00);
  out.push_back(0x00);  // FRAG: we never fragment
  append_address(out, source);
}

uint8_t choose_method(const greeting& g, bool users_configured) {
  // With users configured, accepting no_auth would bypass them: only
  // username/password will do.
  const uint8_t wanted = users_configured ? method_userpass : method_no_auth;
  if (std::find(g.methods.begin(), g.methods.end(), wanted) != g.methods.end()) return wanted;
  return method_none_acceptable;
}

}  // namespace socks
