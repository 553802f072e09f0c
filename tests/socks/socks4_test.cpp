#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "socks/socks4.hpp"

using socks::parse_status;

namespace {
std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("SOCKS4 CONNECT to an address, with a user id") {
  auto in = bytes(std::string("\x04\x01\x00\x50\x0a\x01\x02\x03" "alice\0tail", 19));
  auto r = socks::parse_socks4_request(in);
  REQUIRE(r.status == parse_status::done);
  CHECK(r.consumed == 14);
  CHECK(r.value.cmd == 1);
  CHECK(r.value.userid == "alice");
  CHECK(r.value.dst == socks::address::from_ipv4({10, 1, 2, 3}, 80));
  // Every strict prefix asks for more.
  for (std::size_t n = 0; n < 14; ++n)
    CHECK(socks::parse_socks4_request(std::span<const std::uint8_t>(in.data(), n)).status == parse_status::need_more);
}

TEST_CASE("SOCKS4a carries a name after the user id") {
  auto in = bytes(std::string("\x04\x01\x01\xbb\x00\x00\x00\x07\0intranet.a.example\0", 28));
  auto r = socks::parse_socks4_request(in);
  REQUIRE(r.status == parse_status::done);
  CHECK(r.consumed == in.size());
  CHECK(r.value.dst == socks::address::from_domain("intranet.a.example", 443));
  CHECK(r.value.userid.empty());
}

TEST_CASE("SOCKS4 faults") {
  CHECK(socks::parse_socks4_request(bytes("\x05")).error == socks::parse_error::bad_version);
  auto empty_host = bytes(std::string("\x04\x01\x00\x50\x00\x00\x00\x01\0\0", 10));
  CHECK(socks::parse_socks4_request(empty_host).error == socks::parse_error::empty_domain);
  auto long_user = bytes(std::string("\x04\x01\x00\x50\x01\x02\x03\x04", 8) + std::string(256, 'u'));
  CHECK(socks::parse_socks4_request(long_user).error == socks::parse_error::too_long);
  auto long_user_prefix = bytes(std::string("\x04\x01\x00\x50\x01\x02\x03\x04", 8) + std::string(255, 'u'));
  CHECK(socks::parse_socks4_request(long_user_prefix).status == parse_status::need_more);
}

TEST_CASE("SOCKS4 replies") {
  std::vector<std::uint8_t> out;
  socks::write_socks4_reply(out, true, socks::address::from_ipv4({127, 0, 0, 1}, 4242));
  CHECK(out == std::vector<std::uint8_t>{0x00, 0x5a, 0x10, 0x92, 127, 0, 0, 1});
  out.clear();
  socks::write_socks4_reply(out, false, socks::address::from_domain("x", 1));
  CHECK(out == std::vector<std::uint8_t>{0x00, 0x5b, 0x00, 0x01, 0, 0, 0, 0});
}
