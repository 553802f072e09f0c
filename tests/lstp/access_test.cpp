// The ACCESS frame and its proof (PROTOCOL.md 3.6).
#include <catch2/catch.hpp>

#include "lstp/access.hpp"
#include "lstp/setup.hpp"
#include "tunnel_harness.hpp"

namespace {
lstp::setup_message a_setup(std::uint8_t nonce_byte) {
  lstp::common_unique_info info;
  info.name = "laptop";
  info.pairing.fill(7);
  info.nonce.fill(nonce_byte);
  return lstp::make_setup(info, {lstp::hop_kind::client_end, "laptop", ""});
}
lstp::secret_bytes key_of(std::string_view text) { return lstp::secret_bytes(text.begin(), text.end()); }
const lstp::secret_bytes token = key_of("alice-token-0123456789abcdef");
}  // namespace

TEST_CASE("an access proof holds only for its token and its own setup", "[lstp][access][hostile]") {
  const auto setup = a_setup(1);
  const auto proof = lstp::make_access_proof("alice", token, 1'800'000'000, setup);
  CHECK(proof.name == "alice");
  CHECK(proof.time == 1'800'000'000);
  CHECK(lstp::verify_access_proof(proof, token, setup));
  CHECK_FALSE(lstp::verify_access_proof(proof, key_of("alice-token-0123456789abcdeF"), setup));
  // Moved to another setup (another nonce), it fails.
  CHECK_FALSE(lstp::verify_access_proof(proof, token, a_setup(2)));
  // Another time or name under the same MAC fails.
  auto later = proof;
  later.time += 1;
  CHECK_FALSE(lstp::verify_access_proof(later, token, setup));
  auto other = proof;
  other.name = "bob";
  CHECK_FALSE(lstp::verify_access_proof(other, token, setup));
  // A longer topology (a middle appended) is another setup.
  auto relayed = setup;
  relayed.topology.push_back({lstp::hop_kind::middle, "m1", "192.0.2.1:443"});
  CHECK_FALSE(lstp::verify_access_proof(proof, token, relayed));
}

TEST_CASE("ACCESS round-trips and refuses malformed payloads", "[lstp][access][hostile]") {
  const auto proof = lstp::make_access_proof("alice", token, 0x0102030405060708ULL, a_setup(1));
  lstp::bytes frame;
  lstp::encode_access(frame, proof);
  lstp::frame_decoder d(1024);
  d.feed(frame);
  auto r = d.next();
  REQUIRE(r.state == lstp::frame_decoder::status::done);
  CHECK(r.frame.header.type == lstp::frame_type::access);
  lstp::access_proof back;
  std::string why;
  REQUIRE(lstp::decode_access(r.frame.payload, back, why));
  CHECK(back == proof);
  const lstp::bytes payload(r.frame.payload.begin(), r.frame.payload.end());
  auto cut = payload;
  cut.pop_back();
  CHECK_FALSE(lstp::decode_access(cut, back, why));
  CHECK(why == "ACCESS truncated");
  auto longer = payload;
  longer.push_back(0);
  CHECK_FALSE(lstp::decode_access(longer, back, why));
  CHECK(why == "trailing bytes");
  lstp::bytes no_name(payload.begin() + 1 + 5, payload.end());
  no_name.insert(no_name.begin(), 0);
  CHECK_FALSE(lstp::decode_access(no_name, back, why));
  CHECK(why == "ACCESS names no credential");
}

TEST_CASE("a middle's setup reader takes one ACCESS before the setup, an end's takes none", "[lstp][access][setup]") {
  const auto setup = a_setup(3);
  lstp::bytes wire;
  const auto proof = lstp::make_access_proof("alice", token, 1'800'000'000, setup);
  lstp::encode_access(wire, proof);
  const auto frames = lstp::encode_setup(setup);
  wire.insert(wire.end(), frames.begin(), frames.end());

  lstp::setup_reader middle(lstp::setup_reader::access_frame::accepted);
  middle.feed(wire);
  REQUIRE(middle.next().state == lstp::setup_reader::status::done);
  REQUIRE(middle.access());
  CHECK(*middle.access() == proof);
  CHECK(lstp::verify_access_proof(*middle.access(), token, middle.setup()));

  lstp::setup_reader plain(lstp::setup_reader::access_frame::accepted);
  plain.feed(frames);
  REQUIRE(plain.next().state == lstp::setup_reader::status::done);
  CHECK_FALSE(plain.access());

  lstp::setup_reader end;
  end.feed(wire);
  auto r = end.next();
  CHECK(r.state == lstp::setup_reader::status::invalid);
  CHECK(r.reason == "expected COMMON_UNIQUE_INFO, got ACCESS");

  // Two ACCESS frames are one too many.
  lstp::bytes twice;
  lstp::encode_access(twice, proof);
  twice.insert(twice.end(), wire.begin(), wire.end());
  lstp::setup_reader again(lstp::setup_reader::access_frame::accepted);
  again.feed(twice);
  CHECK(again.next().state == lstp::setup_reader::status::invalid);
}

TEST_CASE("an end with a credential opens its hop with ACCESS, proven over its own setup", "[lstp][access]") {
  using namespace lstp_test;
  tunnel_pair pair;
  tunnel_params params{make_info(end_role::client, "c", test_keys(), 5), test_keys().psk, {}};
  params.access = middle_access{"alice", token, 1'800'000'123};
  tunnel with_access(params, pair.rng, pair.now);
  lstp::setup_reader middle(lstp::setup_reader::access_frame::accepted);
  middle.feed(with_access.output());
  REQUIRE(middle.next().state == lstp::setup_reader::status::done);
  REQUIRE(middle.access());
  CHECK(middle.access()->name == "alice");
  CHECK(middle.access()->time == 1'800'000'123);
  CHECK(lstp::verify_access_proof(*middle.access(), token, middle.setup()));
  CHECK(middle.setup().info.nonce == params.self.nonce);
  CHECK(middle.unread().empty());
  // Without a credential there is no ACCESS frame.
  tunnel_params plain_params{make_info(end_role::client, "c", test_keys(), 6), test_keys().psk, {}};
  tunnel plain(plain_params, pair.rng, pair.now);
  CHECK(static_cast<lstp::frame_type>(plain.output()[0]) == lstp::frame_type::common_unique_info);
}
