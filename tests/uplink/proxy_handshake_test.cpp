#include <catch2/catch.hpp>

#include <string>

#include "uplink/proxy_handshake.hpp"

using uplink::bytes;
using uplink::proxy_handshake;
using status = proxy_handshake::status;

namespace {

uplink::proxy make_proxy(uplink::proxy_kind kind, std::string user = {}, std::string password = {}) {
  uplink::proxy p;
  p.kind = kind;
  p.at = {"proxy.example", 1080};
  p.username = std::move(user);
  p.password = std::move(password);
  return p;
}

status feed(proxy_handshake& h, std::initializer_list<std::uint8_t> b) {
  bytes v(b);
  return h.feed(v);
}

status feed(proxy_handshake& h, const std::string& s) {
  return h.feed({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

std::string text(const bytes& b) { return std::string(b.begin(), b.end()); }

}  // namespace

TEST_CASE("SOCKS5 without authentication asks for a name and keeps the bytes after the reply") {
  auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "middle.example", 443);
  CHECK(h->take_output() == bytes{0x05, 0x01, 0x00});
  CHECK(feed(*h, {0x05}) == status::need_more);  // split anywhere
  CHECK(feed(*h, {0x00}) == status::need_more);
  bytes req = h->take_output();
  bytes want = {0x05, 0x01, 0x00, 0x03, 14};
  for (char c : std::string("middle.example")) want.push_back(static_cast<std::uint8_t>(c));
  want.push_back(0x01);
  want.push_back(0xbb);
  CHECK(req == want);
  // Reply with a domain BND.ADDR, then two bytes of the target's.
  CHECK(feed(*h, {0x05, 0x00, 0x00, 0x03, 3, 'a', 'b', 'c', 0x00, 0x50, 0xaa, 0xbb}) == status::done);
  CHECK(h->leftover() == bytes{0xaa, 0xbb});
}

TEST_CASE("SOCKS5 with username and password, IP literals as addresses") {
  auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5, "al", "pw"), "10.1.2.3", 7000);
  CHECK(h->take_output() == bytes{0x05, 0x02, 0x00, 0x02});
  CHECK(feed(*h, {0x05, 0x02}) == status::need_more);
  CHECK(h->take_output() == bytes{0x01, 2, 'a', 'l', 2, 'p', 'w'});
  CHECK(feed(*h, {0x01, 0x00}) == status::need_more);
  CHECK(h->take_output() == bytes{0x05, 0x01, 0x00, 0x01, 10, 1, 2, 3, 0x1b, 0x58});
  CHECK(feed(*h, {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0}) == status::done);
  CHECK(h->leftover().empty());

  auto v6 = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "::1", 80);
  v6->take_output();
  feed(*v6, {0x05, 0x00});
  auto out = v6->take_output();
  REQUIRE(out.size() == 4 + 16 + 2);
  CHECK(out[3] == 0x04);
}

TEST_CASE("SOCKS5 failures say what went wrong") {
  SECTION("refused credentials") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5, "al", "pw"), "m", 1);
    h->take_output();
    feed(*h, {0x05, 0x02});
    CHECK(feed(*h, {0x01, 0x01}) == status::failed);
    CHECK(h->error() == "the SOCKS5 proxy refused the username or password");
  }
  SECTION("credentials wanted but none given") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "m", 1);
    CHECK(feed(*h, {0x05, 0x02}) == status::failed);
    CHECK(h->error().find("wants a username and password") != std::string::npos);
  }
  SECTION("no acceptable method") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "m", 1);
    CHECK(feed(*h, {0x05, 0xff}) == status::failed);
  }
  SECTION("the connection is refused") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "m", 1);
    feed(*h, {0x05, 0x00});
    CHECK(feed(*h, {0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0}) == status::failed);
    CHECK(h->error() == "the SOCKS5 proxy could not connect to m:1: connection refused");
  }
  SECTION("not a SOCKS5 proxy") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "m", 1);
    CHECK(feed(*h, "HTTP/1.1 400 Bad Request\r\n") == status::failed);
    CHECK(h->error().find("does not speak SOCKS5") != std::string::npos);
  }
  SECTION("a bad address type in the reply") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), "m", 1);
    feed(*h, {0x05, 0x00});
    CHECK(feed(*h, {0x05, 0x00, 0x00, 0x07, 0}) == status::failed);
  }
  SECTION("a name longer than SOCKS5 carries") {
    auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks5), std::string(256, 'a'), 1);
    CHECK(h->state() == status::failed);
  }
}

