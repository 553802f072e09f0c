#include <catch2/catch.hpp>

#include <string>

#include "transport/upgrade_sniffer.hpp"

using transport::upgrade_sniffer;
using verdict = upgrade_sniffer::verdict;

namespace {
const std::string upgrade =
    "GET /lstp HTTP/1.1\r\nHost: m.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The same verdict whether the bytes come at once or one at a time, but
// for early data: bytes that come after the upgrade, in a later read, are
// the WebSocket layer's to refuse.
verdict sniff(const std::string& text, const std::string& path = "/lstp") {
  upgrade_sniffer whole(path);
  const auto all = whole.feed(bytes_of(text));
  upgrade_sniffer bytewise(path);
  auto one = verdict::need_more;
  for (std::size_t i = 0; i < text.size() && one == verdict::need_more; ++i)
    one = bytewise.feed(bytes_of(text).subspan(i, 1));
  if (all == verdict::early_data)
    CHECK(one == verdict::upgrade);
  else
    CHECK(all == one);
  return all;
}
}  // namespace

TEST_CASE("a WebSocket upgrade on our path is a hop", "[transport][sniff]") {
  CHECK(sniff(upgrade) == verdict::upgrade);
  upgrade_sniffer s("/lstp");
  REQUIRE(s.feed(bytes_of(upgrade)) == verdict::upgrade);
  auto req = s.take_request();
  CHECK(req.target() == "/lstp");
  CHECK(req[boost::beast::http::field::sec_websocket_key] == "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST_CASE("other requests are web requests, answered 404", "[transport][sniff]") {
  CHECK(sniff(upgrade, "/other") == verdict::web_request);
  upgrade_sniffer s("/lstp");
  CHECK(s.feed(bytes_of(std::string("GET / HTTP/1.0\r\n\r\n"))) == verdict::web_request);
  CHECK(s.why() == "a web request (GET /), answered 404");
  CHECK(s.version() == 10);
  CHECK(sniff("POST /lstp HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc") == verdict::web_request);
  // Bytes after a complete web request do not matter: it is answered anyway.
  CHECK(sniff("GET / HTTP/1.0\r\n\r\nQ") == verdict::web_request);
}

TEST_CASE("a half request waits, garbage, early data and oversized headers are refused", "[transport][sniff][hostile]") {
  CHECK(sniff(upgrade.substr(0, upgrade.size() - 2)) == verdict::need_more);
  CHECK(sniff("GARBAGE\r\n\r\n") == verdict::bad_request);
  CHECK(sniff(upgrade + "x") == verdict::early_data);
  CHECK(sniff("GET / HTTP/1.1\r\nX: " + std::string(16 * 1024, 'a') + "\r\n\r\n") == verdict::bad_request);
  CHECK(sniff("POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n") == verdict::bad_request);
  // Once decided, later bytes change nothing.
  upgrade_sniffer s("/lstp");
  REQUIRE(s.feed(bytes_of(std::string("BAD\r\n\r\n"))) == verdict::bad_request);
  CHECK(s.feed(bytes_of(upgrade)) == verdict::bad_request);
}

TEST_CASE("an upgrade a proxy forwards with an absolute URI is a hop too", "[transport][sniff]") {
  auto absolute = upgrade;
  absolute.replace(4, 5, "http://m.example:80/lstp");
  CHECK(sniff(absolute) == verdict::upgrade);
  auto other = upgrade;
  other.replace(4, 5, "http://m.example/other");
  CHECK(sniff(other) == verdict::web_request);
  auto bare = upgrade;
  bare.replace(4, 5, "http://m.example");
  CHECK(sniff(bare) == verdict::web_request);
}

TEST_CASE("an http carrier request is decided on its head and handed on whole", "[transport][sniff][poll]") {
  const std::string id(32, 'a');
  // A body larger than a web request may have here: decided before it.
  const std::string head = "POST /lstp/up?s=" + id + "&n=0&r=1 HTTP/1.1\r\nHost: m\r\nContent-Length: 200000\r\n\r\n";
  const std::string sent = head + "xyz";
  upgrade_sniffer s("/lstp");
  CHECK(s.feed(bytes_of(sent)) == verdict::poll_request);
  const auto raw = s.take_raw();
  CHECK(std::string(raw.begin(), raw.end()) == sent);
  // Absolute-form, as a proxy forwards it; a down request has no body.
  CHECK(sniff("GET http://m:80/lstp/down?s=" + id + "&n=0&a=0&r=1 HTTP/1.1\r\nHost: m\r\n\r\n") ==
        verdict::poll_request);
  // Other paths near ours are web requests.
  CHECK(sniff("GET /lstp/downs HTTP/1.1\r\nHost: m\r\n\r\n") == verdict::web_request);
  CHECK(sniff("GET /other/up HTTP/1.1\r\nHost: m\r\n\r\n") == verdict::web_request);
}

TEST_CASE("a chunked body whose extensions the parser takes without limit is bounded all the same",
          "[transport][sniff][hostile]") {
  upgrade_sniffer s("/lstp");
  auto v = s.feed(bytes_of(std::string("POST /x HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n")));
  const std::string piece = "1;" + std::string(1000, 'e') + "\r\nx\r\n";
  for (int i = 0; i < 200 && v == verdict::need_more; ++i) v = s.feed(bytes_of(piece));
  CHECK(v == verdict::bad_request);
}
