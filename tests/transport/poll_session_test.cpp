// The `http` carrier's sessions (PROTOCOL.md 9.1) through a proxy that
// drops, repeats and reorders requests and answers: every byte arrives
// once, in order, with the end, both ways.
#include <catch2/catch.hpp>

#include <deque>
#include <random>

#include "transport/poll_session.hpp"

using namespace transport::poll;

namespace {

bytes random_bytes(std::mt19937& rng, std::size_t n) {
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

struct in_transit {
  request r;
  bool answered = false;
};

// Runs a client and a server against each other through a misbehaving
// proxy until both streams are through (or a step limit).
struct world {
  std::mt19937 rng;
  client_session client;
  server_session server;
  bytes up_data, down_data;
  std::size_t up_written = 0, down_written = 0;
  bytes up_got, down_got;
  int drop_request_percent = 0, drop_answer_percent = 0, repeat_percent = 0;
  std::deque<request> held_downs;  // GETs the server is holding
  std::uint64_t requests = 0;

  explicit world(unsigned seed) : rng(seed) {}

  bool chance(int percent) { return static_cast<int>(rng() % 100) < percent; }

  void answer_down(const request& r, bool heartbeat_allowed) {
    auto a = server.on_down(r.n, r.acknowledged);
    if (a.what == server_session::answer::kind::wait) {
      if (heartbeat_allowed && chance(10)) {
        if (!chance(drop_answer_percent)) client.on_down_answer(r.n, 200, {});
        else client.on_failed(r);
        return;
      }
      held_downs.push_back(r);
      return;
    }
    const bytes body(a.body.begin(), a.body.end());
    if (chance(drop_answer_percent)) {
      client.on_failed(r);
      return;
    }
    client.on_down_answer(r.n, a.status, body);
  }

  void step() {
    // The apps write.
    if (up_written < up_data.size())
      up_written += client.write(std::span(up_data).subspan(up_written, std::min<std::size_t>(70000, up_data.size() - up_written)));
    else
      client.shutdown();
    if (down_written < down_data.size())
      down_written +=
          server.write(std::span(down_data).subspan(down_written, std::min<std::size_t>(90000, down_data.size() - down_written)));
    else
      server.shutdown();
    // Held GETs are looked at again (data may have come).
    for (std::size_t i = held_downs.size(); i > 0; --i) {
      auto r = held_downs.front();
      held_downs.pop_front();
      answer_down(r, true);
    }
    // Requests cross the proxy.
    std::vector<request> batch;
    while (auto r = client.next()) batch.push_back(std::move(*r));
    std::shuffle(batch.begin(), batch.end(), rng);
    for (auto& r : batch) {
      ++requests;
      if (chance(drop_request_percent)) {
        client.on_failed(r);
        continue;
      }
      const int copies = chance(repeat_percent) ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        if (r.what == request::kind::up) {
          const int status = server.on_up(r.n, r.body, r.fin);
          if (chance(drop_answer_percent)) client.on_failed(r);
          else client.on_up_answer(r.n, status);
        } else {
          answer_down(r, false);
        }
      }
    }
    // The readers read.
    auto u = server.take_received();
    up_got.insert(up_got.end(), u.begin(), u.end());
    auto d = client.take_received();
    down_got.insert(down_got.end(), d.begin(), d.end());
  }

  bool done() const { return server.peer_finished() && client.peer_finished() && client.all_delivered(); }
};

}  // namespace

TEST_CASE("the http carrier carries both streams whole over a clean proxy", "[transport][poll]") {
  world w(1);
  w.up_data = random_bytes(w.rng, 3 * 1024 * 1024 + 17);
  w.down_data = random_bytes(w.rng, 2 * 1024 * 1024 + 5);
  for (int i = 0; i < 10000 && !w.done(); ++i) w.step();
  REQUIRE(w.done());
  CHECK(w.up_got == w.up_data);
  CHECK(w.down_got == w.down_data);
  CHECK_FALSE(w.client.failed());
}

TEST_CASE("a proxy that drops, repeats and reorders loses and repeats no byte", "[transport][poll][hostile]") {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    world w(seed);
    w.drop_request_percent = 10;
    w.drop_answer_percent = 10;
    w.repeat_percent = 15;
    w.up_data = random_bytes(w.rng, 600 * 1024 + seed);
    w.down_data = random_bytes(w.rng, 900 * 1024 + 3 * seed);
    for (int i = 0; i < 100000 && !w.done() && !w.client.failed(); ++i) w.step();
    INFO("seed " << seed << ", " << w.requests << " requests: " << w.client.why());
    REQUIRE(w.done());
    CHECK(w.up_got == w.up_data);
    CHECK(w.down_got == w.down_data);
  }
}

TEST_CASE("every fifth request dropped, as the integration test's proxy does", "[transport][poll][hostile]") {
  world w(99);
  w.up_data = random_bytes(w.rng, 1 << 20);
  w.down_data = random_bytes(w.rng, 1 << 20);
  std::uint64_t seen = 0;
  // Drop by count, not by chance.
  for (int i = 0; i < 100000 && !w.done(); ++i) {
    w.drop_request_percent = (++seen % 5 == 0) ? 100 : 0;
    w.step();
  }
  REQUIRE(w.done());
  CHECK(w.up_got == w.up_data);
  CHECK(w.down_got == w.down_data);
}

