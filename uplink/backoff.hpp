// How long an end waits before its next attempt at the middle proxies:
// exponential backoff with jitter. The n-th failed round in a row (n from
// 0) waits between half and all of min(max, first * 2^n), so ends that lost
// the same middle do not all come back in the same instant. Sans-I/O: the
// caller supplies the random number.
#pragma once

#include <chrono>
#include <cstdint>

namespace uplink {

inline std::chrono::milliseconds backoff_delay(std::chrono::milliseconds first, std::chrono::milliseconds max,
                                               unsigned failed_rounds, std::uint32_t random) {
  auto step = first;
  for (unsigned i = 0; i < failed_rounds && step < max; ++i) step *= 2;
  if (step > max) step = max;
  const auto half = step.count() / 2;
  const auto jitter = half > 0 ? static_cast<std::int64_t>(random % static_cast<std::uint64_t>(half + 1)) : 0;
  return std::chrono::milliseconds(half + jitter);
}

}  // namespace uplink
