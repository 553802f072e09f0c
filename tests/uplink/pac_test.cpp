// Proxy discovery: PAC answers, WPAD's places, PAC sources, and PAC files
// run by libpacparser in a child process (uplink/pac*.hpp).
#include <catch2/catch.hpp>

#include <chrono>

#include "uplink/pac.hpp"
#include "uplink/pac_evaluator.hpp"
#include "uplink/pac_fetch.hpp"

using uplink::pac_route;

namespace {
std::string text(const std::vector<pac_route>& routes) {
  std::string out;
  for (const auto& r : routes) out += (out.empty() ? "" : ", ") + (r.through ? r.through->to_string() : "DIRECT");
  return out;
}
}  // namespace

TEST_CASE("a PAC answer becomes routes in its order", "[uplink][pac]") {
  std::vector<std::string> skipped;
  auto r = uplink::parse_pac_answer(" PROXY dead.corp:3128;PROXY proxy.corp:8080 ; socks5 s.corp:1080; SOCKS4 o:1;"
                                    " HTTPS tls.corp:443; DIRECT; DIRECT; PROXY nonsense",
                                    &skipped);
  CHECK(text(r) == "http://dead.corp:3128, http://proxy.corp:8080, socks5://s.corp:1080, socks4a://o:1, DIRECT");
  REQUIRE(skipped.size() == 2);
  CHECK(skipped[0] == "\"HTTPS tls.corp:443\" (lstp does not speak \"HTTPS\" proxies)");
  CHECK(skipped[1] == "\"PROXY nonsense\" (expected host:port)");
  CHECK(uplink::parse_pac_answer("").empty());
  CHECK(text(uplink::parse_pac_answer("DIRECT")) == "DIRECT");
}

TEST_CASE("a PAC file is asked about a middle as a browser would ask about the page", "[uplink][pac]") {
  CHECK(uplink::pac_query_for({"mid.example", 443}, uplink::carrier::wss) ==
        uplink::pac_query{"https://mid.example/", "mid.example"});
  CHECK(uplink::pac_query_for({"mid.example", 7000}, uplink::carrier::tcp).url == "https://mid.example:7000/");
  CHECK(uplink::pac_query_for({"mid.example", 80}, uplink::carrier::ws).url == "http://mid.example/");
  CHECK(uplink::pac_query_for({"2001:db8::1", 443}, uplink::carrier::tls).url == "https://[2001:db8::1]/");
}

TEST_CASE("PAC sources and WPAD's places", "[uplink][pac]") {
  auto h = uplink::parse_pac_source("pac+http://wpad.corp:8080/proxy.pac");
  CHECK(h.host == "wpad.corp");
  CHECK(h.port == 8080);
  CHECK(h.target == "/proxy.pac");
  CHECK(h.to_string() == "pac+http://wpad.corp:8080/proxy.pac");
  CHECK(uplink::parse_pac_source("pac+http://[2001:db8::5]/p").host == "2001:db8::5");
  CHECK(uplink::parse_pac_source("pac+file:/etc/proxy.pac").path == "/etc/proxy.pac");
  // Written and read back, a path is the same, even one starting with "//"
  // (found by the fuzzer).
  for (const auto* text : {"pac+file:/etc/proxy.pac", "pac+file:///etc/proxy.pac", "pac+file://////x"}) {
    const auto source = uplink::parse_pac_source(text);
    CHECK(uplink::parse_pac_source(source.to_string()).path == source.path);
  }
  CHECK_THROWS_WITH(uplink::parse_pac_source("pac+https://x/p"), Catch::Contains("expected pac+http://"));
  CHECK_THROWS_WITH(uplink::parse_pac_source("pac+file:proxy.pac"), Catch::Contains("absolute path"));
  CHECK_THROWS_WITH(uplink::parse_pac_source("pac+http://x:0/p"), Catch::Contains("port"));

  auto w = uplink::wpad_sources("nameserver 10.0.0.1\n# search old.example\ndomain ignored.example\n"
                                "search corp.example. lab.corp.example corp.example bad_name\n");
  REQUIRE(w.size() == 2);
  CHECK(w[0].to_string() == "pac+http://wpad.corp.example/wpad.dat");
  CHECK(w[1].host == "wpad.lab.corp.example");
  CHECK(uplink::wpad_sources("nameserver 1.1.1.1\n").empty());
}

TEST_CASE("a PAC file runs in a child process: answers, syntax errors and loops", "[uplink][pac][hostile]") {
  const std::vector<uplink::pac_query> q = {{"https://mid.example/", "mid.example"}, {"http://x.corp/", "x.corp"}};
  auto ok = uplink::evaluate_pac(R"(function FindProxyForURL(url, host) {
      if (dnsDomainIs(host, ".corp")) return "DIRECT";
      if (shExpMatch(url, "https:*")) return "PROXY dead:1; PROXY proxy.corp:3128";
      return "DIRECT"; })",
                                 q);
  INFO(ok.error);
  REQUIRE(ok.error.empty());
  CHECK(ok.answers == std::vector<std::string>{"PROXY dead:1; PROXY proxy.corp:3128", "DIRECT"});

  auto bad = uplink::evaluate_pac("function FindProxyForURL(url, host) { return ", q);
  CHECK(bad.answers.empty());
  CHECK(bad.error.rfind("it does not parse", 0) == 0);

  const auto start = std::chrono::steady_clock::now();
  auto loop = uplink::evaluate_pac("function FindProxyForURL(url, host) { while (true) {} }", q,
                                   std::chrono::milliseconds(300));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(loop.error == "FindProxyForURL did not return within 300 ms (a loop, or a slow dnsResolve?)");

  auto none = uplink::evaluate_pac("var x = 1;", q);
  CHECK(none.error.rfind("FindProxyForURL(\"https://mid.example/\") failed", 0) == 0);

  auto missing = uplink::fetch_pac(uplink::parse_pac_source("pac+file:/nonexistent/proxy.pac"));
  CHECK(missing.error == "cannot read \"/nonexistent/proxy.pac\"");
}
