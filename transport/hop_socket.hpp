// Socket options for hops (end <-> middle, middle <-> middle): no Nagle delay,
// and TCP keepalive so a peer that vanished without a FIN (power loss, a NAT
// that forgot the mapping) is noticed in about a minute even when the hop is
// idle, e.g. a setup waiting for its partner.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <boost/asio/ip/tcp.hpp>

namespace transport {

inline constexpr std::size_t unsent_limit = 128 * 1024;

inline void configure_hop_socket(boost::asio::ip::tcp::socket& s) {
  boost::system::error_code ignored;
  s.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  s.set_option(boost::asio::socket_base::keep_alive(true), ignored);
  using idle = boost::asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>;
  using interval = boost::asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
  using count = boost::asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
  s.set_option(idle(30), ignored);
  s.set_option(interval(10), ignored);
  s.set_option(count(3), ignored);
  // Keep little unsent data in the kernel: bulk bytes queued there sit in
  // front of every later frame of every channel (an interactive keystroke
  // behind megabytes of a download). Held here instead, the tunnel's fair
  // writer decides what goes next.
  using notsent_lowat = boost::asio::detail::socket_option::integer<IPPROTO_TCP, TCP_NOTSENT_LOWAT>;
  s.set_option(notsent_lowat(static_cast<int>(unsent_limit)), ignored);
}

}  // namespace transport
