#include <catch2/catch.hpp>

#include "middleproxy/setup_check.hpp"

using middleproxy::check_setup;

namespace {
lstp::setup_message setup_through(std::vector<std::string> middles) {
  lstp::common_unique_info info;
  info.name = "cli";
  auto s = lstp::make_setup(info, {lstp::hop_kind::client_end, "cli", ""});
  for (auto& m : middles) s.topology.push_back({lstp::hop_kind::middle, m, "192.0.2.1:443"});
  return s;
}
}  // namespace

TEST_CASE("a setup from an end, through other middles, is admitted", "[middleproxy][setup]") {
  CHECK_FALSE(check_setup(setup_through({}), "m1"));
  CHECK_FALSE(check_setup(setup_through({"m2", "m3"}), "m1"));
}

TEST_CASE("a setup that already passed this middle is a loop", "[middleproxy][setup][hostile]") {
  auto refusal = check_setup(setup_through({"m2", "m1", "m3"}), "m1");
  REQUIRE(refusal);
  CHECK(refusal->code == lstp::wire_error::topology_loop);
  CHECK(refusal->reason.find("already passed middle \"m1\"") != std::string::npos);
}

TEST_CASE("a topology that starts with a middle or has an end inside is refused", "[middleproxy][setup][hostile]") {
  auto s = setup_through({"m2"});
  s.topology.front().kind = lstp::hop_kind::middle;
  auto refusal = check_setup(s, "m1");
  REQUIRE(refusal);
  CHECK(refusal->code == lstp::wire_error::protocol_error);
  auto t = setup_through({"m2"});
  t.topology.back().kind = lstp::hop_kind::server_end;
  CHECK(check_setup(t, "m1"));
  lstp::setup_message empty;
  CHECK(check_setup(empty, "m1"));
}

TEST_CASE("a setup that would cross more than 30 middles is refused", "[middleproxy][setup][hostile]") {
  std::vector<std::string> middles;
  for (int i = 0; i < 29; ++i) middles.push_back("m" + std::to_string(i + 10));
  CHECK_FALSE(check_setup(setup_through(middles), "m1"));  // end + 29 + this one + the far end = 32
  middles.push_back("m99");
  auto refusal = check_setup(setup_through(middles), "m1");
  REQUIRE(refusal);
  CHECK(refusal->code == lstp::wire_error::topology_too_long);
}
