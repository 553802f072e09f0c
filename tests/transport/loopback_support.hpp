// Helpers for transport tests that run real sockets on loopback under one
// io_context: test bytes, and running the context until something happened.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

namespace transport_test {

// `n` bytes that differ by seed, so a misplaced or repeated byte shows.
inline std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// Runs `io` until `done()` or `limit`, and requires `done()`.
template <class Pred>
void run_until(boost::asio::io_context& io, Pred done, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.restart();  // it stops whenever it runs out of work
    io.run_for(std::chrono::milliseconds(10));
  }
  REQUIRE(done());
}

// Runs the coroutine `make()` returns on `io` to its end (within run_until's
// limit, which it requires).
template <class Make>
void run_to_end(boost::asio::io_context& io, Make make) {
  bool done = false;
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    co_await make();
    done = true;
  }, boost::asio::detached);
  run_until(io, [&] { return done; });
}

}  // namespace transport_test
