#include "uplink/ways.hpp"

#include <cstdint>
#include <limits>
#include <string_view>

namespace uplink {

// Values are echoed back in messages so the user sees what was read, but a
// pasted blob should not flood the terminal and control bytes should not
// reach it raw. Never called on a password.
std::string quote(std::string_view s) {
  constexpr std::size_t max_shown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max_shown) out += "...";
  out += '"';
  return out;
}

// Digits only, no sign, no overflow; nullopt otherwise.
std::optional<std::uint64_t> to_unsigned(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::string endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

endpoint parse_endpoint(const std::string& text) {
  const auto bad = [&]() -> bad_way { return bad_way("expected host:port, got " + quote(text)); };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw bad_way("expected [address]:port, got " + quote(text));
    }
    host = std::string_view(text).substr(1, close - 1);
    port = std::string_view(text).substr(close + 2);
    if (host.empty() || host.find(':') == std::string_view::npos) {
      throw bad_way("expected an IPv6 address inside [], got " + quote(text));
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) throw bad();
    host = std::string_view(text).substr(0, colon);
    port = std::string_view(text).substr(colon + 1);
    if (host.empty()) throw bad_way("expected host:port, the host is missing in " + quote(text));
    if (host.find(':') != std::string_view::npos) {
      throw bad_way("an IPv6 address needs brackets, like [::1]:7000, got " + quote(text));
    }
  }
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '[' || c == ']' || c == '/') throw bad();
  }
  const auto n = port.size() <= 5 ? to_unsigned(port) : std::nullopt;
  if (!n || *n < 1 || *n > 65535) throw bad_way("expected a port from 1 to 65535, got " + quote(text));
  return endpoint{std::string(host), static_cast<std::uint16_t>(*n)};
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes, as in curl's proxy URLs (a password may hold '@' or ':').
std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

const char* scheme_name(proxy_kind k) {
  switch (k) {
    case proxy_kind::socks5: return "socks5";
    case proxy_kind::socks4a: return "socks4a";
    case proxy_kind::http: return "http";
  }
  return "http";
}

const char* carrier_name(carrier c) {
  switch (c) {
    case carrier::tcp: return "tcp";
    case carrier::tls: return "tls";
    case carrier::ws: return "ws";
    case carrier::wss: return "wss";
    case carrier::http: return "http";
  }
  return "tcp";
}
}  // namespace

std::string proxy::to_string() const {
  std::string s = std::string(scheme_name(kind)) + "://";
  if (!username.empty()) s += username + "@";
  return s + at.to_string();
}

std::string way::to_string() const {
  std::string s = carrier_name(how);
  if (via == route::proxy && through) s += " via " + through->to_string();
  if (via == route::environment) s += " via env";
  return s;
}

proxy parse_proxy_url(const std::string& text) {
  proxy p;
  std::string_view rest = text;
  const auto sep = rest.find("://");
  if (sep != std::string_view::npos) {
    const auto scheme = rest.substr(0, sep);
    // socks5h and socks4a ask the proxy to resolve names, which is what a
    // hop wants anyway (the name of the middle may not resolve inside a
    // firewalled network); socks5 and socks4 are accepted as the same.
    if (scheme == "socks5" || scheme == "socks5h") {
      p.kind = proxy_kind::socks5;
    } else if (scheme == "socks4a" || scheme == "socks4") {
      p.kind = proxy_kind::socks4a;
    } else if (scheme == "http") {
      p.kind = proxy_kind::http;
    } else {
      throw bad_way("unknown proxy scheme " + quote(scheme) + " (expected socks5://, socks4a:// or http://)");
    }
    rest.remove_prefix(sep + 3);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    p.username = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) p.password = percent_decode(userinfo.substr(colon + 1));
    if (p.username.empty()) throw bad_way("the proxy URL has a password but no user name");
    if (p.username.size() > 255 || p.password.size() > 255)
      throw bad_way("proxy user name and password must be at most 255 bytes each");
    rest.remove_prefix(at + 1);
  }
  if (rest.find('/') != std::string_view::npos) throw bad_way("a proxy URL has no path");
  // Nothing of the URL is quoted back: a mistyped one (user:secret:host:1)
  // may hold a password where the address was expected.
  try {
    p.at = parse_endpoint(std::string(rest));
  } catch (const bad_way&) {
    throw bad_way("expected the proxy as scheme://[user[:password]@]host:port (IPv6 in brackets)");
  }
  return p;
}

way parse_way(const std::string& text) {
  way w;
  std::string_view rest = text;
  const auto space = rest.find(' ');
  const auto name = rest.substr(0, space);
  if (name == "tcp") {
    w.how = carrier::tcp;
  } else if (name == "tls") {
    w.how = carrier::tls;
  } else if (name == "ws") {
    w.how = carrier::ws;
  } else if (name == "wss") {
    w.how = carrier::wss;
  } else if (name == "http") {
    w.how = carrier::http;
  } else {
    throw bad_way("expected tcp, tls, ws, wss or http, optionally followed by \"via <proxy URL>\" or \"via env\", got " +
                quote(std::string(name)));
  }
  if (space == std::string_view::npos) return w;
  rest.remove_prefix(space);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.substr(0, 4) != "via ") throw bad_way("expected \"via <proxy URL>\" or \"via env\" after " + quote(std::string(name)));
  rest.remove_prefix(4);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest == "env") {
    w.via = way::route::environment;
  } else {
    w.via = way::route::proxy;
    w.through = parse_proxy_url(std::string(rest));
  }
  return w;
}

namespace {
std::uint16_t read_port(std::string_view digits) {
  const auto v = to_unsigned(digits);
  if (!v || *v == 0 || *v > 65535) throw bad_way("the PAC URL's port must be 1 to 65535");
  return static_cast<std::uint16_t>(*v);
}

}  // namespace

std::string pac_source::to_string() const {
  // pac+file:// and the path: read back, the path is the same even when it
  // starts with "//" (from "pac+file:" it lost two of its slashes).
  if (from == kind::file) return "pac+file://" + path;
  return "pac+http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
         (port == 80 ? "" : ":" + std::to_string(port)) + target;
}

pac_source parse_pac_source(std::string_view text) {
  pac_source s;
  if (text.rfind("pac+file://", 0) == 0 || text.rfind("pac+file:", 0) == 0) {
    s.from = pac_source::kind::file;
    s.path = std::string(text.substr(text.rfind("pac+file://", 0) == 0 ? 11 : 9));
    if (s.path.empty() || s.path.front() != '/') throw bad_way("a PAC file is named by an absolute path: pac+file:/etc/proxy.pac");
    return s;
  }
  if (text.rfind("pac+http://", 0) != 0)
    throw bad_way("expected pac+http://host[:port]/path or pac+file:/path (https is not fetched: a PAC file names "
                  "the proxies, not secrets)");
  auto rest = text.substr(11);
  const auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  s.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) throw bad_way("a PAC URL has no user or password");
  if (authority.empty()) throw bad_way("the PAC URL names no host");
  // host, host:port, [v6], [v6]:port
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad_way("the PAC URL's IPv6 address has no ]");
    s.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') throw bad_way("expected :port after the PAC URL's address");
      s.port = read_port(authority.substr(1));
    }
  } else {
    const auto colon = authority.rfind(':');
    s.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) s.port = read_port(authority.substr(colon + 1));
  }
  if (s.host.empty()) throw bad_way("the PAC URL names no host");
  if (s.target.find_first_of(" \r\n") != std::string::npos) throw bad_way("the PAC URL's path has a space or line break");
  return s;
}

}  // namespace uplink
