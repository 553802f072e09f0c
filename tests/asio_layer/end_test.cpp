// Two end proxies (their tunnel keepers, tunnels and channels) joined by a
// real middle_server over memory hops; the apps and destinations are
// loopback sockets. Each dial and each hop operation is failed in turn.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>

#include "asio_layer/asio_world.hpp"
#include "endproxy/shared/tunnel_keeper.hpp"
#include "policy/access_policy.hpp"
#include "runtime/log.hpp"

using namespace asio_test;
using asio::ip::tcp;

namespace {

std::shared_ptr<const config::end_config> end_config(config::end_role role, bool resumption = false) {
  auto c = std::make_shared<config::end_config>();
  c->limit.resumption = resumption;
  c->name = role == config::end_role::client ? "c" : "s";
  c->role = role;
  auto& t = c->tunnels.emplace_back();
  t.name = "t";
  // A generated key: no Argon2id at each keeper's start.
  t.secret.is_key = true;
  t.secret.bytes = lstp::secret_bytes(lstp::key_size, 0x5a);
  t.secret_source = "test";
  t.middles = {{"m.example", 443}};
  t.ways = {config::way{}};
  t.retry_interval = std::chrono::milliseconds(20);
  t.retry_max = std::chrono::milliseconds(100);
  t.reprobe_interval = std::chrono::milliseconds(0);
  if (role == config::end_role::server) c->allow = {policy::parse_rule("127.0.0.1")};
  return c;
}

// What one app saw of its connection through the tunnel.
struct app_result {
  bool opened = false;
  std::vector<std::uint8_t> echoed;
  boost::system::error_code end;  // how its reading ended: eof, or reset
  // How its writing went. Linux reports a reset once, to whichever call
  // comes first: a write that got it leaves the read to see eof.
  boost::system::error_code write_error;
  // A clean end: everything written, and eof read.
  bool clean() const { return !write_error && end == boost::asio::error::eof; }
  bool reset() const { return end == boost::asio::error::connection_reset || write_error == boost::asio::error::connection_reset; }
  bool done = false;
};

// Listens on loopback and echoes every connection (half-close included).
struct echo_server {
  tcp::acceptor acceptor;
  explicit echo_server(asio::io_context& io) : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, serve(), [](std::exception_ptr) {});
  }
  ~echo_server() { acceptor.close(); }
  asio::awaitable<void> serve() {
    for (;;) {
      boost::system::error_code ec;
      auto s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(acceptor.get_executor(), echo(std::move(s)), [](std::exception_ptr) {});
    }
  }
  static asio::awaitable<void> echo(tcp::socket s) {
    std::vector<std::uint8_t> buf(16384);
    for (;;) {
      boost::system::error_code ec;
      auto n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::eof) {
        s.shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
      if (ec) co_return;
      co_await asio::async_write(s, asio::buffer(buf.data(), n), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

// An app: a loopback connection whose far side the client end's channel
// takes; sends `size` bytes, half-closes, reads the echo to its end.
asio::awaitable<void> run_app(asio::io_context& io, std::shared_ptr<endproxy::tunnel_keeper> client, std::uint16_t port,
                              std::size_t size, app_result& out) {
  tcp::acceptor local(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket app(io);
  boost::system::error_code ec;
  co_await app.async_connect(local.local_endpoint(), asio::redirect_error(asio::use_awaitable, ec));
  auto app_far_side = co_await local.async_accept(asio::use_awaitable);
  lstp::address dest;
  dest.type = lstp::address::kind::ipv4;
  dest.ip = {127, 0, 0, 1};
  dest.port = port;
  auto opened = co_await client->open_channel(dest, "app", "test");
  if (!opened.tunnel) {
    out.done = true;
    co_return;
  }
  out.opened = true;
  opened.tunnel->attach(std::move(opened.result.channel), std::move(app_far_side), "app", {});
  std::vector<std::uint8_t> payload(size);
  for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<std::uint8_t>(i * 7 + i / 256);
  // Reads while it writes: the echo comes back as the bytes go out.
  bool reading = true;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    std::vector<std::uint8_t> buf(16384);
    for (;;) {
      boost::system::error_code rec;
      auto n = co_await app.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, rec));
      if (rec) {
        out.end = rec;
        break;
      }
      out.echoed.insert(out.echoed.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    reading = false;
  }, [](std::exception_ptr) {});
  co_await asio::async_write(app, asio::buffer(payload), asio::redirect_error(asio::use_awaitable, ec));
  out.write_error = ec;
  if (!ec) app.shutdown(tcp::socket::shutdown_send, ec);
  asio::steady_timer nap(io);
  while (reading) {
    nap.expires_after(std::chrono::milliseconds(5));
    co_await nap.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  // A clean end must mean every byte came back.
  if (out.clean()) {
    CHECK(out.echoed.size() == payload.size());
    CHECK((out.echoed == payload));
  }
  out.done = true;
}

struct two_ends {
  world& w;
  std::shared_ptr<endproxy::tunnel_keeper> client, server;
  std::shared_ptr<transport::fail_count> dials{std::make_shared<transport::fail_count>()};
  // Counts the operations of the first hop the client end dials only.
  std::shared_ptr<transport::fail_count> first_hop;
  int client_dials = 0;

  two_ends(world& world_, std::shared_ptr<transport::fail_count> first_hop_count = nullptr, bool resumption = false)
      : w(world_), first_hop(std::move(first_hop_count)) {
    client = std::make_shared<endproxy::tunnel_keeper>(w.io, end_config(config::end_role::client, resumption), 0);
    server = std::make_shared<endproxy::tunnel_keeper>(w.io, end_config(config::end_role::server, resumption), 0);
    client->set_dialer([this](const uplink::candidate&, std::string& why) -> asio::awaitable<transport::hop_ptr> {
      boost::system::error_code ec;
      if (dials->fail(ec)) {
        why = "injected failure";
        co_return nullptr;
      }
      auto hop = w.connect();
      if (client_dials++ == 0 && first_hop) hop = transport::make_failing_hop(std::move(hop), first_hop);
      co_return hop;
    });
    server->set_dialer([this](const uplink::candidate&, std::string&) -> asio::awaitable<transport::hop_ptr> {
      co_return w.connect();
    });
    client->start();
    server->start();
  }
  ~two_ends() {
    client->stop();
    server->stop();
    w.run_for(std::chrono::milliseconds(50));
    client->reset();
    server->reset();
    CHECK(w.run_until([&] { return client->tasks().running() == 0 && server->tasks().running() == 0; }));
  }
  bool up() const { return client->current_tunnel() != nullptr; }
};

app_result app(world& w, two_ends& e, const echo_server& echo, std::size_t size) {
  app_result r;
  asio::co_spawn(w.io, run_app(w.io, e.client, echo.port(), size, r), [](std::exception_ptr ex) {
    if (ex) std::rethrow_exception(ex);
  });
  REQUIRE(w.run_until([&] { return r.done; }, std::chrono::seconds(20)));
  return r;
}

struct quiet_logs {
  // LSTP_TEST_LOGS=1 keeps them, to see what happened.
  quiet_logs() {
    if (!std::getenv("LSTP_TEST_LOGS")) runtime::set_log_level(runtime::log_level::error);
  }
  ~quiet_logs() { runtime::set_log_level(runtime::log_level::info); }
};

}  // namespace

TEST_CASE("end proxies over memory hops: an app's connection is carried to its destination and back") {
  world w;
  echo_server echo(w.io);
  two_ends e(w);
  REQUIRE(w.run_until([&] { return e.up(); }));
  auto r = app(w, e, echo, 300 * 1024);
  CHECK(r.opened);
  CHECK(r.clean());
  CHECK(r.echoed.size() == 300 * 1024);
}

TEST_CASE("end proxies: a dial that fails is retried") {
  quiet_logs quiet;
  world w;
  echo_server echo(w.io);
  two_ends e(w);
  e.dials = std::make_shared<transport::fail_count>(1);  // fails now...
  w.run_for(std::chrono::milliseconds(1));
  REQUIRE(w.run_until([&] { return e.dials->failed(); }));
  e.dials = std::make_shared<transport::fail_count>();  // ...and works again
  REQUIRE(w.run_until([&] { return e.up(); }));
  auto r = app(w, e, echo, 1000);
  CHECK(r.clean());
}

TEST_CASE("end proxies: each read and write of the client's hop failed in turn resets the app, then recovers") {
  quiet_logs quiet;
  std::size_t total = 0;
  {
    world w;
    echo_server echo(w.io);
    auto count = std::make_shared<transport::fail_count>();
    two_ends e(w, count);
    REQUIRE(w.run_until([&] { return e.up(); }));
    auto r = app(w, e, echo, 300 * 1024);
    REQUIRE(r.clean());
    total = count->counted();
  }
  REQUIRE(total > 10);
  for (std::size_t n = 1; n <= total; ++n) {
    INFO("failing operation " << n << " of " << total);
    world w;
    echo_server echo(w.io);
    auto count = std::make_shared<transport::fail_count>(n);
    two_ends e(w, count);
    REQUIRE(w.run_until([&] { return e.up() || count->failed(); }));
    auto r = app(w, e, echo, 300 * 1024);
    // The app saw every byte and a clean end (the failure came after), or a
    // reset: never a clean end of a stream cut short (checked in run_app).
    if (r.opened && !r.clean()) CHECK(r.reset());
    // The tunnel comes back on a new hop, and carries a new connection.
    REQUIRE(w.run_until([&] { return count->failed() && e.up(); }, std::chrono::seconds(20)));
    auto again = app(w, e, echo, 10 * 1024);
    CHECK(again.clean());
    CHECK(again.echoed.size() == 10 * 1024);
  }
}

TEST_CASE("end proxies: a channel whose tunnel closed before it began resets its app") {
  quiet_logs quiet;
  world w;
  echo_server echo(w.io);
  two_ends e(w);
  REQUIRE(w.run_until([&] { return e.up(); }));
  bool done = false;
  boost::system::error_code read_end;
  asio::co_spawn(w.io, [&]() -> asio::awaitable<void> {
    tcp::acceptor local(w.io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket app(w.io);
    co_await app.async_connect(local.local_endpoint(), asio::use_awaitable);
    auto far_side = co_await local.async_accept(asio::use_awaitable);
    lstp::address dest;
    dest.type = lstp::address::kind::ipv4;
    dest.ip = {127, 0, 0, 1};
    dest.port = echo.port();
    auto opened = co_await e.client->open_channel(dest, "app", "test");
    REQUIRE(opened.tunnel);
    // The far end said yes; the tunnel breaks before the app is attached
    // (as when the SOCKS reply was on its way).
    opened.tunnel->close({lstp::wire_error::general, "test"});
    opened.tunnel->attach(std::move(opened.result.channel), std::move(far_side), "app", {});
    char buf[16];
    co_await app.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, read_end));
    done = true;
  }, [](std::exception_ptr ex) {
    if (ex) std::rethrow_exception(ex);
  });
  REQUIRE(w.run_until([&] { return done; }));
  CHECK(read_end == asio::error::connection_reset);
}

TEST_CASE("end proxies: a channel in flight when an end stops runs to its end within the grace") {
  for (bool stop_server : {true, false}) {
    INFO((stop_server ? "the server end stops" : "the client end stops"));
    world w;
    echo_server echo(w.io);
    two_ends e(w);
    REQUIRE(w.run_until([&] { return e.up(); }));
    bool done = false;
    std::vector<std::uint8_t> echoed;
    boost::system::error_code end;
    asio::co_spawn(w.io, [&]() -> asio::awaitable<void> {
      tcp::acceptor local(w.io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      tcp::socket app(w.io);
      co_await app.async_connect(local.local_endpoint(), asio::use_awaitable);
      auto far_side = co_await local.async_accept(asio::use_awaitable);
      lstp::address dest;
      dest.type = lstp::address::kind::ipv4;
      dest.ip = {127, 0, 0, 1};
      dest.port = echo.port();
      auto opened = co_await e.client->open_channel(dest, "app", "test");
      REQUIRE(opened.tunnel);
      opened.tunnel->attach(std::move(opened.result.channel), std::move(far_side), "app", {});
      std::vector<std::uint8_t> first(1000, 1), second(1000, 2), buf(4096);
      co_await asio::async_write(app, asio::buffer(first), asio::use_awaitable);
      while (echoed.size() < 1000) {
        auto n = co_await app.async_read_some(asio::buffer(buf), asio::use_awaitable);
        echoed.insert(echoed.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      }
      // The channel is open both ways when the end is told to stop.
      (stop_server ? e.server : e.client)->stop();
      asio::steady_timer nap(w.io);
      nap.expires_after(std::chrono::milliseconds(100));
      co_await nap.async_wait(asio::use_awaitable);
      co_await asio::async_write(app, asio::buffer(second), asio::use_awaitable);
      app.shutdown(tcp::socket::shutdown_send);
      for (;;) {
        boost::system::error_code rec;
        auto n = co_await app.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, rec));
        if (rec) {
          end = rec;
          break;
        }
        echoed.insert(echoed.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      }
      done = true;
    }, [](std::exception_ptr ex) {
      if (ex) std::rethrow_exception(ex);
    });
    REQUIRE(w.run_until([&] { return done; }));
    CHECK(end == asio::error::eof);
    CHECK(echoed.size() == 2000);
  }
}

TEST_CASE("end proxies with resumption: each read and write of the client's hop failed in turn, the app never notices") {
  quiet_logs quiet;
  std::size_t total = 0;
  {
    world w;
    echo_server echo(w.io);
    auto count = std::make_shared<transport::fail_count>();
    two_ends e(w, count, true);
    REQUIRE(w.run_until([&] { return e.up(); }));
    auto r = app(w, e, echo, 300 * 1024);
    REQUIRE(r.clean());
    total = count->counted();
  }
  REQUIRE(total > 10);
  std::size_t resumed = 0;
  const auto only = std::getenv("LSTP_TEST_ONLY_N") ? std::strtoul(std::getenv("LSTP_TEST_ONLY_N"), nullptr, 10) : 0;
  for (std::size_t n = 1; n <= total; ++n) {
    if (only && n != only) continue;
    INFO("failing operation " << n << " of " << total);
    world w;
    echo_server echo(w.io);
    auto count = std::make_shared<transport::fail_count>(n);
    two_ends e(w, count, true);
    REQUIRE(w.run_until([&] { return e.up(); }, std::chrono::seconds(20)));
    app_result r;
    asio::co_spawn(w.io, run_app(w.io, e.client, echo.port(), 300 * 1024, r), [](std::exception_ptr ex) {
      if (ex) std::rethrow_exception(ex);
    });
    if (!w.run_until([&] { return r.done; }, std::chrono::seconds(20))) {
      for (auto* k : {e.client.get(), e.server.get()}) {
        auto t = k->current_tunnel();
        if (!t) { WARN("no tunnel"); continue; }
        auto& p = t->proto();
        WARN("resuming " << p.resuming() << " sent " << p.reliable_sent() << " acked " << p.reliable_acked()
             << " handled " << p.reliable_handled() << " replay " << p.replay_bytes() << " channels "
             << p.channel_count() << " allow1 " << p.send_allowance(1) << " buffered1 " << p.buffered(1)
             << " paused " << p.paused_by_peer(1) << " out " << p.output().size());
      }
      FAIL("the app did not finish");
    }
    // Before the tunnel was up, a failure costs a reconnect; after, a
    // resumption: either way the app's stream is whole and ends cleanly.
    CHECK(r.opened);
    CHECK(r.clean());
    CHECK(r.echoed.size() == 300 * 1024);
    if (auto t = e.client->current_tunnel(); t && t->proto().resumptions() > 0) ++resumed;
  }
  // Most operations of the hop come after the tunnel is up.
  CHECK(resumed * 2 > total);
}
