// The middle's pairing and copies over memory hops, driven by hand-made
// setups (an end is just bytes here).
#include <boost/asio/co_spawn.hpp>

#include <catch2/catch.hpp>

#include "asio_layer/asio_world.hpp"
#include "lstp/setup.hpp"
#include "lstp/tunnel_harness.hpp"

using namespace asio_test;

namespace {

lstp::bytes setup_bytes(const lstp::tunnel_keys& keys, lstp::end_role role, std::uint8_t nonce) {
  auto info = lstp_test::make_info(role, role == lstp::end_role::client ? "c" : "s", keys, nonce);
  auto s = lstp::make_setup(info, {lstp::hop_kind_of(role), info.name, ""});
  return lstp::encode_setup(s);
}

// One end, played by a coroutine: writes its setup, reads the partner's,
// then whatever the test asks.
struct raw_end {
  world& w;
  transport::hop_ptr hop;
  lstp::setup_reader reader;
  bool got_setup = false;
  lstp::bytes received;  // after the partner's setup
  boost::system::error_code read_error;
  bool reading_done = false;

  int running = 0;  // coroutines of this end still running

  raw_end(world& world_, transport::hop_ptr h) : w(world_), hop(std::move(h)) {}
  // Its coroutines use it: they end first.
  ~raw_end() {
    hop->close();
    w.run_until([this] { return running == 0; }, std::chrono::seconds(2));
  }

  // Queued and written in order by one writer (one write at a time).
  void send(const lstp::bytes& b) {
    outbox.insert(outbox.end(), b.begin(), b.end());
    if (writing) return;
    writing = true;
    ++running;
    asio::co_spawn(w.io, [this]() -> asio::awaitable<void> {
      while (!outbox.empty()) {
        auto chunk = std::move(outbox);
        outbox.clear();
        boost::system::error_code ec;
        co_await hop->write(asio::buffer(chunk), ec);
        if (ec) break;
      }
      writing = false;
    }, [this](std::exception_ptr) { --running; });
  }
  lstp::bytes outbox;
  bool writing = false;
  // Reads until the hop ends: the partner's setup, then the bytes after it.
  void read() {
    ++running;
    asio::co_spawn(w.io, [this]() -> asio::awaitable<void> {
      std::vector<std::uint8_t> buf(4096);
      for (;;) {
        auto n = co_await hop->read_some(asio::buffer(buf), read_error);
        if (read_error) break;
        if (!got_setup) {
          reader.feed({buf.data(), n});
          if (reader.next().state == lstp::setup_reader::status::done) {
            got_setup = true;
            received.assign(reader.unread().begin(), reader.unread().end());
          }
        } else {
          received.insert(received.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        }
      }
      reading_done = true;
    }, [this](std::exception_ptr) { --running; });
  }
};

const lstp::tunnel_keys& keys_b() {
  static auto k = lstp::derive_tunnel_keys("b", "the secret of tunnel b");
  return k;
}

}  // namespace

TEST_CASE("middle over memory hops: pairs two setups, tells each of the other, copies both ways") {
  world w;
  raw_end c(w, w.connect()), s(w, w.connect());
  c.read();
  s.read();
  c.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::client, 1));
  REQUIRE(w.run_until([&] { return w.middle->waiting() == 1; }));  // c waits
  s.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::server, 2));
  REQUIRE(w.run_until([&] { return c.got_setup && s.got_setup; }));
  // Each learns the other's name and the middle on the way.
  CHECK(c.reader.setup().info.name == "s");
  REQUIRE(c.reader.setup().topology.size() == 2);
  CHECK(c.reader.setup().topology.back().name == "m");
  CHECK(s.reader.setup().info.name == "c");

  c.send(lstp::bytes{1, 2, 3});
  s.send(lstp::bytes{4, 5});
  REQUIRE(w.run_until([&] { return s.received.size() == 3 && c.received.size() == 2; }));
  CHECK(s.received == lstp::bytes{1, 2, 3});

  // One end goes: the other's hop is closed and the pair forgotten.
  c.hop->close();
  REQUIRE(w.run_until([&] { return s.reading_done; }));
  CHECK(w.run_until([&] { return w.middle->tasks().running() == 0; }));
}

