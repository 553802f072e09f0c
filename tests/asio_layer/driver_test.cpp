// The tunnel driver over memory hops through a real middle_server: a
// transfer, each read and write of one end's hop failed in turn, and the
// seam that gives a driver a new hop.
#include <catch2/catch.hpp>

#include "asio_layer/tunnel_ends.hpp"

using namespace asio_test;

namespace {

const lstp::tunnel_keys& other_keys() {
  static lstp::tunnel_keys k = lstp::derive_tunnel_keys("other", "another secret of enough length");
  return k;
}

constexpr std::size_t payload_size = 600 * 1024;  // more than a channel's first credit

// No keeper hands these drivers a new hop, so a lost hop must end the
// tunnel: resumption off unless a test says otherwise. (With it, end_test
// fails each operation in turn and the tunnel keeper resumes.)
lstp::tunnel_params with_resumption(lstp::tunnel_params p, bool on) {
  p.limits.resumption = on;
  return p;
}

struct pair_of_ends {
  test_end client, server;
  pair_of_ends(world& w, const lstp::tunnel_keys& keys, transport::hop_ptr c, transport::hop_ptr s,
               bool resumption = false)
      : client(w, std::move(c), with_resumption(params_for(lstp::end_role::client, keys, 1), resumption), "c"),
        server(w, std::move(s), with_resumption(params_for(lstp::end_role::server, keys, 2), resumption), "s") {
    client.start();
    server.start();
  }
  bool up() const { return client.up && server.up; }
  bool closed() const { return client.closed && server.closed; }
  bool finished() const { return client.finished && server.finished; }
};

struct outcome {
  bool failed = false;        // the count reached its failing operation
  std::size_t counted = 0;    // operations the count saw
};

// Pair A (its client's hop counted by `count`) and pair B through one
// middle; each sends a payload on one channel, then both shut down.
outcome run_scenario(std::shared_ptr<transport::fail_count> count, bool count_server_side,
                     bool resumption = false) {
  world w;
  auto a_client_hop = w.connect();
  auto a_server_hop = w.connect();
  if (count_server_side)
    a_server_hop = transport::make_failing_hop(std::move(a_server_hop), count);
  else
    a_client_hop = transport::make_failing_hop(std::move(a_client_hop), count);
  pair_of_ends a(w, lstp_test::test_keys(), std::move(a_client_hop), std::move(a_server_hop), resumption);
  pair_of_ends b(w, other_keys(), w.connect(), w.connect(), resumption);

  REQUIRE(w.run_until([&] { return (a.up() || a.client.closed || a.server.closed) && b.up(); }));
  const auto payload_a = pattern(payload_size, 1), payload_b = pattern(payload_size, 2);
  std::uint32_t id_a = 0;
  if (a.up()) {
    id_a = a.client.open();
    // The client's data waits for the channel to be accepted and begun.
    REQUIRE(w.run_until([&] { return a.client.accepted.count(id_a) || a.client.closed || a.server.closed; }));
    if (a.client.accepted[id_a]) a.client.send(id_a, payload_a);
  }
  const auto id_b = b.client.open();
  REQUIRE(w.run_until([&] { return b.client.accepted.count(id_b) != 0; }));
  b.client.send(id_b, payload_b);

  const auto a_done = [&] { return a.server.fins[id_a] || a.client.closed || a.server.closed; };
  REQUIRE(w.run_until([&] { return a_done() && b.server.fins[id_b]; }));

  // B never noticed A's trouble: all of its bytes, then its FIN, and up.
  CHECK(b.server.received[id_b].size() == payload_b.size());
  CHECK((b.server.received[id_b] == payload_b));
  CHECK(b.up());
  CHECK_FALSE(b.client.closed);
  CHECK_FALSE(b.server.closed);

  // A's FIN reaches the server only after every byte before it.
  if (a.server.fins[id_a]) CHECK((a.server.received[id_a] == payload_a));
  const auto& got = a.server.received[id_a];
  CHECK(std::equal(got.begin(), got.end(), payload_a.begin()));

  // Both pairs end: nothing hangs, and the middle keeps nothing of them.
  a.client.driver->shutdown("test over");
  a.server.driver->shutdown("test over");
  b.client.driver->shutdown("test over");
  b.server.driver->shutdown("test over");
  CHECK(w.run_until([&] { return a.finished() && b.finished(); }));
  CHECK(a.closed());
  CHECK(w.run_until([&] { return w.middle->tasks().running() == 0; }));
  CHECK_FALSE(a.client.failed_by_exception);
  CHECK_FALSE(a.server.failed_by_exception);
  return {count->failed(), count->counted()};
}

}  // namespace

