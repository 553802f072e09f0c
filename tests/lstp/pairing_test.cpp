// Secrets, pairing ids and who may pair with whom (PROTOCOL.md 3.1, 4).
#include <catch2/catch.hpp>

#include "lstp/secrets.hpp"
#include "tunnel_harness.hpp"

using namespace lstp_test;

namespace {
secret_bytes text(std::string_view s) { return secret_bytes(s.begin(), s.end()); }

// Hands `to`'s peer setup (the other tunnel's output, as a middle relays it)
// and returns `to`'s closing reason, if it closed.
std::optional<error_info> meet(tunnel& to, recorder& events, tunnel& from, clock::time_point now) {
  setup_reader r{setup_reader::access_frame::accepted};
  r.feed(from.output());
  REQUIRE(r.next().state == setup_reader::status::done);
  to.receive(relay_setup(r.setup(), {hop_kind::middle, "m", "192.0.2.1:443"}), now);
  dispatch_events(to, events);
  return events.closed;
}
}  // namespace

TEST_CASE("a generated key reads back as a key, and cut, mistyped or misused ones are refused", "[lstp][secrets]") {
  const auto key = new_key_text(key_use::tunnel_secret);
  CHECK(key.rfind("lstp-secret-", 0) == 0);
  CHECK(key.size() == 12 + 48);
  auto parsed = parse_secret(key_use::tunnel_secret, text(key));
  CHECK(parsed.problem.empty());
  CHECK(parsed.is_key);
  CHECK(parsed.bytes.size() == key_size);
  CHECK(key_text(key_use::tunnel_secret, parsed.bytes) == key);
  // Two keys differ.
  CHECK(new_key_text(key_use::tunnel_secret) != key);
  // Cut short, one character changed, one added: caught, never a passphrase.
  CHECK_FALSE(parse_secret(key_use::tunnel_secret, text(key.substr(0, key.size() - 2))).problem.empty());
  for (std::size_t i = 12; i < key.size(); i += 7) {
    auto typo = key;
    typo[i] = typo[i] == 'x' ? 'y' : 'x';
    INFO("changed at " << i);
    CHECK_THAT(parse_secret(key_use::tunnel_secret, text(typo)).problem, Catch::Contains("does not match") ||
                                                                            Catch::Contains("base64url"));
  }
  CHECK_FALSE(parse_secret(key_use::tunnel_secret, text(key + "A")).problem.empty());
  // A token is not a secret and a secret is not a token.
  const auto token = new_key_text(key_use::access_token);
  CHECK(token.rfind("lstp-token-", 0) == 0);
  CHECK(parse_secret(key_use::access_token, text(token)).is_key);
  CHECK_THAT(parse_secret(key_use::tunnel_secret, text(token)).problem, Catch::Contains("access token"));
  CHECK_THAT(parse_secret(key_use::access_token, text(key)).problem, Catch::Contains("tunnel secret"));
  // Anything else is a passphrase.
  auto pass = parse_secret(key_use::tunnel_secret, text("correct horse battery staple"));
  CHECK(pass.problem.empty());
  CHECK_FALSE(pass.is_key);
}