TEST_CASE("SOCKS4a sends names, SOCKS4 addresses, replies are 8 bytes") {
  auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks4a, "id"), "mid.example", 80);
  CHECK(text(h->take_output()) == std::string("\x04\x01\x00\x50\x00\x00\x00\x01id\0mid.example\0", 23));
  CHECK(feed(*h, {0x00, 0x5a, 0, 0, 0, 0, 0}) == status::need_more);
  CHECK(feed(*h, {0, 0x42}) == status::done);
  CHECK(h->leftover() == bytes{0x42});

  auto ip = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks4a), "192.0.2.7", 443);
  CHECK(ip->take_output() == bytes{0x04, 0x01, 0x01, 0xbb, 192, 0, 2, 7, 0x00});
  CHECK(feed(*ip, {0x00, 0x5b, 0, 0, 0, 0, 0, 0}) == status::failed);

  auto v6 = proxy_handshake::make(make_proxy(uplink::proxy_kind::socks4a), "2001:db8::1", 443);
  CHECK(v6->state() == status::failed);
  CHECK(v6->error() == "a SOCKS4a proxy cannot reach an IPv6 address");
}

TEST_CASE("HTTP CONNECT with Basic authentication, the answer's header ends the handshake") {
  auto h = proxy_handshake::make(make_proxy(uplink::proxy_kind::http, "Aladdin", "open sesame"), "mid.example", 443);
  CHECK(text(h->take_output()) == "CONNECT mid.example:443 HTTP/1.1\r\nHost: mid.example:443\r\n\r\n");
  CHECK(feed(*h, "HTTP/1.1 407 Login\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n") ==
        status::need_more);
  CHECK(text(h->take_output()) ==
        "CONNECT mid.example:443 HTTP/1.1\r\nHost: mid.example:443\r\n"
        "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
  CHECK(feed(*h, "HTTP/1.1 200 Connection established\r\nVia: x\r\n") == status::need_more);
  auto st = feed(*h, "\r\n\x16\x03");
  INFO(h->error());
  CHECK(st == status::done);
  CHECK(h->leftover() == bytes{0x16, 0x03});

  auto v6 = proxy_handshake::make(make_proxy(uplink::proxy_kind::http), "2001:db8::1", 80);
  CHECK(text(v6->take_output()).rfind("CONNECT [2001:db8::1]:80 HTTP/1.1\r\n", 0) == 0);
}

TEST_CASE("HTTP CONNECT refusals and nonsense") {
  auto make = [] { return proxy_handshake::make(make_proxy(uplink::proxy_kind::http), "m", 22); };
  auto h = make();
  CHECK(feed(*h, "HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n") == status::failed);
  CHECK(h->error() == "the HTTP proxy answered 403 Forbidden (it does not allow CONNECT to this host or port)");
  h = make();
  CHECK(feed(*h, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n"
                 "Content-Length: 0\r\n\r\n") == status::failed);
  CHECK(h->error() == "the HTTP proxy answered 407 Proxy Authentication Required: it wants a login by \"basic\"; give "
                      "a user name and password in the proxy URL");
  h = make();
  CHECK(feed(*h, "SSH-2.0-OpenSSH_9.2\r\n") == status::failed);
  CHECK(h->error().rfind("the HTTP proxy's answer is not HTTP", 0) == 0);
  h = make();
  CHECK(feed(*h, "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a')) == status::failed);
}