TEST_CASE("tunnel driver over memory hops: two tunnels through one middle carry their channels") {
  // With resumption too: both pairs then end only because each end says so
  // (its ERROR after SHUTDOWN reaches the peer; a lost hop would keep the
  // peer waiting to resume, and the pairs would not finish).
  const bool resumption = GENERATE(false, true);
  INFO("resumption " << resumption);
  auto count = std::make_shared<transport::fail_count>();
  auto o = run_scenario(count, false, resumption);
  CHECK_FALSE(o.failed);
  CHECK(o.counted > 10);  // setup, handshake, records: the loop below fails each
}

TEST_CASE("tunnel driver: each read and write of a hop failed in turn ends that tunnel only") {
  for (bool server_side : {false, true}) {
    auto total = run_scenario(std::make_shared<transport::fail_count>(), server_side).counted;
    // How many operations a run takes depends a little on timing (round-trip
    // probes, credit grants), so the last few may not exist in a later run:
    // nearly all must, and each that fails is checked in run_scenario.
    std::size_t injected = 0;
    for (std::size_t n = 1; n <= total; ++n) {
      INFO("failing operation " << n << " of " << total << " on the " << (server_side ? "server" : "client")
                                << " end's hop");
      auto count = std::make_shared<transport::fail_count>(n);
      if (run_scenario(count, server_side).failed) ++injected;
    }
    CHECK(injected * 10 >= total * 9);
  }
}

TEST_CASE("tunnel driver: a new hop carries on a tunnel it already drives") {
  world w;
  pair_of_ends a(w, lstp_test::test_keys(), w.connect(), w.connect());
  REQUIRE(w.run_until([&] { return a.up(); }));
  auto first = a.client.open();
  REQUIRE(w.run_until([&] { return a.client.accepted.count(first) != 0; }));
  a.client.send(first, pattern(100 * 1024, 3));
  REQUIRE(w.run_until([&] { return a.server.fins[first]; }));
  w.run_for(300ms);  // the round-trip probes are over: nothing is in flight

  // Both ends move to a new connection at a quiet moment: the byte stream
  // (TLS, records) goes on where it was.
  auto [c, s] = transport::make_memory_hop_pair(w.io.get_executor());
  REQUIRE(a.client.driver->replace_hop(std::move(c)));
  REQUIRE(a.server.driver->replace_hop(std::move(s)));
  CHECK(a.client.driver->hops_used() == 2);

  // The middle sees its pair's hops close and forgets the pair; the tunnel
  // stays up.
  CHECK(w.run_until([&] { return w.middle->tasks().running() == 0; }));
  CHECK_FALSE(a.client.closed);
  CHECK_FALSE(a.server.closed);

  auto second = a.client.open();
  REQUIRE(w.run_until([&] { return a.client.accepted.count(second) != 0; }));
  const auto payload = pattern(payload_size, 4);
  a.client.send(second, payload);
  REQUIRE(w.run_until([&] { return a.server.fins[second]; }));
  CHECK((a.server.received[second] == payload));
  CHECK(a.up());

  a.client.driver->shutdown("test over");
  CHECK(w.run_until([&] { return a.finished(); }));
  // Every channel had ended normally (FIN both ways): none was freed.
  CHECK(a.server.freed.empty());
  CHECK(a.client.freed.empty());
}

TEST_CASE("tunnel driver: a closed tunnel takes no new hop") {
  world w;
  // With resumption: the peer closes because it reads the ERROR, not
  // because its hop ended.
  pair_of_ends a(w, lstp_test::test_keys(), w.connect(), w.connect(), true);
  REQUIRE(w.run_until([&] { return a.up(); }));
  a.client.driver->close({lstp::wire_error::general, "test"});
  REQUIRE(w.run_until([&] { return a.finished(); }));
  auto [c, s] = transport::make_memory_hop_pair(w.io.get_executor());
  auto* peer_side = s.get();
  CHECK_FALSE(a.client.driver->replace_hop(std::move(c)));
  // The hop handed in was closed: its peer reads eof.
  bool read = false;
  boost::system::error_code ec;
  asio::co_spawn(w.io, [&]() -> asio::awaitable<void> {
    char buf[4];
    co_await peer_side->read_some(asio::buffer(buf), ec);
    read = true;
  }, [](std::exception_ptr) {});
  CHECK(w.run_until([&] { return read; }));
  CHECK(ec == asio::error::eof);
}
