// The outer TLS of tls and wss hops (transport/tls_stream) over loopback
// TCP, through the middle's real acceptor: both streams whole at once, a
// read takes several records at a time, a close is an end and a reset an
// error, garbage fails the handshake with a reason, a cancel stops reads,
// and WebSocket runs on the TLS session itself.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <random>

#include "transport/hop_acceptor.hpp"
#include "transport/tls_hop.hpp"
#include "transport/websocket_hop.hpp"
#include "transport/loopback_support.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using transport_test::pattern;
using transport_test::run_until;

const auto& identity() {
  static const auto id = transport::tls_server_identity::self_signed("middle.test");
  return id;
}

// A middle's port (its real acceptor) and an end that dials it by tls or
// wss: both hops after their handshakes.
struct tls_pair {
  asio::io_context io;
  transport::hop_ptr client;
  transport::hop_ptr server;
  std::string client_kind;
  std::string server_why;
  std::string alpn;
  std::string version;
  std::string cipher;

  explicit tls_pair(bool websocket) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = acceptor.local_endpoint().port();
    transport::acceptor_options options;
    options.tls = identity();
    bool accepted = false, dialed = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto s = co_await acceptor.async_accept(asio::use_awaitable);
      server = co_await transport::accept_hop(std::move(s), options, std::chrono::seconds(5), server_why);
      accepted = true;
    }, asio::detached);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      tcp::socket s(io);
      co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
      auto tls = transport::make_tls_client_hop(std::move(s), "middle.test");
      boost::system::error_code ec;
      co_await tls->handshake(ec);
      REQUIRE_FALSE(ec);
      alpn = tls->stream().alpn();
      version = tls->stream().version();
      cipher = tls->stream().cipher();
      if (!websocket) {
        client = std::move(tls);
      } else {
        auto ws = transport::make_websocket_hop(std::move(tls));
        co_await ws->handshake("middle.test", "/lstp", ec);
        REQUIRE_FALSE(ec);
        client = std::move(ws);
      }
      if (!websocket) {
        // The acceptor reads the first bytes inside TLS to tell LSTP from
        // HTTP: raw LSTP starts with COMMON_UNIQUE_INFO.
        const std::uint8_t lstp_first[] = {0x01};
        co_await client->write(asio::buffer(lstp_first), ec);
        REQUIRE_FALSE(ec);
      }
      dialed = true;
    }, asio::detached);
    run_until(io, [&] { return accepted && dialed; });
    REQUIRE(server);
    client_kind = client->kind();
    if (!websocket) {
      std::uint8_t first = 0;
      boost::system::error_code ec;
      std::size_t n = 0;
      bool done = false;
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        n = co_await server->read_some(asio::buffer(&first, 1), ec);
        done = true;
      }, asio::detached);
      run_until(io, [&] { return done; });
      REQUIRE_FALSE(ec);
      REQUIRE(n == 1);
      REQUIRE(first == 0x01);
    }
  }
};

// Writes `data` in pieces of varying size, then (if asked) closes.
asio::awaitable<void> send_all(transport::hop_stream& h, const std::vector<std::uint8_t>& data, unsigned seed,
                               boost::system::error_code& ec, bool& done) {
  std::mt19937 rng(seed);
  std::size_t off = 0;
  while (off < data.size() && !ec) {
    const auto n = std::min<std::size_t>(data.size() - off, 1 + rng() % (300 * 1024));
    co_await h.write(asio::buffer(data.data() + off, n), ec);
    off += n;
  }
  done = true;
}

// Reads until the end or `limit` bytes.
asio::awaitable<void> read_all(transport::hop_stream& h, std::vector<std::uint8_t>& got, std::size_t limit,
                               boost::system::error_code& ec, bool& done) {
  std::vector<std::uint8_t> buf(64 * 1024);
  while (got.size() < limit) {
    const auto n = co_await h.read_some(asio::buffer(buf), ec);
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) break;
  }
  done = true;
}

void both_ways(tls_pair& p, std::size_t size) {
  const auto up = pattern(size, 1), down = pattern(size, 2);
  std::vector<std::uint8_t> got_up, got_down;
  boost::system::error_code e1, e2, e3, e4;
  bool d1 = false, d2 = false, d3 = false, d4 = false;
  asio::co_spawn(p.io, send_all(*p.client, up, 3, e1, d1), asio::detached);
  asio::co_spawn(p.io, send_all(*p.server, down, 4, e2, d2), asio::detached);
  asio::co_spawn(p.io, read_all(*p.server, got_up, size, e3, d3), asio::detached);
  asio::co_spawn(p.io, read_all(*p.client, got_down, size, e4, d4), asio::detached);
  run_until(p.io, [&] { return d1 && d2 && d3 && d4; }, std::chrono::seconds(60));
  CHECK_FALSE(e1);
  CHECK_FALSE(e2);
  CHECK_FALSE(e3);
  CHECK_FALSE(e4);
  CHECK(got_up == up);
  CHECK(got_down == down);
}

// Reads once from `h` (after waiting for something to read).
std::size_t read_once(asio::io_context& io, transport::hop_stream& h, std::vector<std::uint8_t>& buf,
                      boost::system::error_code& ec) {
  std::size_t n = 0;
  bool done = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    n = co_await h.read_some(asio::buffer(buf), ec);
    done = true;
  }, asio::detached);
  run_until(io, [&] { return done; });
  return n;
}

}  // namespace

