#include <catch2/catch.hpp>

#include <algorithm>

#include <string>
#include <vector>

#include "uplink/way_plan.hpp"

namespace {
std::vector<std::string> texts(const std::vector<uplink::candidate>& cs) {
  std::vector<std::string> out;
  for (auto& c : cs) out.push_back(c.to_string());
  return out;
}
std::vector<uplink::way> no_env(const uplink::endpoint&, const uplink::way&) { return {}; }
}  // namespace

TEST_CASE("automatic ways: direct first, then through the proxy, then web traffic, then plain requests last") {
  auto proxy = uplink::parse_proxy_url("http://corp:3128");
  auto c = uplink::plan_candidates({{"m", 443}}, {}, proxy, false, {}, no_env);
  CHECK(texts(c) == std::vector<std::string>{
                        "tcp to m:443", "tls to m:443", "tcp via http://corp:3128 to m:443",
                        "tls via http://corp:3128 to m:443", "ws to m:443", "wss to m:443",
                        "ws via http://corp:3128 to m:443", "wss via http://corp:3128 to m:443",
                        "http to m:443", "http via http://corp:3128 to m:443"});
}

TEST_CASE("the remembered winner goes first, per middle, middles keep their order") {
  uplink::way_memory memory = uplink::way_memory::parse("# comment\nb:80 wss\nnonsense\nc:1 carrier-pigeon\n");
  std::vector<uplink::way> ways = {uplink::parse_way("tcp"), uplink::parse_way("ws"), uplink::parse_way("wss")};
  auto c = uplink::plan_candidates({{"a", 80}, {"b", 80}}, ways, std::nullopt, false, memory, no_env);
  CHECK(texts(c) == std::vector<std::string>{"tcp to a:80", "ws to a:80", "wss to a:80", "wss to b:80", "tcp to b:80",
                                             "ws to b:80"});
  CHECK(memory.remember({"a", 80}, uplink::parse_way("ws")));
  CHECK_FALSE(memory.remember({"a", 80}, uplink::parse_way("ws")));
  auto again = uplink::way_memory::parse(memory.format());
  CHECK(again.winner({"a", 80}) == std::optional<std::string>("ws"));
  CHECK(again.winner({"b", 80}) == std::optional<std::string>("wss"));
  CHECK(!again.winner({"c", 1}));
}

TEST_CASE("ways through the environment resolve per middle, are dropped without a proxy, and listed once") {
  std::vector<uplink::way> ways = {uplink::parse_way("tcp via http://corp:3128"), uplink::parse_way("tcp via env"),
                                   uplink::parse_way("ws via env")};
  auto resolve = [](const uplink::endpoint& m, const uplink::way& w) -> std::vector<uplink::way> {
    if (m.host == "inside") return {};  // no_proxy
    return {uplink::way{w.how, uplink::way::route::proxy, uplink::parse_proxy_url("http://corp:3128")}};
  };
  auto c = uplink::plan_candidates({{"outside", 443}, {"inside", 443}}, ways, std::nullopt, false, {}, resolve);
  CHECK(texts(c) == std::vector<std::string>{"tcp via http://corp:3128 to outside:443",
                                             "ws via http://corp:3128 to outside:443",
                                             "tcp via http://corp:3128 to inside:443"});
}

TEST_CASE("a PAC file's answers stand in order where the environment's proxy would") {
  // "PROXY dead:3128; PROXY corp:3128; DIRECT" for every middle.
  auto resolve = [](const uplink::endpoint&, const uplink::way& w) -> std::vector<uplink::way> {
    std::vector<uplink::way> out;
    for (auto* p : {"http://dead:3128", "http://corp:3128"})
      out.push_back(uplink::way{w.how, uplink::way::route::proxy, uplink::parse_proxy_url(p)});
    out.push_back(uplink::way{w.how, uplink::way::route::direct, std::nullopt});
    return out;
  };
  auto c = uplink::plan_candidates({{"m", 443}}, {uplink::parse_way("tcp via env")}, std::nullopt, false, {}, resolve);
  CHECK(texts(c) == std::vector<std::string>{"tcp via http://dead:3128 to m:443", "tcp via http://corp:3128 to m:443",
                                             "tcp to m:443"});
  // Automatic ways: cheapest carrier first, the PAC's order within each.
  const auto a = texts(uplink::plan_candidates({{"m", 443}}, {}, std::nullopt, true, {}, resolve));
  auto at = [&](const std::string& t) { return std::find(a.begin(), a.end(), t) - a.begin(); };
  CHECK(at("tcp to m:443") == 0);
  CHECK(at("tcp via http://dead:3128 to m:443") < at("tcp via http://corp:3128 to m:443"));
  CHECK(at("wss via http://dead:3128 to m:443") < at("wss via http://corp:3128 to m:443"));
  CHECK(at("wss via http://corp:3128 to m:443") < static_cast<long>(a.size()));
  CHECK(std::count(a.begin(), a.end(), "tcp to m:443") == 1);  // DIRECT is the direct way, listed once
}
