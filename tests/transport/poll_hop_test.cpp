// The `http` carrier's Asio edges over loopback TCP: a client hop and the
// middle's poll_server carry both streams whole and end them as they were
// ended; a lost connection costs no byte; a hop closed abruptly is an
// error, never an end; a session nobody serves is refused at once.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <random>

#include "transport/poll_hop.hpp"
#include "transport/loopback_support.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using transport_test::pattern;
using transport_test::run_until;

// A middle's port with only the http carrier: every connection's bytes go
// to the poll server.
struct server_side {
  asio::io_context& io;
  tcp::acceptor acceptor;
  std::shared_ptr<transport::poll_server> server;
  std::vector<transport::hop_ptr> hops;  // new sessions' hops, as the middle would get them
  std::vector<std::shared_ptr<tcp::socket>> accepted;

  explicit server_side(asio::io_context& io_, transport::poll_server::options o = {})
      : io(io_), acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    server = transport::poll_server::make(io.get_executor(), o, [this](transport::hop_ptr h, auto&, auto&) {
      hops.push_back(std::move(h));
    });
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  ~server_side() { server->close_all(); }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s(io);
      co_await acceptor.async_accept(s, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      std::vector<std::uint8_t> first(1);
      co_await asio::async_read(s, asio::buffer(first), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) continue;
      asio::co_spawn(io, server->serve(std::move(s), first), asio::detached);
    }
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

// Connects to 127.0.0.1:port; keeps a handle to each connection so a test
// can cut them.
struct connector {
  asio::io_context& io;
  std::uint16_t port;
  std::vector<std::weak_ptr<int>> alive;
  std::vector<int> fds;
  int made = 0;

  transport::poll_client_options options() {
    transport::poll_client_options o;
    o.host = "127.0.0.1:" + std::to_string(port);
    o.connect = [this](std::string& why) { return connect(why); };
    return o;
  }
  asio::awaitable<std::optional<tcp::socket>> connect(std::string& why) {
    tcp::socket s(io);
    boost::system::error_code ec;
    co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                             asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      why = ec.message();
      co_return std::nullopt;
    }
    ++made;
    fds.push_back(s.native_handle());
    co_return std::move(s);
  }
  // Cuts every connection made so far (as a proxy that drops them would).
  void cut_all() {
    for (int fd : fds) ::shutdown(fd, SHUT_RDWR);
    fds.clear();
  }
};

// Opens a client hop through `conn`: the hop, or null and why.
transport::hop_ptr open_client(asio::io_context& io, connector& conn, std::string& why) {
  transport::hop_ptr client;
  transport_test::run_to_end(io, [&]() -> asio::awaitable<void> {
    client = co_await transport::open_poll_hop(io.get_executor(), conn.options(), std::chrono::seconds(5), why);
  });
  return client;
}

// Writes all of `data`, then ends the stream; reads everything to the end.
struct pump {
  std::vector<std::uint8_t> got;
  boost::system::error_code read_end, write_error;
  bool wrote = false, read_done = false;

  void start(asio::io_context& io, transport::hop_stream& hop, std::vector<std::uint8_t> data) {
    asio::co_spawn(io, [this, &hop, data = std::move(data)]() -> asio::awaitable<void> {
      for (std::size_t at = 0; at < data.size(); at += 100000) {
        co_await hop.write(asio::buffer(data.data() + at, std::min<std::size_t>(100000, data.size() - at)), write_error);
        if (write_error) break;
      }
      hop.shutdown_send();
      wrote = true;
    }, asio::detached);
    asio::co_spawn(io, [this, &hop]() -> asio::awaitable<void> {
      std::vector<std::uint8_t> buf(65536);
      for (;;) {
        boost::system::error_code ec;
        auto n = co_await hop.read_some(asio::buffer(buf), ec);
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        if (ec) {
          read_end = ec;
          break;
        }
      }
      read_done = true;
    }, asio::detached);
  }
};

}  // namespace

TEST_CASE("the http carrier carries both streams whole over loopback, and ends them", "[transport][poll]") {
  asio::io_context io;
  server_side srv(io);
  connector conn{io, srv.port()};
  std::string why;
  auto client = open_client(io, conn, why);
  INFO(why);
  REQUIRE(client);
  REQUIRE(srv.hops.size() == 1);
  CHECK(client->kind() == "http");

  const auto up = pattern(3 * 1024 * 1024 + 17, 1), down = pattern(5 * 1024 * 1024 + 3, 2);
  pump c, s;
  c.start(io, *client, up);
  s.start(io, *srv.hops[0], down);
  run_until(io, [&] { return c.read_done && s.read_done; });
  CHECK(s.got == up);
  CHECK(c.got == down);
  CHECK(s.read_end == asio::error::eof);
  CHECK(c.read_end == asio::error::eof);
  // Few connections: the lanes keep theirs alive between requests.
  CHECK(conn.made <= 4);
}

TEST_CASE("connections cut under the http carrier cost no byte", "[transport][poll][hostile]") {
  asio::io_context io;
  server_side srv(io);
  connector conn{io, srv.port()};
  std::string why;
  auto client = open_client(io, conn, why);
  REQUIRE(client);
  REQUIRE(srv.hops.size() == 1);

  const auto up = pattern(6 * 1024 * 1024, 3), down = pattern(6 * 1024 * 1024, 4);
  pump c, s;
  c.start(io, *client, up);
  s.start(io, *srv.hops[0], down);
  // Every connection is cut, again and again, while the streams cross.
  int cuts = 0;
  while (!(c.read_done && s.read_done) && cuts < 100) {
    io.run_for(std::chrono::milliseconds(40));
    conn.cut_all();
    ++cuts;
  }
  run_until(io, [&] { return c.read_done && s.read_done; });
  // More connections than lanes: cut ones were replaced.
  CHECK(conn.made > 4);
  CHECK(s.got == up);
  CHECK(c.got == down);
  CHECK(s.read_end == asio::error::eof);
  CHECK(c.read_end == asio::error::eof);
}

