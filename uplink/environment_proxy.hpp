// The proxy curl would use, read from the environment the way curl reads it:
// https_proxy / HTTPS_PROXY (http_proxy for plain-HTTP carriers; curl reads
// only the lower-case http_proxy), then all_proxy / ALL_PROXY; no_proxy /
// NO_PROXY lists hosts, domain suffixes, CIDR ranges or "*" that go direct.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "uplink/ways.hpp"

namespace uplink {

using env_lookup = std::function<const char*(const char*)>;

struct environment_proxy {
  std::optional<uplink::proxy> proxy;  // none: go direct
  std::string source;                  // "https_proxy", or why there is none ("no_proxy matches")
  std::string problem;                 // a variable that is set but unusable
};

// For a connection to `host` carried as plain HTTP (`plain_http`: the ws
// carrier) or as anything else (treated like https: tcp, tls, wss).
environment_proxy proxy_from_environment(const std::string& host, bool plain_http, const env_lookup& getenv);

// Whether a no_proxy list (comma or space separated) exempts `host`.
bool no_proxy_matches(const std::string& list, const std::string& host);

}  // namespace uplink
