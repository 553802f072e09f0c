// Which tunnel a client end request goes through (issue 4, point 4), when
// one client end holds tunnels to several server ends. Sans-I/O: the SOCKS
// front asks with the destination as the app gave it; nothing is resolved
// here (names are resolved by the server end the route leads to).
//
// Order of decision:
//   1. A name under ".<tunnel>.lstp" (seed 003's virtual host names) goes
//      to that tunnel, as the name without the suffix: "intranet.corp-a.lstp"
//      is "intranet" at corp-a's server end.
//   2. The routes, in order: the first whose rules match (the rule syntax of
//      server.allow: networks, names, *.domain, "*", optional :ports).
//      A network matches IP destinations, a name rule names.
//   3. The default: a tunnel, "direct" (the client end connects itself) or
//      "refuse" (SOCKS reply 0x02).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/access_policy.hpp"

namespace routing {

inline constexpr std::string_view direct = "direct";
inline constexpr std::string_view refuse = "refuse";
inline constexpr std::string_view name_suffix = "lstp";

struct route {
  std::vector<policy::rule> match;  // any one matching is enough
  std::string via;                  // a tunnel name or "direct"
};

struct decision {
  enum class kind { tunnel, direct, refuse };
  kind what = kind::refuse;
  std::size_t tunnel = 0;             // index into the tunnel names, for kind::tunnel
  std::optional<std::string> host;    // the name to ask for instead (suffix removed)
  std::string why;                    // for logs: "route 2 (10.0.0.0/8)", "name suffix .corp-a.lstp", "default"
};

class route_table {
 public:
  // `default_via`: a tunnel name, "direct" or "refuse". Every `via` must be
  // a tunnel name or "direct" (the config loader checks this).
  route_table(std::vector<std::string> tunnels, std::vector<route> routes, std::string default_via);

  // `name`: the destination host when the app gave a name; else `ip`
  // (4 or 16 bytes, per `is_v6`) is the address.
  decision decide(std::optional<std::string_view> name, bool is_v6, const std::uint8_t* ip, std::uint16_t port) const;

  const std::vector<std::string>& tunnels() const { return tunnels_; }
  // The tunnel the default route names, if it names one.
  std::optional<std::size_t> default_tunnel() const;

 private:
  decision to(std::string_view via, std::string why) const;

  std::vector<std::string> tunnels_;
  std::vector<route> routes_;
  std::string default_via_;
};

}  // namespace routing
