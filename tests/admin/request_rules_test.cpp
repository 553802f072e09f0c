#include <catch2/catch.hpp>

#include "admin/request_rules.hpp"

using admin::decide;
using admin::endpoint;
using admin::request_facts;

namespace {
const std::string token = "lstp-token-test-token-for-the-admin-server";
const std::string bearer = "Bearer " + token;
const Botan::secure_vector<std::uint8_t> token_bytes(token.begin(), token.end());

admin::access_settings loopback(bool with_token = true) {
  admin::access_settings s;
  s.loopback_listener = true;
  if (with_token) s.token = token_bytes;
  return s;
}

admin::access_settings remote() {
  admin::access_settings s;
  s.loopback_listener = false;
  s.token = token_bytes;
  return s;
}

request_facts get(std::string_view target, std::string_view host = "127.0.0.1:8080") {
  request_facts r;
  r.method = "GET";
  r.target = target;
  r.host = host;
  return r;
}

request_facts post(std::string_view target, std::string_view auth = {}) {
  request_facts r;
  r.method = "POST";
  r.target = target;
  r.host = "127.0.0.1:8080";
  r.authorization = auth;
  return r;
}
}  // namespace

TEST_CASE("admin routes name their endpoints") {
  CHECK(decide(get("/"), loopback()).what == endpoint::page);
  CHECK(decide(get("/healthz"), loopback()).what == endpoint::healthz);
  CHECK(decide(get("/readyz"), loopback()).what == endpoint::readyz);
  CHECK(decide(get("/metrics"), loopback()).what == endpoint::metrics);
  CHECK(decide(get("/api/v1/status?x=1"), loopback()).what == endpoint::status);
  auto ev = decide(get("/api/v1/events?after=42"), loopback());
  CHECK(ev.status == 0);
  CHECK(ev.what == endpoint::events);
  CHECK(ev.after == 42);
  auto close = decide(post("/api/v1/channels/17/close", bearer), loopback());
  CHECK(close.status == 0);
  CHECK(close.what == endpoint::close_channel);
  CHECK(close.channel == 17);
  auto drop = decide(post("/api/v1/tunnels/office%2Dvpn/drop", bearer), loopback());
  CHECK(drop.status == 0);
  CHECK(drop.what == endpoint::drop_tunnel);
  CHECK(drop.tunnel == "office-vpn");
}

TEST_CASE("admin answers unknown paths - wrong methods and bad parameters clearly") {
  CHECK(decide(get("/nope"), loopback()).status == 404);
  CHECK(decide(get("/api/v1/channels/x/close"), loopback()).status == 404);
  CHECK(decide(post("/api/v1/channels//close", bearer), loopback()).status == 404);
  CHECK(decide(post("/api/v1/channels/99999999999999999999999/close", bearer), loopback()).status == 404);
  CHECK(decide(post("/api/v1/tunnels/a%2Fb/drop", bearer), loopback()).status == 404);
  CHECK(decide(post("/api/v1/tunnels/a%00b/drop", bearer), loopback()).status == 404);
  CHECK(decide(post("/api/v1/tunnels/a%zzb/drop", bearer), loopback()).status == 404);
  CHECK(decide(get("/api/v1/events?after=abc"), loopback()).status == 400);
  auto wrong = decide(get("/api/v1/channels/3/close"), loopback());
  CHECK(wrong.status == 405);
  CHECK(wrong.allow == "POST");
  auto wrong_post = decide(post("/api/v1/status", bearer), loopback());
  CHECK(wrong_post.status == 405);
  CHECK(wrong_post.allow == "GET, HEAD");
}

TEST_CASE("reads on a loopback listener need no token - but a loopback Host") {
  CHECK(decide(get("/api/v1/status"), loopback()).status == 0);
  CHECK(decide(get("/api/v1/status", "localhost:8080"), loopback()).status == 0);
  CHECK(decide(get("/api/v1/status", "[::1]:8080"), loopback()).status == 0);
  CHECK(decide(get("/metrics", "127.0.0.5"), loopback()).status == 0);
  // A foreign page reaching us through DNS rebinding names its own host.
  CHECK(decide(get("/api/v1/status", "evil.example:8080"), loopback()).status == 403);
  CHECK(decide(get("/api/v1/status", "127.0.0.1.evil.example"), loopback()).status == 403);
  CHECK(decide(get("/api/v1/status", ""), loopback()).status == 403);
  // ... unless it shows the token.
  auto r = get("/api/v1/status", "admin.example:8080");
  r.authorization = bearer;
  CHECK(decide(r, loopback()).status == 0);
}

TEST_CASE("a wrong token is refused even where none is needed") {
  auto r = get("/api/v1/status");
  r.authorization = "Bearer nope";
  CHECK(decide(r, loopback()).status == 401);
  r.authorization = "Basic " + token;
  CHECK(decide(r, loopback()).status == 401);
}

TEST_CASE("off loopback every read needs the token - the page itself holds nothing") {
  CHECK(decide(get("/api/v1/status", "10.0.0.1:8080"), remote()).status == 401);
  CHECK(decide(get("/metrics", "10.0.0.1:8080"), remote()).status == 401);
  CHECK(decide(get("/healthz", "10.0.0.1:8080"), remote()).status == 401);
  CHECK(decide(get("/", "10.0.0.1:8080"), remote()).status == 0);
  auto r = get("/metrics", "10.0.0.1:8080");
  r.authorization = bearer;
  CHECK(decide(r, remote()).status == 0);
}

TEST_CASE("actions need the token always - and the page's own origin") {
  CHECK(decide(post("/api/v1/channels/1/close"), loopback()).status == 401);
  CHECK(decide(post("/api/v1/channels/1/close", "Bearer wrong"), loopback()).status == 401);
  CHECK(decide(post("/api/v1/channels/1/close", bearer), loopback(false)).status == 403);
  auto r = post("/api/v1/channels/1/close", bearer);
  r.origin = "http://127.0.0.1:8080";
  r.fetch_site = "same-origin";
  CHECK(decide(r, loopback()).status == 0);
  r.origin = "http://evil.example";
  CHECK(decide(r, loopback()).status == 403);
  r.origin = "http://127.0.0.1:8080";
  r.fetch_site = "cross-site";
  CHECK(decide(r, loopback()).status == 403);
}

TEST_CASE("Host headers that name loopback") {
  CHECK(admin::is_loopback_host_header("127.0.0.1"));
  CHECK(admin::is_loopback_host_header("127.1.2.3:99"));
  CHECK(admin::is_loopback_host_header("localhost"));
  CHECK(admin::is_loopback_host_header("[::1]:8080"));
  CHECK_FALSE(admin::is_loopback_host_header("[::2]:8080"));
  CHECK_FALSE(admin::is_loopback_host_header("127.0.0.1x"));
  CHECK_FALSE(admin::is_loopback_host_header("128.0.0.1"));
  CHECK_FALSE(admin::is_loopback_host_header("localhost.evil"));
  CHECK_FALSE(admin::is_loopback_host_header("[::1"));
}