TEST_CASE("pairing ids: the same for both ends, new each epoch, different for a different secret",
          "[lstp][secrets]") {
  const auto key = new_key_text(key_use::tunnel_secret);
  const auto a = derive_tunnel_keys("corp-a", key);
  const auto b = derive_tunnel_keys("corp-a", key);
  CHECK(a.pairing_at(7) == b.pairing_at(7));
  CHECK(a.psk == b.psk);
  CHECK(a.psk.size() == 32);
  CHECK(a.pairing_at(7) != a.pairing_at(8));
  CHECK(derive_tunnel_keys("corp-b", key).pairing_at(7) != a.pairing_at(7));  // salted by the name
  CHECK(derive_tunnel_keys("corp-a", new_key_text(key_use::tunnel_secret)).pairing_at(7) != a.pairing_at(7));
  // A passphrase goes through Argon2id: stable, and not the same as the
  // key its text would make.
  const auto p1 = derive_tunnel_keys("corp-a", "a passphrase of some length");
  const auto p2 = derive_tunnel_keys("corp-a", "a passphrase of some length");
  CHECK(p1.pairing_at(1) == p2.pairing_at(1));
  CHECK(p1.psk != a.psk);
  // Epochs are hours of Unix time.
  CHECK(pairing_epoch(0) == 0);
  CHECK(pairing_epoch(3599) == 0);
  CHECK(pairing_epoch(3600) == 1);
  CHECK(pairing_epoch(1'800'000'000) == 500'000);
  // A hint is a hash: it is not the id.
  const auto id = a.pairing_at(3);
  const auto hint = hint_of(id);
  CHECK(!std::equal(hint.begin(), hint.end(), id.begin()));
  CHECK(hint_of(a.pairing_at(4)) != hint);
  // An access key: the key's bytes, or Argon2id of a passphrase salted by the name.
  const auto tk = parse_secret(key_use::access_token, text(new_key_text(key_use::access_token)));
  CHECK(access_key("alice", tk) == tk.bytes);
  const auto tp = parse_secret(key_use::access_token, text("a token passphrase here"));
  CHECK(access_key("alice", tp) != access_key("bob", tp));
  CHECK(access_key("alice", tp).size() == 32);
}

TEST_CASE("two client ends (or two server ends) of one tunnel refuse each other", "[lstp][tunnel][pairing]") {
  Botan::AutoSeeded_RNG rng;
  const auto now = clock::time_point{} + std::chrono::hours(1);
  for (auto role : {end_role::client, end_role::server}) {
    recorder ea, eb;
    tunnel a({make_info(role, "a", test_keys(), 1), test_keys().psk, {}}, rng, now);
    tunnel b({make_info(role, "b", test_keys(), 2), test_keys().psk, {}}, rng, now);
    auto why = meet(a, ea, b, now);
    REQUIRE(why);
    CHECK(why->code == wire_error::setup_mismatch);
    CHECK_THAT(why->reason, Catch::StartsWith(std::string("both ends are ") +
                                              (role == end_role::client ? "client" : "server") + " ends"));
  }
  // A "both" end pairs with either.
  for (auto role : {end_role::client, end_role::server, end_role::both}) {
    recorder ea, eb;
    tunnel a({make_info(end_role::both, "a", test_keys(), 1), test_keys().psk, {}}, rng, now);
    tunnel b({make_info(role, "b", test_keys(), 2), test_keys().psk, {}}, rng, now);
    CHECK_FALSE(meet(a, ea, b, now));
  }
}

TEST_CASE("an end never pairs with itself", "[lstp][tunnel][pairing][hostile]") {
  Botan::AutoSeeded_RNG rng;
  const auto now = clock::time_point{} + std::chrono::hours(1);
  SECTION("its own name") {
    recorder ea, eb;
    tunnel a({make_info(end_role::both, "laptop", test_keys(), 1), test_keys().psk, {}}, rng, now);
    tunnel b({make_info(end_role::both, "laptop", test_keys(), 2), test_keys().psk, {}}, rng, now);
    auto why = meet(a, ea, b, now);
    REQUIRE(why);
    CHECK(why->reason == "the middle proxy paired this end with itself (the peer's name is this end's own)");
  }
  SECTION("the nonce of another of its own attempts") {
    recorder ea, eb;
    tunnel_params pa{make_info(end_role::both, "laptop", test_keys(), 1), test_keys().psk, {}};
    pa.is_own_nonce = [](const nonce& n) { return n[0] == 2; };  // the other attempt below
    tunnel a(pa, rng, now);
    tunnel b({make_info(end_role::both, "laptop-2", test_keys(), 2), test_keys().psk, {}}, rng, now);
    auto why = meet(a, ea, b, now);
    REQUIRE(why);
    CHECK(why->reason == "the middle proxy paired this end with itself (the peer's nonce is this end's own)");
  }
}

TEST_CASE("a setup still waiting when the pairing epoch turns ends, to be made again", "[lstp][tunnel][pairing]") {
  Botan::AutoSeeded_RNG rng;
  const auto now = clock::time_point{} + std::chrono::hours(1);
  tunnel_limits l;
  l.setup_refresh = std::chrono::seconds(90);
  recorder e;
  tunnel t({make_info(end_role::client, "c", test_keys(), 1), test_keys().psk, l}, rng, now);
  CHECK(t.next_deadline() == now + std::chrono::seconds(90));
  t.on_timer(now + std::chrono::seconds(89));
  dispatch_events(t, e);
  CHECK_FALSE(e.closed);
  t.on_timer(now + std::chrono::seconds(90));
  dispatch_events(t, e);
  REQUIRE(e.closed);
  CHECK(e.closed->reason == epoch_turned_reason);
  // Without a refresh, the setup waits for setup_wait as before.
  recorder e2;
  tunnel plain({make_info(end_role::client, "c", test_keys(), 1), test_keys().psk, {}}, rng, now);
  CHECK(plain.next_deadline() == now + tunnel_limits{}.setup_wait);
}

TEST_CASE("a resuming end gives up when the middle says its peer's fresh setup waits", "[lstp][tunnel][resume]") {
  tunnel_limits l;
  l.resumption = true;
  const auto notice = [](const pairing_id& id) {
    bytes out;
    write_frame(out, frame_type::pairing_notice, 0, hint_of(id));
    return out;
  };
  SECTION("a stranger's setup (another pairing id) is no reason to give up") {
    tunnel_pair p(l);
    p.pump();
    REQUIRE(p.both_up());
    p.cut();
    REQUIRE(p.client->resuming());
    pairing_id other{};
    other.fill(0x42);
    p.give(*p.client, notice(other));
    CHECK_FALSE(p.client_events.closed);
    p.pump();
    CHECK(p.client_events.resumed.size() == 1);  // the real peer came, and it resumed
  }
  SECTION("the peer's fresh setup is") {
    tunnel_pair p(l);
    p.pump();
    REQUIRE(p.both_up());
    p.cut();
    p.give(*p.client, notice(test_keys().pairing_at(0)));
    REQUIRE(p.client_events.closed);
    CHECK(p.client_events.closed->reason == "the peer started a new tunnel: this one cannot be resumed");
  }
  SECTION("a fresh end ignores notices and keeps waiting") {
    Botan::AutoSeeded_RNG rng;
    const auto now = clock::time_point{} + std::chrono::hours(1);
    tunnel_params cp{make_info(end_role::client, "c", test_keys(), 1), test_keys().psk, l};
    cp.is_fresh_peer_setup = [](const pairing_hint&) { return true; };
    recorder e;
    tunnel t(cp, rng, now);
    t.receive(notice(test_keys().pairing_at(0)), now);
    dispatch_events(t, e);
    CHECK_FALSE(e.closed);
    CHECK(t.state() == tunnel_state::setup);
  }
}

TEST_CASE("a PAIRING_NOTICE is read before a setup, never from an end, and must be 32 bytes", "[lstp][setup]") {
  bytes in;
  pairing_hint hint{};
  hint.fill(9);
  write_frame(in, frame_type::pairing_notice, 0, hint);
  setup_reader end_side;
  end_side.feed(in);
  auto r = end_side.next();
  REQUIRE(r.state == setup_reader::status::notice);
  CHECK(end_side.notice_hint() == hint);
  CHECK(end_side.next().state == setup_reader::status::need_more);
  setup_reader middle_side{setup_reader::access_frame::accepted, setup_reader::notices::refused};
  middle_side.feed(in);
  CHECK(middle_side.next().state == setup_reader::status::invalid);
  bytes short_one;
  write_frame(short_one, frame_type::pairing_notice, 0, byte_view(hint).first(31));
  setup_reader r2;
  r2.feed(short_one);
  auto bad = r2.next();
  CHECK(bad.state == setup_reader::status::invalid);
  CHECK(bad.reason == "PAIRING_NOTICE of 31 bytes, expected 32");
}
