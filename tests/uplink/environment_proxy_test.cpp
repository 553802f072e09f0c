#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "uplink/environment_proxy.hpp"

namespace {
uplink::env_lookup env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}
}  // namespace

TEST_CASE("the environment's proxy is read as curl reads it") {
  SECTION("https_proxy before ALL_PROXY; http_proxy only for plain HTTP") {
    auto e = env({{"https_proxy", "http://corp:3128"}, {"ALL_PROXY", "socks5://s:1080"}, {"http_proxy", "h:80"}});
    auto tls = uplink::proxy_from_environment("mid.example", false, e);
    REQUIRE(tls.proxy);
    CHECK(tls.proxy->to_string() == "http://corp:3128");
    CHECK(tls.source == "https_proxy");
    auto plain = uplink::proxy_from_environment("mid.example", true, e);
    REQUIRE(plain.proxy);
    CHECK(plain.proxy->to_string() == "http://h:80");
  }
  SECTION("upper-case HTTPS_PROXY, then all_proxy") {
    auto e = env({{"HTTPS_PROXY", "socks4a://p:1080"}});
    CHECK(uplink::proxy_from_environment("m", false, e).proxy->kind == uplink::proxy_kind::socks4a);
    auto all = env({{"all_proxy", "socks5h://p:1080"}});
    CHECK(uplink::proxy_from_environment("m", true, all).proxy->kind == uplink::proxy_kind::socks5);
    // curl ignores an upper-case HTTP_PROXY (CGI's "Proxy:" header problem).
    auto upper = env({{"HTTP_PROXY", "h:80"}});
    CHECK(!uplink::proxy_from_environment("m", true, upper).proxy);
  }
  SECTION("no_proxy exempts the middle") {
    auto e = env({{"https_proxy", "corp:3128"}, {"no_proxy", "localhost, .example.com,10.0.0.0/8"}});
    CHECK(!uplink::proxy_from_environment("mid.example.com", false, e).proxy);
    CHECK(!uplink::proxy_from_environment("10.9.8.7", false, e).proxy);
    CHECK(uplink::proxy_from_environment("example.org", false, e).proxy);
  }
  SECTION("an unusable value is reported, not used") {
    auto e = env({{"https_proxy", "ftp://x:1"}});
    auto r = uplink::proxy_from_environment("m", false, e);
    CHECK(!r.proxy);
    CHECK(r.problem.rfind("https_proxy: unknown proxy scheme", 0) == 0);
  }
}

TEST_CASE("no_proxy matching") {
  CHECK(uplink::no_proxy_matches("*", "anything"));
  CHECK(uplink::no_proxy_matches("example.com", "EXAMPLE.com"));
  CHECK(uplink::no_proxy_matches("example.com", "a.b.example.com"));
  CHECK_FALSE(uplink::no_proxy_matches("example.com", "badexample.com"));
  CHECK(uplink::no_proxy_matches("192.168.0.0/16", "192.168.44.1"));
  CHECK_FALSE(uplink::no_proxy_matches("192.168.0.0/16", "192.169.0.1"));
  CHECK(uplink::no_proxy_matches("[::1]", "::1"));
  CHECK(uplink::no_proxy_matches("fd00::/8", "fd12::5"));
  CHECK_FALSE(uplink::no_proxy_matches("10.0.0.0/99", "10.0.0.1"));
  CHECK_FALSE(uplink::no_proxy_matches("", "x"));
}
