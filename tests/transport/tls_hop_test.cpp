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
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <openssl/ssl.h>
#include <sys/ioctl.h>

#include <random>

#include "transport/hop_acceptor.hpp"
#include "transport/tls_hop.hpp"
#include "transport/websocket_hop.hpp"
#include "transport/loopback_support.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using transport_test::pattern;
using transport_test::run_to_end;
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
      run_to_end(io, [&]() -> asio::awaitable<void> { n = co_await server->read_some(asio::buffer(&first, 1), ec); });
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
  run_to_end(io, [&]() -> asio::awaitable<void> { n = co_await h.read_some(asio::buffer(buf), ec); });
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
  const auto data = pattern(60 * 1024, 5);  // one write: four records
  boost::system::error_code ec;
  bool sent = false;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    co_await p.client->write(asio::buffer(data), ec);
    sent = true;
  }, asio::detached);
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
  // All four in one read (two, should the last have been late); one per
  // record would be four.
  CHECK(reads <= 2);
}

TEST_CASE("a tls hop closed by its peer ends with eof, and one reset by its peer fails with an error") {
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
    run_to_end(io, [&] { return hop->handshake(ec); });
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

TEST_CASE("a peer that closes before its handshake fails a tls hop's handshake, it does not end a hop") {
  raw_peer_handshake h([](tcp::socket& raw) { raw.close(); });
  CHECK(h.ec);
  CHECK(h.ec != asio::error::eof);
}

namespace {

// A client and a server tls hop on loopback, made directly (no acceptor),
// both after their handshakes: a test can reach both TLS sessions.
struct direct_pair {
  asio::io_context io;
  std::unique_ptr<transport::tls_hop_base> client;
  std::unique_ptr<transport::tls_hop_base> server;

  direct_pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket c(io);
    c.connect(acceptor.local_endpoint());
    server = transport::make_tls_server_hop(acceptor.accept(), identity(), {});
    client = transport::make_tls_client_hop(std::move(c), "middle.test");
    boost::system::error_code e1, e2;
    int done = 0;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await server->handshake(e1);
      ++done;
    }, asio::detached);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await client->handshake(e2);
      ++done;
    }, asio::detached);
    run_until(io, [&] { return done == 2; });
    REQUIRE_FALSE(e1);
    REQUIRE_FALSE(e2);
  }

  void write(transport::hop_stream& h, const std::string& text) {
    boost::system::error_code ec;
    run_to_end(io, [&] { return h.write(asio::buffer(text), ec); });
    REQUIRE_FALSE(ec);
  }

  // A record of 1,000 bytes the client seals but does not send: the test
  // puts it on the wire itself (cut, or altered), with send_raw.
  std::vector<std::uint8_t> record_from_client() {
    const std::string text(1000, 'a');
    const boost::asio::const_buffer piece[1] = {asio::buffer(text)};
    boost::system::error_code ec;
    REQUIRE(client->stream().seal(piece, ec) == text.size());
    auto* out = client->stream().next_to_send();
    REQUIRE(out);
    std::vector<std::uint8_t> record = *out;
    client->stream().sent(out->size());
    return record;
  }
  void send_raw(const std::vector<std::uint8_t>& bytes, std::size_t n) {
    REQUIRE(::send(client->stream().socket().native_handle(), bytes.data(), n, 0) == static_cast<ssize_t>(n));
  }

  std::string read(transport::hop_stream& h, boost::system::error_code& ec) {
    std::vector<std::uint8_t> buf(64 * 1024);
    const auto n = read_once(io, h, buf, ec);
    return std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }
};

}  // namespace

TEST_CASE("a write cut short by a cancel leaves no record behind: the next write sends the rest first") {
  direct_pair p;
  // Bytes that cannot spell the marker, so the end of the stream is clear.
  auto data = pattern(8 << 20, 9);
  for (auto& b : data) b &= 0x0f;
  boost::system::error_code big_ec;
  bool big_done = false;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    co_await p.client->write(asio::buffer(data), big_ec);
    big_done = true;
  }, asio::detached);
  // Nobody reads: the write fills the socket and waits, mid-record.
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(200));
  REQUIRE_FALSE(big_done);
  REQUIRE(p.client->stream().unsent() > 0);
  boost::system::error_code cancel_ec;
  p.client->cancel(cancel_ec);
  run_until(p.io, [&] { return big_done; });
  CHECK(big_ec == asio::error::operation_aborted);
  // The hop goes on writing (a middle tells its peer why it gives up).
  const std::string marker = "tail!";
  boost::system::error_code tail_ec;
  bool tail_done = false;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    co_await p.client->write(asio::buffer(marker), tail_ec);
    tail_done = true;
  }, asio::detached);
  std::string got;
  boost::system::error_code ec;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!ec && (got.size() < marker.size() || got.compare(got.size() - marker.size(), marker.size(), marker) != 0) &&
         std::chrono::steady_clock::now() < end)
    got += p.read(*p.server, ec);
  REQUIRE_FALSE(ec);  // a lost or reordered record would fail to open here
  run_until(p.io, [&] { return tail_done; });
  CHECK_FALSE(tail_ec);
  REQUIRE(got.size() > marker.size());
  const auto k = got.size() - marker.size();
  CHECK(k < data.size());
  CHECK(std::equal(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(k), data.begin()));
}

TEST_CASE("a peer's key update is answered before the next write's records, not lost") {
  direct_pair p;
  REQUIRE(SSL_key_update(p.client->stream().native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1);
  p.write(*p.client, "ping");
  boost::system::error_code ec;
  CHECK(p.read(*p.server, ec) == "ping");
  REQUIRE_FALSE(ec);
  // The server's own KeyUpdate goes out with its next write, in front of
  // it: two records arrive, and the second opens only under the new key.
  p.write(*p.server, "pong");
  CHECK(p.server->stream().unsent() == 0);
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(50));
  int queued = 0;
  ::ioctl(p.client->stream().socket().native_handle(), FIONREAD, &queued);
  CHECK(queued > 2 * 26);
  CHECK(p.read(*p.client, ec) == "pong");
  CHECK_FALSE(ec);
}

