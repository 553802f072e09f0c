// Conversions between the three ways an address is held at an end: SOCKS's,
// LSTP's (the same shape on the wire) and Asio's endpoints; and the mapping
// of a failed connect to the LSTP code that becomes the SOCKS reply.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "config/config.hpp"
#include "lstp/error.hpp"
#include "lstp/messages.hpp"
#include "socks/socks5.hpp"

namespace endproxy {

lstp::address to_lstp(const socks::address& a);
socks::address to_socks(const lstp::address& a);
lstp::address to_lstp(const boost::asio::ip::tcp::endpoint& e);
// A configured host:port: an IP literal as an address, anything else as a
// name for the server end to resolve.
lstp::address to_lstp(const config::endpoint& e);
// A literal IP destination as an endpoint (no resolution); nullopt for names.
std::optional<boost::asio::ip::tcp::endpoint> literal_endpoint(const lstp::address& a);

// Which LSTP error (and so which SOCKS reply) a failed resolve or connect is.
lstp::wire_error connect_error_code(const boost::system::error_code& ec, bool timed_out);

}  // namespace endproxy
