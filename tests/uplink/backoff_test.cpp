#include <catch2/catch.hpp>

#include "uplink/backoff.hpp"

using std::chrono::milliseconds;

TEST_CASE("reconnect delays double from the first step up to the cap, with jitter in the upper half") {
  const milliseconds first{1000}, max{30000};
  // Lowest and highest draws bound each round's delay.
  const unsigned all_ones = 0xffffffffu;
  for (unsigned n = 0; n < 10; ++n) {
    const auto step = std::min<milliseconds>(first * (1LL << n), max);
    const auto low = uplink::backoff_delay(first, max, n, 0);
    CHECK(low == step / 2);
    const auto high = uplink::backoff_delay(first, max, n, static_cast<std::uint32_t>(step.count() / 2));
    CHECK(high == step);
    const auto any = uplink::backoff_delay(first, max, n, all_ones);
    CHECK(any >= step / 2);
    CHECK(any <= step);
  }
  CHECK(uplink::backoff_delay(first, max, 200, 0) == milliseconds(15000));  // no overflow, capped
  // Different draws spread the ends out.
  CHECK(uplink::backoff_delay(first, max, 3, 1) != uplink::backoff_delay(first, max, 3, 2000));
  CHECK(uplink::backoff_delay(milliseconds(1), milliseconds(1), 0, 7) == milliseconds(0));
}
