#include "endproxy/shared/addresses.hpp"

#include <boost/asio/error.hpp>

namespace endproxy {

lstp::address to_lstp(const socks::address& a) {
  lstp::address r;
  r.type = static_cast<lstp::address::kind>(a.type);
  r.ip = a.ip;
  r.host = a.host;
  r.port = a.port;
  return r;
}

socks::address to_socks(const lstp::address& a) {
  socks::address r;
  r.type = static_cast<socks::address::kind>(a.type);
  r.ip = a.ip;
  r.host = a.host;
  r.port = a.port;
  return r;
}

lstp::address to_lstp(const config::endpoint& e) {
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(e.host, ec);
  if (!ec) return to_lstp(boost::asio::ip::tcp::endpoint(ip, e.port));
  lstp::address r;
  r.type = lstp::address::kind::domain;
  r.host = e.host;
  r.port = e.port;
  return r;
}

lstp::address to_lstp(const boost::asio::ip::tcp::endpoint& e) {
  lstp::address r;
  r.port = e.port();
  auto ip = e.address();
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) ip = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6());
  if (ip.is_v4()) {
    r.type = lstp::address::kind::ipv4;
    auto b = ip.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), r.ip.begin());
  } else {
    r.type = lstp::address::kind::ipv6;
    auto b = ip.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), r.ip.begin());
  }
  return r;
}

std::optional<boost::asio::ip::tcp::endpoint> literal_endpoint(const lstp::address& a) {
  using namespace boost::asio::ip;
  switch (a.type) {
    case lstp::address::kind::ipv4: {
      address_v4::bytes_type b;
      std::copy_n(a.ip.begin(), 4, b.begin());
      return tcp::endpoint(address_v4(b), a.port);
    }
    case lstp::address::kind::ipv6: {
      address_v6::bytes_type b;
      std::copy_n(a.ip.begin(), 16, b.begin());
      return tcp::endpoint(address_v6(b), a.port);
    }
    case lstp::address::kind::domain: return std::nullopt;
  }
  return std::nullopt;
}

lstp::wire_error connect_error_code(const boost::system::error_code& ec, bool timed_out) {
  namespace error = boost::asio::error;
  if (timed_out) return lstp::wire_error::timeout;
  if (ec == error::connection_refused) return lstp::wire_error::connection_refused;
  if (ec == error::network_unreachable || ec == error::network_down) return lstp::wire_error::network_unreachable;
  if (ec == error::host_unreachable || ec == error::host_not_found || ec == error::host_not_found_try_again ||
      ec == error::no_data)
    return lstp::wire_error::host_unreachable;
  if (ec == error::timed_out) return lstp::wire_error::timeout;
  if (ec == error::access_denied) return lstp::wire_error::not_allowed;
  return lstp::wire_error::general;
}

}  // namespace endproxy
