#include "routing/route_table.hpp"

#include <algorithm>
#include <cctype>

#include "policy/names.hpp"

namespace routing {

namespace {
using policy::ascii_lower;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

route_table::route_table(std::vector<std::string> tunnels, std::vector<route> routes, std::string default_via)
    : tunnels_(std::move(tunnels)), routes_(std::move(routes)), default_via_(std::move(default_via)) {}

decision route_table::to(std::string_view via, std::string why) const {
  decision d;
  d.why = std::move(why);
  if (via == direct) {
    d.what = decision::kind::direct;
    return d;
  }
  auto it = std::find(tunnels_.begin(), tunnels_.end(), via);
  if (it == tunnels_.end()) return d;  // "refuse", or a name that is not ours
  d.what = decision::kind::tunnel;
  d.tunnel = static_cast<std::size_t>(it - tunnels_.begin());
  return d;
}

std::optional<std::size_t> route_table::default_tunnel() const {
  auto d = to(default_via_, "");
  if (d.what != decision::kind::tunnel) return std::nullopt;
  return d.tunnel;
}

decision route_table::decide(std::optional<std::string_view> name, bool is_v6, const std::uint8_t* ip,
                             std::uint16_t port) const {
  std::string host;
  if (name) {
    host = ascii_lower(*name);
    while (!host.empty() && host.back() == '.') host.pop_back();  // "intranet.corp-a.lstp." too
    // The longest matching suffix wins: with tunnels "corp" and "x.corp",
    // a.x.corp.lstp is "a" at x.corp.
    std::optional<std::size_t> best;
    std::size_t best_len = 0;
    for (std::size_t i = 0; i < tunnels_.size(); ++i) {
      const std::string suffix = "." + ascii_lower(tunnels_[i]) + "." + std::string(name_suffix);
      if (ends_with(host, suffix) && host.size() > suffix.size() && suffix.size() > best_len) {
        best = i;
        best_len = suffix.size();
      }
    }
    if (best) {
      decision d;
      d.what = decision::kind::tunnel;
      d.tunnel = *best;
      // The original letters, without the suffix.
      d.host = std::string(name->substr(0, host.size() - best_len));
      d.why = "name suffix " + host.substr(host.size() - best_len);
      return d;
    }
  }
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    for (auto& r : routes_[i].match) {
      if (!r.matches_port(port)) continue;
      const bool hit = name ? (r.what != policy::rule::kind::network && r.matches_name(host))
                            : (r.what != policy::rule::kind::name && r.matches_address(is_v6, ip));
      if (hit) return to(routes_[i].via, "route " + std::to_string(i + 1) + " (" + r.text + ")");
    }
  }
  return to(default_via_, "the default route");
}

}  // namespace routing