TEST_CASE("middle over memory hops: a waiting end that leaves is forgotten and the next one waits afresh") {
  world w;
  {
    raw_end gone(w, w.connect());
    gone.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::client, 1));
    REQUIRE(w.run_until([&] { return w.middle->waiting() == 1; }));
    gone.hop->close();
    REQUIRE(w.run_until([&] { return w.middle->waiting() == 0 && w.middle->tasks().running() == 0; }));
  }
  raw_end c(w, w.connect()), s(w, w.connect());
  c.read();
  s.read();
  c.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::client, 3));
  s.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::server, 4));
  REQUIRE(w.run_until([&] { return c.got_setup && s.got_setup; }));
  CHECK(c.reader.setup().info.nonce[0] == 4);
}

TEST_CASE("middle over memory hops: an end that never reads its partner's setup does not hold the pair") {
  auto cfg = world::middle_config();
  cfg.limit.setup_timeout = std::chrono::milliseconds(300);
  world w(cfg);
  // The client's hop holds only a few bytes and the client never reads:
  // the middle's write of the partner's setup cannot finish.
  transport::memory_hop_options tiny;
  tiny.capacity = 8;
  raw_end c(w, w.connect(tiny)), s(w, w.connect());
  s.read();
  c.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::client, 1));
  REQUIRE(w.run_until([&] { return w.middle->waiting() == 1; }));
  s.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::server, 2));
  // Within the setup timeout the pair gives up: the other end's hop ends.
  CHECK(w.run_until([&] { return s.reading_done; }, std::chrono::seconds(5)));
  CHECK(w.run_until([&] { return w.middle->tasks().running() == 0; }, std::chrono::seconds(5)));
}

TEST_CASE("middle over memory hops: each read and write of one pair failed in turn ends that pair only") {
  const auto run = [](std::shared_ptr<transport::fail_count> count) {
    world w;
    // Pair A's client hop is counted on the middle's side: its setup read,
    // the partner's setup written, and each copy's reads and writes.
    auto [c_end, c_middle] = transport::make_memory_hop_pair(w.io.get_executor());
    w.middle->serve(transport::make_failing_hop(std::move(c_middle), count), "198.51.100.200:1", "198.51.100.200",
                    "192.0.2.1:443");
    raw_end a_c(w, std::move(c_end)), a_s(w, w.connect());
    raw_end b_c(w, w.connect()), b_s(w, w.connect());
    for (auto* e : {&a_c, &a_s, &b_c, &b_s}) e->read();
    a_c.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::client, 1));
    b_c.send(setup_bytes(keys_b(), lstp::end_role::client, 1));
    w.run_until([&] { return w.middle->waiting() == 2; }, std::chrono::milliseconds(200));
    a_s.send(setup_bytes(lstp_test::test_keys(), lstp::end_role::server, 2));
    b_s.send(setup_bytes(keys_b(), lstp::end_role::server, 2));
    for (int i = 0; i < 4; ++i) {
      a_c.send(lstp::bytes(1000, 7));
      a_s.send(lstp::bytes(1000, 8));
      b_c.send(lstp::bytes(1000, 9));
    }
    // B's bytes all arrive, whatever happens to A.
    REQUIRE(w.run_until([&] { return b_s.received.size() == 4000; }));
    CHECK((b_s.received == lstp::bytes(4000, 9)));
    // A either worked or ended (its server end may still wait for a
    // partner then); its bytes are never mangled.
    REQUIRE(w.run_until([&] { return a_s.received.size() == 4000 || a_c.reading_done; }));
    CHECK(std::all_of(a_s.received.begin(), a_s.received.end(), [](auto b) { return b == 7; }));
    CHECK(std::all_of(a_c.received.begin(), a_c.received.end(), [](auto b) { return b == 8; }));
    CHECK_FALSE(b_s.reading_done);
    CHECK_FALSE(b_c.reading_done);
    for (auto* e : {&a_c, &a_s, &b_c, &b_s}) e->hop->close();
    CHECK(w.run_until([&] { return w.middle->tasks().running() == 0; }));
    return count->counted();
  };
  const auto total = run(std::make_shared<transport::fail_count>());
  CHECK(total >= 4);
  for (std::size_t n = 1; n <= total; ++n) {
    INFO("failing operation " << n << " of " << total);
    auto count = std::make_shared<transport::fail_count>(n);
    run(count);
    CHECK(count->failed());
  }
}
