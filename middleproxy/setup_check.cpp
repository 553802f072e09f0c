#include "middleproxy/setup_check.hpp"

#include <algorithm>

namespace middleproxy {

std::optional<setup_refusal> check_setup(const lstp::setup_message& s, std::string_view middle_name) {
  const auto& topo = s.topology;
  if (topo.empty() || topo.front().kind == lstp::hop_kind::middle ||
      std::any_of(topo.begin() + 1, topo.end(), [](auto& e) { return e.kind != lstp::hop_kind::middle; }))
    return setup_refusal{lstp::wire_error::protocol_error, "the topology must list one end, then middles"};
  if (std::any_of(topo.begin(), topo.end(), [&](auto& e) { return e.name == middle_name; }))
    return setup_refusal{lstp::wire_error::topology_loop, "the setup already passed middle \"" +
                                                              std::string(middle_name) + "\": " + lstp::format_path(topo)};
  // +1 for this middle, +1 for the end that receives it and prepends itself
  // to its view (which crosses the tunnel again inside TLS).
  if (topo.size() + 2 > lstp::max_topology_entries)
    return setup_refusal{lstp::wire_error::topology_too_long, "the tunnel would cross more than 30 middle proxies"};
  return std::nullopt;
}

}  // namespace middleproxy
