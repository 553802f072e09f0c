// What the admin server does with one HTTP request, decided without I/O:
// which endpoint it names, and whether this caller may use it.
//
// The rules (README "Admin server"):
//  - reads (the page, /healthz, /readyz, /metrics, /api/v1/status and
//    /api/v1/events) need no token on a loopback listener, as long as the
//    Host header names a loopback address (a web page elsewhere cannot read
//    them through DNS rebinding); on any other listener they need the token;
//  - the page itself holds no facts (it asks the API), so it is served to
//    anyone: on a non-loopback listener it asks for the token;
//  - every action (POST) needs `Authorization: Bearer <token>` always, and
//    comes from the page's own origin when a browser says where it comes
//    from (Origin, Sec-Fetch-Site): another site cannot make a browser act.
#pragma once

#include <botan/secmem.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace admin {

struct request_facts {
  std::string_view method;         // "GET", "POST", ...
  std::string_view target;         // "/api/v1/status?x=1"
  std::string_view authorization;  // the Authorization header, if any
  std::string_view host;           // the Host header
  std::string_view origin;         // the Origin header, if any
  std::string_view fetch_site;     // the Sec-Fetch-Site header, if any
};

struct access_settings {
  bool loopback_listener = true;
  // The admin token (its text), if configured: wiped when freed.
  std::optional<Botan::secure_vector<std::uint8_t>> token;
};

enum class endpoint { page, healthz, readyz, metrics, status, events, close_channel, drop_tunnel };

struct decision {
  // 0: go ahead with `what`; otherwise the HTTP status to answer with
  // `message` (401 also asks for a Bearer token, 405 lists `allow`).
  int status = 0;
  std::string message;
  std::string allow;
  endpoint what = endpoint::page;
  std::uint64_t channel = 0;  // close_channel: the process-wide channel id
  std::string tunnel;         // drop_tunnel: the tunnel's name (percent-decoded)
  std::uint64_t after = 0;    // events: only those with a larger number
};

decision decide(const request_facts& r, const access_settings& s);

// Whether a Host header names this machine's loopback (127.0.0.0/8, ::1,
// localhost), with or without a port.
bool is_loopback_host_header(std::string_view host);

// "%2F" and the like decoded; nullopt when malformed or holding a NUL.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace admin
