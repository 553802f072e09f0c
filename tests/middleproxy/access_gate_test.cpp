// The middle's access gate (PROTOCOL.md 3.6): no free relay.
#include <catch2/catch.hpp>

#include "lstp/access.hpp"
#include "lstp/secrets.hpp"
#include "middleproxy/access_gate.hpp"

using middleproxy::access_gate;

namespace {
constexpr std::int64_t now = 1'800'000'000;
constexpr std::string_view alice_token = "alice-token-0123456789abcdef";
constexpr std::string_view bob_token = "bob-token-0123456789abcdef01";
lstp::secret_bytes key_of(std::string_view text) { return lstp::secret_bytes(text.begin(), text.end()); }
const lstp::secret_bytes alice_key = key_of(alice_token);
const lstp::secret_bytes bob_key = key_of(bob_token);

lstp::setup_message setup_for(std::string_view tunnel, std::uint8_t nonce_byte) {
  lstp::common_unique_info info;
  info.name = "laptop";
  info.tag = lstp::tag_of(tunnel);
  info.nonce.fill(nonce_byte);
  return lstp::make_setup(info, {lstp::hop_kind::client_end, "laptop", ""});
}

access_gate two_keys() {
  return access_gate({{"alice", alice_key, {}}, {"bob", bob_key, {"lab-c"}}},
                     std::chrono::seconds(300));
}
}  // namespace

TEST_CASE("without an access list every setup passes", "[middleproxy][access]") {
  access_gate open;
  CHECK_FALSE(open.required());
  CHECK_FALSE(open.check(std::nullopt, setup_for("corp-a", 1), now).refusal);
}

TEST_CASE("a proof made with a listed token passes and names its credential", "[middleproxy][access]") {
  auto gate = two_keys();
  CHECK(gate.required());
  const auto s = setup_for("corp-a", 1);
  auto v = gate.check(lstp::make_access_proof("alice", alice_key, now, s), s, now);
  CHECK_FALSE(v.refusal);
  CHECK(v.who == "alice");
  // bob may serve lab-c
  const auto lab = setup_for("lab-c", 2);
  CHECK_FALSE(gate.check(lstp::make_access_proof("bob", bob_key, now - 100, lab), lab, now).refusal);
}

TEST_CASE("no proof, an unknown name and a wrong token are refused alike", "[middleproxy][access][hostile]") {
  auto gate = two_keys();
  const auto s = setup_for("corp-a", 1);
  auto none = gate.check(std::nullopt, s, now);
  REQUIRE(none.refusal);
  CHECK(none.refusal->code == lstp::wire_error::access_denied);
  CHECK(none.refusal->reason.find("requires an access credential") != std::string::npos);

  // An unknown name costs the same HMAC as a wrong token: timing tells no
  // stranger which names exist.
  const auto before = gate.macs_checked();
  auto unknown = gate.check(lstp::make_access_proof("carol", alice_key, now, s), s, now);
  CHECK(gate.macs_checked() == before + 1);
  auto wrong = gate.check(lstp::make_access_proof("alice", bob_key, now, s), s, now);
  CHECK(gate.macs_checked() == before + 2);
  REQUIRE(unknown.refusal);
  REQUIRE(wrong.refusal);
  CHECK(unknown.refusal->code == lstp::wire_error::access_denied);
  // The hop cannot tell which; the log can.
  CHECK(unknown.refusal->reason == wrong.refusal->reason);
  CHECK(unknown.detail == "unknown credential \"carol\"");
  CHECK(wrong.detail == "wrong token for credential \"alice\"");
  // No token appears in anything said or logged.
  for (auto* v : {&none, &unknown, &wrong})
    for (auto& text : {v->refusal->reason, v->detail}) {
      CHECK(text.find(alice_token) == std::string::npos);
      CHECK(text.find(bob_token) == std::string::npos);
    }
  // A proof for one setup does not pass with another.
  auto moved = gate.check(lstp::make_access_proof("alice", alice_key, now, s), setup_for("corp-a", 9), now);
  REQUIRE(moved.refusal);
  CHECK(moved.detail == "wrong token for credential \"alice\"");
}

