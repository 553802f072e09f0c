// The client end's side of a SOCKS5 UDP association (RFC 1928 section 7,
// PROTOCOL.md 5.3): a UDP socket next to the app, tied to the app's TCP
// control connection. Each datagram is routed on its own destination
// (routing/route_table.hpp) and crosses in the UDP channel of its tunnel;
// a tunnel's channel is opened when its first datagram comes.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lstp/tunnel.hpp"
#include "routing/route_table.hpp"

namespace endproxy {

class tunnel_keeper;
class end_tunnel;

struct udp_routing {
  const routing::route_table& table;                      // kept alive by `owner`
  const std::vector<std::shared_ptr<tunnel_keeper>>& tunnels;  // by the table's tunnel index; kept alive by `owner`
  std::shared_ptr<const void> owner;                      // the front that holds both
};

// A UDP channel already open in one tunnel.
struct udp_leg {
  std::size_t tunnel = 0;
  std::shared_ptr<end_tunnel> through;
  lstp::channel_handle channel;  // freed when the association drops it
};

// Takes over `control` and `relay` once the app has its reply. Datagrams
// are taken only from `client` (the control connection's peer address; a
// port of 0 means the first datagram's source port fixes it). The
// association ends when the control connection closes; `slot` is held
// until then.
void start_socks_udp(udp_routing routing, std::optional<udp_leg> first, boost::asio::ip::tcp::socket control,
                     boost::asio::ip::udp::socket relay, boost::asio::ip::udp::endpoint client, std::string label,
                     std::shared_ptr<void> slot);

}  // namespace endproxy