TEST_CASE("a middle's hop closed after a write delivers it, then ends, as a TCP close does", "[transport][poll]") {
  asio::io_context io;
  server_side srv(io);
  connector conn{io, srv.port()};
  std::string why;
  auto client = open_client(io, conn, why);
  REQUIRE(srv.hops.size() == 1);
  // A refusal: an ERROR frame written, then the hop closed at once.
  const auto last_words = pattern(3000, 6);
  bool written = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    co_await srv.hops[0]->write(asio::buffer(last_words), ec);
    srv.hops[0]->close();
    written = true;
  }, asio::detached);
  pump c;
  c.start(io, *client, {});
  run_until(io, [&] { return written && c.read_done; });
  CHECK(c.got == last_words);
  CHECK(c.read_end == asio::error::eof);
}

TEST_CASE("a session the middle forgot is an error at the client, not an end", "[transport][poll]") {
  asio::io_context io;
  server_side srv(io);
  connector conn{io, srv.port()};
  std::string why;
  auto client = open_client(io, conn, why);
  REQUIRE(srv.hops.size() == 1);
  pump c;
  c.start(io, *client, pattern(1000, 5));
  io.run_for(std::chrono::milliseconds(200));
  srv.server->close_all();  // as a restarted middle: the session is unknown
  run_until(io, [&] { return c.read_done; });
  CHECK(c.read_end);
  CHECK(c.read_end != asio::error::eof);
}

TEST_CASE("an http carrier session nobody serves is refused at once, saying why", "[transport][poll]") {
  asio::io_context io;
  // A web server that answers 404 to everything, as a middle without the
  // carrier (or any other web server) would.
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    tcp::socket s(io);
    co_await acceptor.async_accept(s, asio::use_awaitable);
    std::vector<std::uint8_t> buf(4096);
    boost::system::error_code ec;
    co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    const std::string answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    co_await asio::async_write(s, asio::buffer(answer), asio::redirect_error(asio::use_awaitable, ec));
  }, asio::detached);
  connector conn{io, acceptor.local_endpoint().port()};
  std::string why;
  auto client = open_client(io, conn, why);
  CHECK_FALSE(client);
  CHECK_THAT(why, Catch::Contains("404") && Catch::Contains("not a middle proxy"));
}

TEST_CASE("a repeated opening of an ended session does not open it again", "[transport][poll][hostile]") {
  asio::io_context io;
  server_side srv(io);
  std::string answer;
  auto ask = [&](std::string request) {
    answer.clear();
    asio::co_spawn(io, [&, request]() -> asio::awaitable<void> {
      tcp::socket s(io);
      co_await s.async_connect(srv.acceptor.local_endpoint(), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(request), asio::use_awaitable);
      std::vector<char> buf(4096);
      boost::system::error_code ec;
      auto n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      answer.assign(buf.data(), n);
    }, asio::detached);
    run_until(io, [&] { return !answer.empty(); });
  };
  const std::string id(32, 'a');
  const auto open = "POST /lstp/up?s=" + id + "&n=0&r=1 HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n";
  ask(open);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 204"));
  REQUIRE(srv.hops.size() == 1);
  srv.hops[0]->close();
  // Closed with nothing written: the end, at once.
  ask("GET /lstp/down?s=" + id + "&n=0&a=0&r=2 HTTP/1.1\r\nHost: m\r\n\r\n");
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 410"));
  // A repeat of the opening while the closed session lingers: dropped.
  ask(open);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 204"));
  CHECK(srv.hops.size() == 1);
  // Once it is forgotten, its id still opens nothing.
  srv.server->close_all();
  ask(open);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 404"));
  CHECK(srv.hops.size() == 1);
  // Not a carrier request, or a malformed one.
  ask("GET /lstp/down?s=short&n=0&a=0 HTTP/1.1\r\nHost: m\r\n\r\n");
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 400"));
  ask("GET /lstp/up?s=" + id + "&n=0 HTTP/1.1\r\nHost: m\r\n\r\n");
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 405"));
}

TEST_CASE("an idle session's held requests do not wake each other", "[transport][poll]") {
  asio::io_context io;
  server_side srv(io);
  connector conn{io, srv.port()};
  std::string why;
  auto client = open_client(io, conn, why);
  REQUIRE(srv.hops.size() == 1);
  io.run_for(std::chrono::milliseconds(200));  // the two GETs are held now
  // Two held GETs that woke each other would spin this thread for the
  // whole heartbeat: an idle second must cost next to no CPU.
  auto cpu = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
  };
  const auto before = cpu();
  io.run_for(std::chrono::seconds(1));
  CHECK(cpu() - before < 0.2);
}

TEST_CASE("a client that closes its hop says so: the middle's hop ends at once, as by a TCP close",
          "[transport][poll]") {
  asio::io_context io;
  server_side srv(io);
  connector conn{io, srv.port()};
  std::string why;
  auto client = open_client(io, conn, why);
  REQUIRE(srv.hops.size() == 1);
  pump s;
  s.start(io, *srv.hops[0], {});
  io.run_for(std::chrono::milliseconds(100));
  // Closed and dropped on the I/O thread, as a tunnel does (a task
  // group's cancellation is dispatched to it).
  asio::post(io, [&] {
    client->close();
    client.reset();
  });
  // Well before the 60 s idle timeout: the goodbye request ends it.
  run_until(io, [&] { return s.read_done; }, std::chrono::seconds(5));
  CHECK(s.read_end == asio::error::connection_reset);
  CHECK(srv.server->sessions() == 0);
}
