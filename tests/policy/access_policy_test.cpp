#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <string>

#include "policy/access_policy.hpp"

namespace {

policy::access_policy make(std::initializer_list<const char*> allow, std::initializer_list<const char*> deny = {}) {
  std::vector<policy::rule> a, d;
  for (auto t : allow) a.push_back(policy::parse_rule(t));
  for (auto t : deny) d.push_back(policy::parse_rule(t));
  return policy::access_policy(std::move(a), std::move(d));
}

policy::verdict at(const policy::access_policy& p, const char* ip, std::uint16_t port, const char* name = nullptr) {
  std::array<std::uint8_t, 16> b{};
  const bool v6 = ::inet_pton(AF_INET, ip, b.data()) != 1;
  if (v6) REQUIRE(::inet_pton(AF_INET6, ip, b.data()) == 1);
  return p.check(name ? std::optional<std::string_view>(name) : std::nullopt, v6, b.data(), port);
}

std::string error_of(const char* text) {
  try {
    policy::parse_rule(text);
  } catch (const policy::rule_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("rules: networks, names, any, with ports") {
  auto r = policy::parse_rule("10.0.0.0/8:22,80,8000-8100");
  CHECK(r.what == policy::rule::kind::network);
  CHECK(r.prefix == 8);
  CHECK(r.ports.size() == 3);
  CHECK(r.matches_port(8050));
  CHECK_FALSE(r.matches_port(8101));
  CHECK(policy::parse_rule("[fd00::/8]:443").v6);
  CHECK(policy::parse_rule("fd00::/8").ports.empty());
  CHECK(policy::parse_rule("192.0.2.7").prefix == 32);
  CHECK(policy::parse_rule("*:443").what == policy::rule::kind::any);
  auto n = policy::parse_rule("*.Corp.Example.");
  CHECK(n.subdomains);
  CHECK(n.name == "corp.example");
  CHECK(n.matches_name("a.b.corp.example"));
  CHECK_FALSE(n.matches_name("corp.example"));
  CHECK_FALSE(n.matches_name("xcorp.example"));
  CHECK(policy::parse_rule("intranet.example").matches_name("intranet.example"));

  CHECK(error_of("") == "empty rule");
  CHECK(error_of("10.0.0.0/33") == "prefix length out of range in \"10.0.0.0/33\"");
  CHECK(error_of("10.0.0.0/8:0") == "bad port range in \"10.0.0.0/8:0\"");
  CHECK(error_of("h:90-80") == "bad port range in \"h:90-80\"");
  CHECK(error_of("h:") == "no ports after ':' in \"h:\"");
  CHECK(error_of("bad host!") != "");
  CHECK(error_of("[10.0.0.1]:80") == "expected an IPv6 address inside [] in \"[10.0.0.1]:80\"");
}

TEST_CASE("an empty policy allows nothing") {
  auto p = make({});
  CHECK(p.allows_nothing());
  CHECK_FALSE(at(p, "127.0.0.1", 80).allowed);
  auto v = p.check_name("localhost", 80);
  CHECK((v.decided && !v.allowed));
  CHECK(v.why == "no allow rule matches");
}

TEST_CASE("deny wins over allow, and names cannot detour around address rules") {
  auto p = make({"10.0.0.0/8", "*.corp.example:443", "[::1]"}, {"10.0.0.1", "secret.corp.example"});
  CHECK(at(p, "10.2.3.4", 22).allowed);
  CHECK(at(p, "10.2.3.4", 22).why == "allow rule \"10.0.0.0/8\"");
  CHECK(at(p, "10.0.0.1", 22).why == "deny rule \"10.0.0.1\"");
  CHECK_FALSE(at(p, "192.0.2.1", 22).allowed);
  CHECK(at(p, "::1", 80).allowed);
  // By name: allowed by pattern on its port only, its addresses still
  // meeting the deny rules.
  CHECK(at(p, "192.0.2.9", 443, "www.corp.example").allowed);
  CHECK_FALSE(at(p, "192.0.2.9", 80, "www.corp.example").allowed);
  CHECK_FALSE(at(p, "10.0.0.1", 443, "www.corp.example").allowed);
  // A denied name is refused before resolution; an unknown one waits for
  // its addresses (a network rule may allow them).
  auto denied = p.check_name("SECRET.corp.example", 443);
  CHECK((denied.decided && !denied.allowed));
  CHECK(denied.why == "deny rule \"secret.corp.example\"");
  CHECK_FALSE(p.check_name("other.example", 80).decided);
  CHECK_FALSE(p.check_name("www.corp.example", 443).decided);  // allowed by name, addresses still checked
  CHECK(p.check_name("www.corp.example", 443).allowed);
}

TEST_CASE("without network rules an unmatched name is refused before resolution") {
  auto p = make({"*.corp.example"});
  auto v = p.check_name("evil.example", 80);
  CHECK((v.decided && !v.allowed));
}
