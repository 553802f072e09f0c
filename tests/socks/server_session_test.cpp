#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "socks/server_session.hpp"

using socks::server_session;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes b(std::initializer_list<int> v) {
  bytes out;
  for (int x : v) out.push_back(static_cast<std::uint8_t>(x));
  return out;
}
bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
bytes text(const std::string& s) { return bytes(s.begin(), s.end()); }

struct result {
  server_session::status state;
  bytes output;
  std::string failure;
  int version = 0;
  std::uint8_t command = 0;
  socks::address destination;
  bytes unread;
  bool operator==(const result&) const = default;
};

// Feeds `input` cut at `cuts` (positions), collecting every output.
result run(const bytes& input, std::vector<std::size_t> cuts, std::vector<server_session::user> users = {}) {
  server_session s(std::move(users));
  result r;
  std::size_t pos = 0;
  cuts.push_back(input.size());
  for (auto cut : cuts) {
    if (s.state() == server_session::status::failed) break;  // after a request, bytes are unread (early data)
    s.receive({input.data() + pos, cut - pos});
    r.output.insert(r.output.end(), s.output().begin(), s.output().end());
    s.output().clear();
    pos = cut;
  }
  r.state = s.state();
  r.failure = s.failure();
  if (s.state() == server_session::status::request) {
    r.version = s.version();
    r.command = s.command_byte();
    r.destination = s.destination();
    r.unread.assign(s.unread().begin(), s.unread().end());
  }
  return r;
}

// The outcome is the same whole, byte by byte, and cut at any one point.
result same_at_every_split(const bytes& input, std::vector<server_session::user> users = {}) {
  const auto whole = run(input, {}, users);
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
  CHECK((run(input, every, users) == whole));
  for (std::size_t i = 1; i < input.size(); ++i) {
    INFO("cut at " << i);
    CHECK((run(input, {i}, users) == whole));
  }
  return whole;
}

const bytes greeting_no_auth = b({5, 1, 0});
const bytes connect_v4 = b({5, 1, 0, 1, 10, 0, 0, 7, 0, 80});

}  // namespace

TEST_CASE("SOCKS session: a SOCKS5 CONNECT without login, with early data") {
  auto r = same_at_every_split(cat({greeting_no_auth, connect_v4, text("GET /")}));
  CHECK(r.state == server_session::status::request);
  CHECK(r.output == b({5, 0}));
  CHECK(r.version == 5);
  CHECK(r.command == 1);
  CHECK(r.destination.port == 80);
  CHECK(r.unread == text("GET /"));
}

TEST_CASE("SOCKS session: an RFC 1929 login, right and wrong") {
  std::vector<server_session::user> users{{"alice", "wonderland"}};
  auto login = [](const std::string& u, const std::string& p) {
    return cat({b({1, static_cast<int>(u.size())}), text(u), b({static_cast<int>(p.size())}), text(p)});
  };
  auto ok = same_at_every_split(cat({b({5, 2, 0, 2}), login("alice", "wonderland"), connect_v4}), users);
  CHECK(ok.state == server_session::status::request);
  CHECK(ok.output == b({5, 2, 1, 0}));
  auto wrong = same_at_every_split(cat({b({5, 1, 2}), login("alice", "wrong"), connect_v4}), users);
  CHECK(wrong.state == server_session::status::failed);
  CHECK(wrong.output == b({5, 2, 1, 1}));
  CHECK(wrong.failure == "login refused for user \"alice\"");
  // A login message that does not parse gets a failure status and a reason.
  auto bad = same_at_every_split(cat({b({5, 1, 2}), b({7, 5}), text("alice")}), users);
  CHECK(bad.state == server_session::status::failed);
  CHECK(bad.output == b({5, 2, 1, 1}));
  CHECK(bad.failure == "bad login message: bad_auth_version");
  // Offering no login when users are configured: no acceptable method.
  auto none = same_at_every_split(cat({greeting_no_auth, connect_v4}), users);
  CHECK(none.state == server_session::status::failed);
  CHECK(none.output == b({5, 0xFF}));
}

TEST_CASE("SOCKS session: bad requests get the reply their fault has") {
  auto atyp = same_at_every_split(cat({greeting_no_auth, b({5, 1, 0, 9, 1, 2})}));
  CHECK(atyp.state == server_session::status::failed);
  CHECK(atyp.output == cat({b({5, 0}), b({5, 8, 0, 1, 0, 0, 0, 0, 0, 0})}));
  auto greeting = same_at_every_split(b({5, 0}));
  CHECK(greeting.state == server_session::status::failed);
  CHECK(greeting.failure == "bad greeting: no_methods");
  CHECK(greeting.output.empty());
  // An unknown command parses: the caller answers 0x07.
  auto unknown = same_at_every_split(cat({greeting_no_auth, b({5, 9, 0, 1, 10, 0, 0, 7, 0, 80})}));
  CHECK(unknown.state == server_session::status::request);
  server_session s;
  s.receive(cat({greeting_no_auth, b({5, 9, 0, 1, 10, 0, 0, 7, 0, 80})}));
  CHECK_FALSE(s.command_supported());
}

TEST_CASE("SOCKS session: SOCKS4 and 4a, and SOCKS4 refused when users are configured") {
  const auto v4 = b({4, 1, 0, 80, 10, 0, 0, 7, 'u', 0});
  auto r = same_at_every_split(v4);
  CHECK(r.state == server_session::status::request);
  CHECK(r.version == 4);
  CHECK(r.output.empty());
  server_session s;
  s.receive(v4);
  s.reply_success(socks::address{});
  CHECK(s.output().size() == 8);
  CHECK(s.output()[1] == 0x5A);
  // UDP ASSOCIATE does not exist in SOCKS4.
  server_session udp4;
  udp4.receive(b({4, 3, 0, 80, 10, 0, 0, 7, 0}));
  CHECK_FALSE(udp4.command_supported());
  auto refused = same_at_every_split(v4, {{"alice", "wonderland"}});
  CHECK(refused.state == server_session::status::failed);
  CHECK(refused.output.size() == 8);
  CHECK(refused.output[1] == 0x5B);
}

TEST_CASE("SOCKS session: a message longer than any valid one is refused, not held") {
  bytes endless = b({5, 255});
  endless.resize(4000, 0x80);  // 255 methods, then more bytes than the greeting...
  server_session s;
  s.receive(cat({b({5, 1, 0}), b({5, 1, 0, 3, 255})}));
  REQUIRE(s.state() == server_session::status::need_more);  // a 255-byte name is coming
  s.receive(bytes(3000, 'a'));                               // ...it came, with a NUL-free tail
  CHECK(s.state() != server_session::status::need_more);
  server_session t;
  t.receive(b({5, 1, 0}));
  t.output().clear();
  // A request that never completes: SOCKS4 user ids without their NUL.
  server_session v4;
  bytes no_nul = b({4, 1, 0, 80, 10, 0, 0, 7});
  no_nul.resize(3000, 'u');
  v4.receive(no_nul);
  CHECK(v4.state() == server_session::status::failed);
}
