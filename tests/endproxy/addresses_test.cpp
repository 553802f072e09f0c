#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>

#include "endproxy/shared/addresses.hpp"

using namespace endproxy;
namespace error = boost::asio::error;

TEST_CASE("a failed connect maps to the LSTP code of the right SOCKS reply", "[endproxy][addresses]") {
  auto code = [](boost::system::error_code ec) { return lstp::to_socks_reply(connect_error_code(ec, false)); };
  CHECK(code(error::connection_refused) == 0x05);
  CHECK(code(error::network_unreachable) == 0x03);
  CHECK(code(error::network_down) == 0x03);
  CHECK(code(error::host_unreachable) == 0x04);
  CHECK(code(error::host_not_found) == 0x04);  // the name does not exist
  CHECK(code(error::host_not_found_try_again) == 0x04);
  CHECK(code(error::timed_out) == 0x06);
  CHECK(code(error::access_denied) == 0x02);
  CHECK(code(error::connection_reset) == 0x01);
  CHECK(lstp::to_socks_reply(connect_error_code({}, true)) == 0x06);  // our own deadline passed
}

TEST_CASE("addresses convert between SOCKS, LSTP and Asio", "[endproxy][addresses]") {
  auto v4 = socks::address::from_ipv4({10, 1, 2, 3}, 8080);
  auto l = to_lstp(v4);
  CHECK(l.to_string() == "10.1.2.3:8080");
  CHECK(to_socks(l) == v4);
  auto ep = literal_endpoint(l);
  REQUIRE(ep);
  CHECK(ep->address().to_string() == "10.1.2.3");
  CHECK(ep->port() == 8080);

  auto name = socks::address::from_domain("intranet.corp", 443);
  CHECK_FALSE(literal_endpoint(to_lstp(name)));  // names are resolved by the server end
  CHECK(to_socks(to_lstp(name)) == name);

  std::array<std::uint8_t, 16> six{};
  six[15] = 1;
  auto l6 = to_lstp(socks::address::from_ipv6(six, 22));
  CHECK(literal_endpoint(l6)->address().to_string() == "::1");

  // A v4-mapped local address is reported as plain IPv4 in BND.ADDR.
  boost::asio::ip::tcp::endpoint mapped(boost::asio::ip::make_address("::ffff:127.0.0.1"), 5);
  CHECK(to_lstp(mapped).to_string() == "127.0.0.1:5");
}