TEST_CASE("a tls hop looks like a browser's TLS and carries 8 MiB each way at once, whole") {
  tls_pair p(false);
  CHECK(p.client_kind == "tls");
  CHECK(p.alpn == "http/1.1");
  CHECK(p.version == "TLSv1.3");
  CHECK(p.cipher == "TLS_AES_128_GCM_SHA256");  // a browser's first choice
  both_ways(p, 8 << 20);
}

TEST_CASE("a wss hop runs WebSocket on the TLS session and carries 8 MiB each way at once, whole") {
  tls_pair p(true);
  CHECK(p.client_kind == "tls+websocket");
  CHECK(p.server->kind() == "tls+websocket");
  both_ways(p, 8 << 20);
}

TEST_CASE("one read of a tls hop takes every record already there, not one at a time") {
  tls_pair p(false);
  const auto data = pattern(60 * 1024, 5);  // four records
  boost::system::error_code ec;
  bool sent = false;
  asio::co_spawn(p.io, send_all(*p.client, data, 6, ec, sent), asio::detached);
  run_until(p.io, [&] { return sent; });
  REQUIRE_FALSE(ec);
  // Let every record arrive before reading (loopback: well within this).
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(100));
  std::vector<std::uint8_t> buf(256 * 1024);
  std::size_t total = 0;
  std::size_t reads = 0;
  while (total < data.size()) {
    total += read_once(p.io, *p.server, buf, ec);
    REQUIRE_FALSE(ec);
    ++reads;
  }
  CHECK(total == data.size());
  // The sender's writes were up to 300 KiB each: all of it in one read
  // when it was one write, at most a few otherwise; never one per record.
  CHECK(reads < 4);
}

TEST_CASE("a tls hop closed by its peer ends with eof; one reset by its peer fails with an error") {
  SECTION("close") {
    tls_pair p(false);
    p.client->close();
    std::vector<std::uint8_t> buf(1024);
    boost::system::error_code ec;
    CHECK(read_once(p.io, *p.server, buf, ec) == 0);
    CHECK(ec == asio::error::eof);
  }
  SECTION("reset") {
    tls_pair p(false);
    // Something sent, not yet read, then a reset: the bytes may be lost,
    // but what the reader hears is an error, never an end.
    boost::system::error_code ec;
    bool sent = false;
    const auto data = pattern(1000, 7);
    asio::co_spawn(p.io, send_all(*p.client, data, 8, ec, sent), asio::detached);
    run_until(p.io, [&] { return sent; });
    auto* tls = dynamic_cast<transport::tls_hop_base*>(p.client.get());
    REQUIRE(tls);
    tls->stream().socket().set_option(asio::socket_base::linger(true, 0));
    p.client->close();
    p.io.restart();
    p.io.run_for(std::chrono::milliseconds(50));
    std::vector<std::uint8_t> buf(4096);
    std::size_t total = 0;
    for (int i = 0; i < 10 && !ec; ++i) total += read_once(p.io, *p.server, buf, ec);
    CHECK(total <= data.size());
    CHECK(ec);
    CHECK(ec != asio::error::eof);
  }
}

TEST_CASE("a cancelled tls hop's pending read ends with operation_aborted, and so do later reads") {
  tls_pair p(false);
  std::vector<std::uint8_t> buf(1024);
  boost::system::error_code ec;
  bool done = false;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    co_await p.server->read_some(asio::buffer(buf), ec);
    done = true;
  }, asio::detached);
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(20));
  REQUIRE_FALSE(done);
  boost::system::error_code cancel_ec;
  p.server->cancel(cancel_ec);
  run_until(p.io, [&] { return done; });
  CHECK(ec == asio::error::operation_aborted);
  CHECK(read_once(p.io, *p.server, buf, ec) == 0);
  CHECK(ec == asio::error::operation_aborted);
}

// A middle's tls hop whose peer is a raw socket the test drives: `before`
// acts on the raw socket, then the hop's handshake runs to its end.
struct raw_peer_handshake {
  asio::io_context io;
  tcp::socket raw{io};
  boost::system::error_code ec;
  std::unique_ptr<transport::tls_hop_base> hop;

  template <class Before>
  explicit raw_peer_handshake(Before before) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    raw.connect(acceptor.local_endpoint());
    hop = transport::make_tls_server_hop(acceptor.accept(), identity(), {});
    before(raw);
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await hop->handshake(ec);
      done = true;
    }, asio::detached);
    run_until(io, [&] { return done; });
  }
};

TEST_CASE("bytes that are not TLS fail a tls hop's handshake, with the reason") {
  // A TLS record header that announces a handshake, then nonsense.
  raw_peer_handshake h([](tcp::socket& raw) {
    const std::string junk = std::string("\x16\x03\x01\x00\x10", 5) + std::string(16, 'x');
    asio::write(raw, asio::buffer(junk));
  });
  CHECK(h.ec);
  INFO(h.hop->failure());
  CHECK(h.hop->failure().rfind("TLS: ", 0) == 0);
  CHECK(h.hop->failure().size() > 5);
  // The peer heard an alert, not silence.
  std::array<std::uint8_t, 64> alert{};
  boost::system::error_code ec;
  const auto n = h.raw.read_some(asio::buffer(alert), ec);
  CHECK(n >= 7);
  CHECK(alert[0] == 0x15);  // alert record
}

TEST_CASE("a tls hop's handshake cut by its peer is a failure, not an end") {
  raw_peer_handshake h([](tcp::socket& raw) { raw.close(); });
  CHECK(h.ec);
  CHECK(h.ec != asio::error::eof);
}