TEST_CASE("the server answers repeats and strays as PROTOCOL.md 9.1 says", "[transport][poll]") {
  server_session s;
  const bytes a{1, 2, 3}, b{4, 5};
  CHECK(s.on_up(1, b, false) == 204);  // one ahead: held
  CHECK(s.take_received().empty());
  CHECK(s.on_up(5, a, false) == 409);  // beyond the window
  CHECK(s.on_up(0, a, false) == 204);
  CHECK(s.take_received() == bytes{1, 2, 3, 4, 5});
  CHECK(s.on_up(0, a, false) == 204);  // a repeat: held before, not delivered again
  CHECK(s.take_received().empty());
  CHECK(s.on_up(2, {}, true) == 204);
  CHECK(s.peer_finished());

  // Down: nothing yet, then a chunk, sent again until acknowledged.
  CHECK(s.on_down(0, 0).what == server_session::answer::kind::wait);
  s.write(a);
  auto first = s.on_down(0, 0);
  REQUIRE(first.what == server_session::answer::kind::chunk);
  CHECK(bytes(first.body.begin(), first.body.end()) == a);
  auto again = s.on_down(0, 0);
  CHECK(bytes(again.body.begin(), again.body.end()) == a);
  s.write(b);
  auto second = s.on_down(1, 1);  // acknowledges chunk 0
  CHECK(bytes(second.body.begin(), second.body.end()) == b);
  auto stale = s.on_down(0, 1);   // a stale repeat: an empty answer
  CHECK(stale.body.empty());
  s.shutdown();
  CHECK(s.on_down(2, 2).status == 410);
}

TEST_CASE("a client whose requests all fail gives up, saying why", "[transport][poll][hostile]") {
  client_session c;
  c.write(bytes(10, 7));
  for (unsigned i = 0; i < max_failures && !c.failed(); ++i) {
    auto r = c.next();
    REQUIRE(r);
    c.on_failed(*r);
  }
  CHECK(c.failed());
  CHECK(c.why() == "a request got no answer (8 times in a row)");
  client_session gone;
  gone.write(bytes(3, 1));
  auto r = gone.next();
  REQUIRE(r);
  gone.on_up_answer(r->n, 404);
  CHECK(gone.why() == "the middle proxy no longer knows this carrier session");
}

TEST_CASE("the opening POST (chunk 0, empty) goes first, and no GET before its answer", "[transport][poll]") {
  client_session c;
  auto r = c.next();
  REQUIRE(r);
  CHECK(r->what == request::kind::up);
  CHECK(r->n == 0);
  CHECK(r->body.empty());
  CHECK_FALSE(c.next());  // a GET now could meet a middle that does not know the session yet
  c.on_up_answer(0, 204);
  CHECK(c.opened());
  auto d = c.next();
  REQUIRE(d);
  CHECK(d->what == request::kind::down);
  CHECK(d->n == 0);
}

TEST_CASE("request targets are written and read back as PROTOCOL.md 9.1 says", "[transport][poll]") {
  const std::string id = "0123456789abcdef0123456789abcdef";
  std::string why;
  auto up = parse_target(make_target(request{request::kind::up, 7, 0, true, {}}, id, "/lstp", 0xabc), "/lstp", why);
  REQUIRE(up);
  CHECK(up->what == request::kind::up);
  CHECK(up->n == 7);
  CHECK(up->fin);
  CHECK(up->session == id);
  auto down = parse_target("http://m:8080/lstp/down?s=" + id + "&n=9&a=8&r=x", "/lstp", why);
  REQUIRE(down);
  CHECK(down->what == request::kind::down);
  CHECK(down->acknowledged == 8);
  CHECK_FALSE(parse_target("/lstp/down?s=" + id + "&n=1&a=2&r=x", "/lstp", why));  // acknowledges what it did not ask for
  CHECK_FALSE(parse_target("/lstp/up?s=" + id + "&n=-1", "/lstp", why));
  CHECK_FALSE(parse_target("/lstp/up?s=ABC&n=1", "/lstp", why));
  CHECK_FALSE(parse_target("/lstp/up?n=1", "/lstp", why));
  CHECK_FALSE(parse_target("/lstp/sideways?s=" + id + "&n=1", "/lstp", why));
  CHECK(why == "not an http carrier path");
}

TEST_CASE("a chunk the server keeps refusing holds back the chunks after it, and 503 is no failure",
          "[transport][poll]") {
  client_session c;
  c.on_up_answer(c.next()->n, 204);  // the opening
  c.write(bytes(5 * max_chunk, 7));
  auto a = c.next();
  auto b = c.next();
  REQUIRE((a && b));
  CHECK(a->n == 1);
  CHECK(b->n == 2);
  c.on_up_answer(2, 204);
  // Chunk 1 is refused again and again (the reader is behind): chunk 3
  // would be more than the window ahead of it, so it is not cut.
  for (int i = 0; i < 20; ++i) {
    c.on_up_answer(1, 503);
    auto r = c.next();
    REQUIRE(r);
    CHECK(r->what == request::kind::up);
    CHECK(r->n == 1);
  }
  CHECK_FALSE(c.failed());
  c.on_up_answer(1, 204);
  auto next = c.next();
  REQUIRE(next);
  CHECK(next->n == 3);
}
