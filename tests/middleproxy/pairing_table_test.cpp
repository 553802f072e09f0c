#include <catch2/catch.hpp>

#include "middleproxy/pairing_table.hpp"

using middleproxy::admit_result;
using middleproxy::pairing_table;

namespace {
lstp::pairing_id id(std::uint8_t b) {
  lstp::pairing_id i{};
  i.fill(b);
  return i;
}
lstp::tunnel_tag tag(std::uint8_t b) {
  lstp::tunnel_tag t{};
  t.fill(b);
  return t;
}
lstp::nonce nonce(std::uint8_t b) {
  lstp::nonce n{};
  n.fill(b);
  return n;
}
}  // namespace

TEST_CASE("two setups with the same pairing id pair, and a third is refused", "[middleproxy][pairing]") {
  pairing_table<int> t(10);
  CHECK(t.admit(id(1), tag(1), nonce(1), 100).result == admit_result::wait);
  CHECK(t.is_waiting(id(1)));
  auto second = t.admit(id(1), tag(1), nonce(2), 200);
  REQUIRE(second.result == admit_result::pair);
  CHECK(*second.partner == 100);
  CHECK_FALSE(t.is_waiting(id(1)));
  CHECK(t.is_paired(id(1)));
  CHECK(t.admit(id(1), tag(1), nonce(3), 300).result == admit_result::already_paired);
  t.unpair(id(1));
  CHECK(t.admit(id(1), tag(1), nonce(3), 300).result == admit_result::wait);
}

TEST_CASE("a setup replayed with the waiting one's nonce is refused", "[middleproxy][pairing]") {
  pairing_table<int> t(10);
  t.admit(id(1), tag(1), nonce(7), 1);
  CHECK(t.admit(id(1), tag(1), nonce(7), 2).result == admit_result::replay);
  CHECK(t.is_waiting(id(1)));  // the original keeps waiting
}

TEST_CASE("a setup of the same tunnel name with another pairing id waits beside, evicting nobody",
          "[middleproxy][pairing][hostile]") {
  pairing_table<int> t(10);
  // A stranger who knows only the tunnel's name (its tag is in every setup)
  // arrives first with a made-up pairing id...
  CHECK(t.admit(id(66), tag(9), nonce(1), 66).result == admit_result::wait);
  // ...and the real ends still pair: the first waits beside it, the second pairs.
  CHECK(t.admit(id(1), tag(9), nonce(2), 1).result == admit_result::wait_beside);
  CHECK(t.waiting_beside(tag(9), id(1)) == std::vector<int>{66});
  auto r = t.admit(id(1), tag(9), nonce(3), 2);
  REQUIRE(r.result == admit_result::pair);
  CHECK(*r.partner == 1);
  // The stranger arriving second evicts no one either.
  CHECK(t.admit(id(2), tag(7), nonce(1), 3).result == admit_result::wait);
  CHECK(t.admit(id(67), tag(7), nonce(2), 67).result == admit_result::wait_beside);
  CHECK(t.is_waiting(id(2)));
  CHECK(t.admit(id(2), tag(7), nonce(4), 4).result == admit_result::pair);
  // Forgetting one entry of a name leaves the others listed under it.
  CHECK(t.forget_waiting(id(66), 66));
  CHECK(t.waiting_beside(tag(9), id(1)).empty());
  CHECK(t.waiting_beside(tag(7), id(2)) == std::vector<int>{67});
}

TEST_CASE("one tunnel name holds a bounded number of pairing ids", "[middleproxy][pairing][limits]") {
  pairing_table<int> t(100, 100, 3);
  CHECK(t.admit(id(1), tag(9), nonce(1), 1).result == admit_result::wait);
  CHECK(t.admit(id(2), tag(9), nonce(1), 2).result == admit_result::wait_beside);
  CHECK(t.admit(id(3), tag(9), nonce(1), 3).result == admit_result::wait_beside);
  CHECK(t.admit(id(4), tag(9), nonce(1), 4).result == admit_result::name_full);
  // A partner of a waiting one still pairs, and other names are unaffected.
  CHECK(t.admit(id(2), tag(9), nonce(2), 5).result == admit_result::pair);
  CHECK(t.admit(id(4), tag(9), nonce(1), 4).result == admit_result::wait_beside);
  CHECK(t.admit(id(5), tag(5), nonce(1), 6).result == admit_result::wait);
}

TEST_CASE("the waiting list is capped and entries leave only for their own hop", "[middleproxy][pairing]") {
  pairing_table<int> t(2);
  CHECK(t.admit(id(1), tag(1), nonce(1), 1).result == admit_result::wait);
  CHECK(t.admit(id(2), tag(2), nonce(1), 2).result == admit_result::wait);
  CHECK(t.admit(id(3), tag(3), nonce(1), 3).result == admit_result::table_full);
  CHECK_FALSE(t.forget_waiting(id(1), 99));  // not that hop's entry
  CHECK(t.forget_waiting(id(1), 1));
  CHECK(t.admit(id(3), tag(3), nonce(1), 3).result == admit_result::wait);
  // A forgotten entry's name no longer counts.
  t.forget_waiting(id(2), 2);
  CHECK(t.admit(id(5), tag(2), nonce(1), 5).result == admit_result::wait);
}

