#include "routing/route_table.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

using namespace routing;

namespace {
route make_route(std::initializer_list<const char*> rules, std::string via) {
  route r;
  for (auto* t : rules) r.match.push_back(policy::parse_rule(t));
  r.via = std::move(via);
  return r;
}

decision by_name(const route_table& t, std::string_view name, std::uint16_t port = 80) {
  return t.decide(name, false, nullptr, port);
}

decision by_ip(const route_table& t, const char* text, std::uint16_t port = 80) {
  std::uint8_t buf[16]{};
  const bool v6 = ::inet_pton(AF_INET, text, buf) != 1;
  if (v6) REQUIRE(::inet_pton(AF_INET6, text, buf) == 1);
  return t.decide(std::nullopt, v6, buf, port);
}

const route_table table({"corp-a", "lab-c"},
                        {make_route({"*.corp-a.example", "10.0.0.0/8"}, "corp-a"),
                         make_route({"172.16.0.0/12", "[fd00::/8]", "wiki.lab-c.example:443"}, "lab-c"),
                         make_route({"*.example.com"}, "direct")},
                        "refuse");
}  // namespace

TEST_CASE("routes pick a tunnel by domain suffix, by CIDR and by port", "[routing]") {
  auto d = by_name(table, "intranet.corp-a.example");
  CHECK(d.what == decision::kind::tunnel);
  CHECK(d.tunnel == 0);
  CHECK(d.why == "route 1 (*.corp-a.example)");
  CHECK_FALSE(d.host);
  CHECK(by_ip(table, "10.1.2.3").tunnel == 0);
  CHECK(by_ip(table, "172.20.0.1").tunnel == 1);
  CHECK(by_ip(table, "fd12::1").tunnel == 1);
  CHECK(by_ip(table, "172.20.0.1").why == "route 2 (172.16.0.0/12)");
  CHECK(by_name(table, "wiki.lab-c.example", 443).tunnel == 1);
  // The same name on another port matches no route.
  CHECK(by_name(table, "wiki.lab-c.example", 80).what == decision::kind::refuse);
  CHECK(by_name(table, "www.example.com").what == decision::kind::direct);
}

TEST_CASE("a network never matches a name, nor a name an address", "[routing]") {
  // "10.in-addr" style names are names: no CIDR applies; nothing is resolved here.
  CHECK(by_name(table, "10.0.0.1.nip.io").what == decision::kind::refuse);
  CHECK(by_ip(table, "192.0.2.1").what == decision::kind::refuse);
  CHECK(by_ip(table, "192.0.2.1").why == "the default route");
}

TEST_CASE("host.<tunnel>.lstp goes to that tunnel as host", "[routing]") {
  auto d = by_name(table, "Intranet.LAB-C.lstp");
  REQUIRE(d.what == decision::kind::tunnel);
  CHECK(d.tunnel == 1);
  REQUIRE(d.host);
  CHECK(*d.host == "Intranet");
  CHECK(d.why == "name suffix .lab-c.lstp");
  CHECK(*by_name(table, "10.0.0.5.corp-a.lstp.").host == "10.0.0.5");
  // The suffix alone, or an unknown tunnel, is not a virtual host name.
  CHECK(by_name(table, "corp-a.lstp").what == decision::kind::refuse);
  CHECK(by_name(table, "x.other.lstp").what == decision::kind::refuse);
}

TEST_CASE("the default route: a tunnel, direct or refuse", "[routing]") {
  route_table to_a({"corp-a"}, {}, "corp-a");
  CHECK(by_ip(to_a, "192.0.2.1").what == decision::kind::tunnel);
  route_table go_direct({"corp-a"}, {make_route({"10.0.0.0/8"}, "corp-a")}, "direct");
  CHECK(by_ip(go_direct, "192.0.2.1").what == decision::kind::direct);
  CHECK(by_ip(go_direct, "10.0.0.1").what == decision::kind::tunnel);
}

TEST_CASE("the longest .<tunnel>.lstp suffix wins", "[routing]") {
  route_table t({"corp", "x.corp"}, {}, "refuse");
  auto d = by_name(t, "a.x.corp.lstp");
  REQUIRE(d.what == decision::kind::tunnel);
  CHECK(d.tunnel == 1);
  CHECK(*d.host == "a");
  CHECK(by_name(t, "a.y.corp.lstp").tunnel == 0);
  CHECK(*by_name(t, "a.y.corp.lstp").host == "a.y");
}