TEST_CASE("a proof outside the clock window is refused, saying by how much", "[middleproxy][access][hostile]") {
  auto gate = two_keys();
  const auto s = setup_for("corp-a", 1);
  CHECK_FALSE(gate.check(lstp::make_access_proof("alice", alice_key, now + 300, s), s, now).refusal);
  const auto s2 = setup_for("corp-a", 2);
  auto ahead = gate.check(lstp::make_access_proof("alice", alice_key, now + 301, s2), s2, now);
  REQUIRE(ahead.refusal);
  CHECK(ahead.refusal->reason.find("301 s ahead of this middle proxy's clock") != std::string::npos);
  auto behind = gate.check(lstp::make_access_proof("alice", alice_key, now - 1000, s2), s2, now);
  REQUIRE(behind.refusal);
  CHECK(behind.refusal->reason.find("1000 s behind") != std::string::npos);
  auto absurd = gate.check(lstp::make_access_proof("alice", alice_key, ~std::uint64_t{0}, s2), s2, now);
  REQUIRE(absurd.refusal);
  CHECK(absurd.refusal->code == lstp::wire_error::access_denied);
}

TEST_CASE("a credential limited to some tunnels serves only those", "[middleproxy][access][hostile]") {
  auto gate = two_keys();
  const auto s = setup_for("corp-a", 1);
  auto v = gate.check(lstp::make_access_proof("bob", bob_key, now, s), s, now);
  REQUIRE(v.refusal);
  CHECK(v.refusal->reason == "access denied: credential \"bob\" may not serve this tunnel");
}

TEST_CASE("a replayed proof is refused while it is fresh", "[middleproxy][access][hostile]") {
  auto gate = two_keys();
  const auto s = setup_for("corp-a", 1);
  const auto proof = lstp::make_access_proof("alice", alice_key, now, s);
  CHECK_FALSE(gate.check(proof, s, now).refusal);
  auto replay = gate.check(proof, s, now + 5);
  REQUIRE(replay.refusal);
  CHECK(replay.refusal->reason == "access proof already used: a replayed setup");
  // Once it is older than the window it is refused as stale instead, and
  // forgotten (the cache does not grow forever).
  auto late = gate.check(proof, s, now + 301);
  REQUIRE(late.refusal);
  CHECK(late.refusal->reason.find("behind") != std::string::npos);
  // A fresh setup of the same end (new nonce) passes.
  const auto again = setup_for("corp-a", 2);
  CHECK_FALSE(gate.check(lstp::make_access_proof("alice", alice_key, now + 5, again), again, now + 5).refusal);
}

TEST_CASE("one credential filling its share of the replay cache locks out only itself",
          "[middleproxy][access][hostile][limits]") {
  // 100 credentials: each may hold 100,000 / 100 = 1,000 proofs (at least min_share).
  std::vector<middleproxy::access_key> keys;
  for (int i = 0; i < 98; ++i) keys.push_back({"user" + std::to_string(i), key_of("token of user " + std::to_string(i)), {}});
  keys.push_back({"alice", alice_key, {}});
  keys.push_back({"bob", bob_key, {}});
  access_gate gate(std::move(keys), std::chrono::seconds(300));
  std::size_t passed = 0;
  for (int t = 0; t < 5 && passed < access_gate::min_share; ++t) {
    for (int n = 0; n < 256 && passed < access_gate::min_share; ++n) {
      const auto s = setup_for("corp-a", static_cast<std::uint8_t>(n));
      const auto proof = lstp::make_access_proof("alice", alice_key, now + t, s);
      REQUIRE_FALSE(gate.check(proof, s, now + t).refusal);
      ++passed;
    }
  }
  CHECK(passed == access_gate::min_share);
  const auto s = setup_for("corp-a", 1);
  auto full = gate.check(lstp::make_access_proof("alice", alice_key, now + 9, s), s, now + 9);
  REQUIRE(full.refusal);
  CHECK(full.refusal->code == lstp::wire_error::too_many_waiting);
  CHECK(full.refusal->reason == "too many setups with this credential in the access window (1000); try later");
  // Bob is not affected.
  CHECK_FALSE(gate.check(lstp::make_access_proof("bob", bob_key, now + 9, s), s, now + 9).refusal);
  // Once alice's proofs are older than twice the window, she may go on.
  const auto later = now + 700;
  CHECK_FALSE(gate.check(lstp::make_access_proof("alice", alice_key, later, s), s, later).refusal);
}