TEST_CASE("one source address cannot hold more than its share of waiting setups", "[middleproxy][pairing][limits]") {
  pairing_table<int> t(10, 2);
  CHECK(t.admit(id(1), tag(1), nonce(1), 1, "192.0.2.7").result == admit_result::wait);
  CHECK(t.admit(id(2), tag(2), nonce(2), 2, "192.0.2.7").result == admit_result::wait);
  CHECK(t.admit(id(3), tag(3), nonce(3), 3, "192.0.2.7").result == admit_result::source_full);
  // Everyone else carries on, and a partner still pairs with a waiting one.
  CHECK(t.admit(id(3), tag(3), nonce(3), 3, "198.51.100.1").result == admit_result::wait);
  CHECK(t.admit(id(1), tag(1), nonce(9), 9, "198.51.100.1").result == admit_result::pair);
  CHECK(t.waiting_from("192.0.2.7") == 1);
  // The freed share is the source's again.
  CHECK(t.admit(id(4), tag(4), nonce(4), 4, "192.0.2.7").result == admit_result::wait);
  CHECK(t.forget_waiting(id(2), 2));
  CHECK(t.waiting_from("192.0.2.7") == 1);
  CHECK(t.admit(id(5), tag(5), nonce(5), 5, "192.0.2.7").result == admit_result::wait);
}

TEST_CASE("one source cannot fill a tunnel name: its next setup replaces its own oldest",
          "[middleproxy][pairing][limits][hostile]") {
  pairing_table<int> t(100, 100, 8, 2);
  // A stranger on one address sends made-up pairing ids for the name, over
  // and over: it never holds more than two of the eight places...
  for (std::uint8_t i = 0; i < 20; ++i) {
    auto r = t.admit(id(static_cast<std::uint8_t>(100 + i)), tag(9), nonce(i), 100 + i, "192.0.2.66");
    CHECK((r.result == admit_result::wait || r.result == admit_result::wait_beside));
    if (i >= 2) {
      REQUIRE(r.replaced);
      CHECK(*r.replaced == 100 + i - 2);  // its own oldest
    } else {
      CHECK_FALSE(r.replaced);
    }
  }
  CHECK(t.waiting_from("192.0.2.66") == 2);
  // ...so the real ends, from their own addresses, wait and pair.
  auto first = t.admit(id(1), tag(9), nonce(1), 1, "198.51.100.1");
  CHECK(first.result == admit_result::wait_beside);
  CHECK_FALSE(first.replaced);
  auto second = t.admit(id(1), tag(9), nonce(2), 2, "203.0.113.5");
  REQUIRE(second.result == admit_result::pair);
  CHECK(*second.partner == 1);
  // Filling the name takes four sources; the fifth is refused.
  for (std::uint8_t s = 0; s < 3; ++s)
    for (std::uint8_t k = 0; k < 2; ++k)
      CHECK(t.admit(id(static_cast<std::uint8_t>(200 + 2 * s + k)), tag(9), nonce(1), 200 + 2 * s + k,
                    "10.0.0." + std::to_string(s))
                .result == admit_result::wait_beside);
  CHECK(t.admit(id(250), tag(9), nonce(1), 250, "10.9.9.9").result == admit_result::name_full);
  // Other names and sources are not touched by a replacement.
  CHECK(t.admit(id(30), tag(3), nonce(1), 30, "192.0.2.66").result == admit_result::wait);
  CHECK(t.is_waiting(id(30)));
}

TEST_CASE("two setups of the same end are never partners: the newer takes the older's place",
          "[middleproxy][pairing]") {
  using lstp::end_role;
  pairing_table<int> t(10);
  CHECK(t.admit(id(1), tag(1), nonce(1), 100, "a", end_role::server).result == admit_result::wait);
  // The server end again (a resuming end's newer attempt): it waits in the
  // older one's place, and the older one's hop is to be closed.
  auto again = t.admit(id(1), tag(1), nonce(2), 101, "b", end_role::server);
  CHECK(again.result == admit_result::wait);
  REQUIRE(again.replaced);
  CHECK(*again.replaced == 100);
  CHECK(again.replaced_same_end);
  CHECK(t.waiting() == 1);
  CHECK(t.waiting_from("a") == 0);
  // The client end pairs with the newer one.
  auto client = t.admit(id(1), tag(1), nonce(3), 200, "c", end_role::client);
  REQUIRE(client.result == admit_result::pair);
  CHECK(*client.partner == 101);
  // Ends that both forward (role both) pair with each other.
  pairing_table<int> both(10);
  both.admit(id(2), tag(2), nonce(1), 1, "a", end_role::both);
  CHECK(both.admit(id(2), tag(2), nonce(2), 2, "b", end_role::both).result == admit_result::pair);
}
