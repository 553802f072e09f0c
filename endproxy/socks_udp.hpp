// The client end's side of a SOCKS5 UDP association (RFC 1928 section 7,
// PROTOCOL.md 5.3): a UDP socket next to the app, tied to the app's TCP
// control connection and to one UDP channel of the tunnel.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <memory>
#include <string>

namespace endproxy {

class end_tunnel;

// Takes over `control` and `relay` once the app has its reply. Datagrams
// are taken only from `client` (the control connection's peer address; a
// port of 0 means the first datagram's source port). The association ends
// when the control connection closes or the channel ends; `slot` is held
// until then.
void start_socks_udp(std::shared_ptr<end_tunnel> tunnel, std::uint32_t id, boost::asio::ip::tcp::socket control,
                     boost::asio::ip::udp::socket relay, boost::asio::ip::udp::endpoint client, std::string label,
                     std::shared_ptr<void> slot);

}  // namespace endproxy
