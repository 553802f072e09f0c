// The vocabulary of the ways out of a network to a middle proxy:
// endpoints, proxies, carriers, and a way (a carrier, directly or through a
// proxy), with their text forms and parsers. No dependencies: the
// configuration reads these, uplink dials them.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace uplink {

// A parser's refusal; the message says what was expected, never a password.
class bad_way : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "host:port" or "[v6]:port". Host may be a name. In YAML, quote IPv6
// endpoints: an unquoted [ starts a list.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const endpoint&) const = default;
};

// A proxy an uplink goes through: "socks5://user:pass@host:1080",
// "socks4a://host:1080", "http://user:pass@host:3128" (CONNECT).
enum class proxy_kind { socks5, socks4a, http };
struct proxy {
  proxy_kind kind = proxy_kind::http;
  endpoint at;
  std::string username;  // empty: no authentication
  std::string password;  // never logged
  // The URL without the password, for logs.
  std::string to_string() const;
  bool operator==(const proxy&) const = default;
};

// How LSTP is carried to a middle proxy: as it is on TCP, inside TLS, as
// WebSocket messages, WebSocket inside TLS (looks like HTTPS), or as
// ordinary HTTP requests (POST up, long-polled GET down: PROTOCOL.md 9.1).
enum class carrier { tcp, tls, ws, wss, http };
// Carriers that look like plain web traffic: the environment's http_proxy
// and a PAC file's answer for http:// apply to them.
inline bool is_plain_web(carrier c) { return c == carrier::ws || c == carrier::http; }

// One way out of a network to a middle proxy: a carrier, directly or through
// a proxy. Written "tcp", "wss via http://proxy:3128", "ws via env".
struct way {
  enum class route { direct, proxy, environment };
  carrier how = carrier::tcp;
  route via = route::direct;
  std::optional<proxy> through;  // when via == proxy
  std::string to_string() const;
  bool operator==(const way&) const = default;
};

// Where a PAC file comes from: "pac+http://host[:port]/path" or
// "pac+file:/path" (file:// too). Throws bad_way with what was expected.
struct pac_source {
  enum class kind { http, file } from = kind::http;
  std::string host;  // http
  std::uint16_t port = 80;
  std::string target = "/";  // http: the request target
  std::string path;          // file
  std::string to_string() const;
};
pac_source parse_pac_source(std::string_view text);

// A value as messages show it: quoted, control bytes escaped, at most 80
// characters. Never called on a secret or a password. (The configuration's
// messages use it too.)
std::string quote(std::string_view s);
// Digits only, no sign, no overflow; nullopt otherwise.
std::optional<std::uint64_t> to_unsigned(std::string_view digits);

endpoint parse_endpoint(const std::string& text);
// "socks5://[user[:pass]@]host:port", "socks4a://host:port",
// "http://[user[:pass]@]host:port"; a URL without scheme is http.
// Percent-escapes in user and password are decoded.
proxy parse_proxy_url(const std::string& text);
// "tcp", "tls", "ws", "wss", "http", optionally followed by " via <proxy URL>" or
// " via env".
way parse_way(const std::string& text);

}  // namespace uplink