TEST_CASE("a peer whose key updates make a hop answer more than it may hold fails that hop, with the reason") {
  direct_pair p;
  SSL* peer = p.client->stream().native_handle();
  // The server only reads: every answer waits for a write that never comes.
  boost::system::error_code ec;
  std::size_t got = 0;
  bool failed = false;
  for (int i = 0; i < 4000 && !failed; ++i) {
    REQUIRE(SSL_key_update(peer, SSL_KEY_UPDATE_REQUESTED) == 1);
    p.write(*p.client, "x");
    const auto text = p.read(*p.server, ec);
    got += text.size();
    failed = static_cast<bool>(ec);
  }
  INFO(p.server->failure());
  REQUIRE(failed);
  CHECK(ec == asio::error::no_buffer_space);
  CHECK(p.server->failure().find("more than 64 KiB") != std::string::npos);
  CHECK(got > 100);  // a few updates are fine: the limit is a flood's
}

TEST_CASE("a read that meets only records without data yields to other work between its steps") {
  direct_pair p;
  SSL* peer = p.client->stream().native_handle();
  // 12,000 key updates that ask for no answer (27 bytes each, 316 KiB: more
  // than one read step takes), then one byte of data.
  for (int i = 0; i < 12000; ++i) {
    REQUIRE(SSL_key_update(peer, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    REQUIRE(SSL_do_handshake(peer) == 1);
  }
  p.write(*p.client, "x");
  // A timer due at once must run while the read goes through them.
  bool ticked_before_data = false;
  bool read_done = false;
  asio::steady_timer timer(p.io);
  timer.expires_after(std::chrono::milliseconds(0));
  timer.async_wait([&](boost::system::error_code) { ticked_before_data = !read_done; });
  boost::system::error_code ec;
  std::string got;
  asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
    std::array<char, 16> buf{};
    const auto n = co_await p.server->read_some(asio::buffer(buf), ec);
    got.assign(buf.data(), n);
    read_done = true;
  }, asio::detached);
  run_until(p.io, [&] { return read_done; });
  INFO(p.server->failure());
  CHECK_FALSE(ec);
  CHECK(got == "x");
  CHECK(ticked_before_data);
}

TEST_CASE("a record cut short by the peer's close is a failure, not an end") {
  direct_pair p;
  // Half of a record reaches the wire, then the client's side closes.
  const auto record = p.record_from_client();
  p.send_raw(record, record.size() / 2);
  p.client->stream().socket().shutdown(tcp::socket::shutdown_send);
  boost::system::error_code ec;
  const auto got = p.read(*p.server, ec);
  CHECK(got.empty());
  CHECK(ec);
  CHECK(ec != asio::error::eof);
}

TEST_CASE("a record altered on the way fails the reader, and the sender hears why") {
  direct_pair p;
  auto record = p.record_from_client();
  record[record.size() - 3] ^= 0x40;  // inside the authentication tag
  p.send_raw(record, record.size());
  boost::system::error_code ec;
  CHECK(p.read(*p.server, ec).empty());
  CHECK(ec);
  INFO(p.server->failure());
  CHECK(p.server->failure().find("bad") != std::string::npos);
  // The server's alert reached the client, which reads it as the reason.
  boost::system::error_code client_ec;
  CHECK(p.read(*p.client, client_ec).empty());
  INFO(p.client->failure());
  CHECK(client_ec);
  CHECK(client_ec != asio::error::eof);
  CHECK(p.client->failure().find("alert") != std::string::npos);
}

TEST_CASE("a write in several pieces (a frame's header and payload) arrives whole, whatever its cut") {
  const std::vector<std::vector<std::size_t>> cuts = {{14, 65536}, {16384, 10}, {3, 5, 7}, {2, 16382, 1}, {10, 300000}};
  for (const auto& sizes : cuts) {
    direct_pair p;
    std::vector<std::vector<std::uint8_t>> parts;
    std::vector<std::uint8_t> whole;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      parts.push_back(pattern(sizes[i], static_cast<unsigned>(20 + i)));
      whole.insert(whole.end(), parts.back().begin(), parts.back().end());
    }
    // As Beast's write loop does: write_some with what is left, until all
    // of it is sealed.
    std::size_t done = 0;
    boost::system::error_code ec;
    while (done < whole.size()) {
      std::vector<boost::asio::const_buffer> left;
      std::size_t skip = done;
      for (const auto& part : parts) {
        if (skip >= part.size()) {
          skip -= part.size();
          continue;
        }
        left.push_back(asio::buffer(part.data() + skip, part.size() - skip));
        skip = 0;
      }
      const auto n = p.client->stream().seal(left, ec);
      REQUIRE_FALSE(ec);
      REQUIRE(n > 0);
      done += n;
    }
    CHECK(done == whole.size());
    auto* out = p.client->stream().next_to_send();
    REQUIRE(out);
    const std::vector<std::uint8_t> records = *out;
    p.client->stream().sent(out->size());
    // Sent while the server reads: more than a socket buffer may hold.
    asio::async_write(p.client->stream().socket(), asio::buffer(records), [](boost::system::error_code, std::size_t) {});
    std::string got;
    while (got.size() < whole.size() && !ec) got += p.read(*p.server, ec);
    REQUIRE_FALSE(ec);
    CHECK(got == std::string(whole.begin(), whole.end()));
  }
}
