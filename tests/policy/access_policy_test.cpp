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

TEST_CASE("special addresses are reached only where a network rule names them") {
  // The case: "allow everything but loopback" must not be walked
  // around by another spelling of loopback, nor reach the host itself.
  auto p = make({"*"}, {"127.0.0.0/8", "::1"});
  for (const char* ip : {"0.0.0.0", "::", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "127.0.0.1",
                         "169.254.169.254", "224.0.0.1", "255.255.255.255", "fe80::1", "ff02::1", "0.1.2.3"}) {
    INFO(ip);
    CHECK_FALSE(at(p, ip, 80).allowed);
  }
  CHECK(at(p, "::ffff:127.0.0.1", 80).why == "deny rule \"127.0.0.0/8\"");
  CHECK(at(p, "64:ff9b::7f00:1", 80).why == "deny rule \"127.0.0.0/8\" (embedded in the IPv6 address)");
  CHECK(at(p, "0.0.0.0", 80).why ==
        "unspecified (0.0.0.0/8) addresses are reached only where an allow rule names their network");
  CHECK(at(p, "169.254.169.254", 80).why ==
        "link-local addresses are reached only where an allow rule names their network");
  // A name that resolves to one is checked by its address.
  CHECK_FALSE(at(p, "127.0.0.1", 80, "localhost").allowed);
  CHECK(at(p, "192.0.2.7", 80, "www.example").allowed);  // an ordinary address stays allowed
  // Ordinary destinations, however spelled, stay allowed.
  CHECK(at(p, "192.0.2.1", 80).allowed);
  CHECK(at(p, "2001:db8::1", 80).allowed);
  CHECK(at(p, "64:ff9b::c000:201", 80).allowed);  // NAT64 of 192.0.2.1
  CHECK(at(p, "::ffff:192.0.2.1", 80).allowed);
}

TEST_CASE("a network rule inside a special range names it, and \"*\", 0.0.0.0/0 or a name do not") {
  auto loop = make({"127.0.0.0/8:80", "[::1]"});
  CHECK(at(loop, "127.0.0.1", 80).allowed);
  CHECK(at(loop, "::ffff:127.0.0.1", 80).allowed);  // the same IPv4 address
  CHECK_FALSE(at(loop, "127.0.0.1", 81).allowed);   // its port only
  CHECK(at(loop, "::1", 443).allowed);
  CHECK(at(loop, "127.0.0.1", 80, "localhost").allowed);
  CHECK_FALSE(at(make({"0.0.0.0/0"}), "127.0.0.1", 80).allowed);
  CHECK(at(make({"0.0.0.0/0"}), "192.0.2.1", 80).allowed);
  CHECK_FALSE(at(make({"localhost"}), "127.0.0.1", 80, "localhost").allowed);
  CHECK(at(make({"169.254.169.254"}), "169.254.169.254", 80).allowed);
  CHECK_FALSE(at(make({"169.254.169.254"}), "169.254.169.253", 80).allowed);
  // A mapped address is the IPv4 address: allowed by the IPv4 rule.
  CHECK(at(make({"10.0.0.0/8"}), "::ffff:10.1.2.3", 22).allowed);
}
