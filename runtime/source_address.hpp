// What counts as one source when connections are counted per source: an
// IPv4 address, or an IPv6 /64 (one host or site usually holds a whole /64,
// so counting single IPv6 addresses would give it billions of shares). An
// IPv4-mapped IPv6 address counts as its IPv4 address.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <string>

namespace runtime {

inline std::string source_of(const boost::asio::ip::address& a) {
  if (a.is_v6()) {
    auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
    auto bytes = v6.to_bytes();
    for (std::size_t i = 8; i < bytes.size(); ++i) bytes[i] = 0;
    return boost::asio::ip::address_v6(bytes).to_string() + "/64";
  }
  return a.to_string();
}

}  // namespace runtime
