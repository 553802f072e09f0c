#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "runtime/notifier.hpp"
#include "runtime/watchdog.hpp"

namespace asio = boost::asio;

TEST_CASE("a notify before the wait is not lost", "[runtime][notifier]") {
  asio::io_context io;
  runtime::notifier n(io.get_executor());
  bool woke = false;
  n.notify();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await n.wait();
        woke = true;
      },
      asio::detached);
  io.run_for(std::chrono::seconds(2));
  CHECK(woke);
}

TEST_CASE("a waiting coroutine wakes on notify, and wait_until reports a timeout", "[runtime][notifier]") {
  asio::io_context io;
  runtime::notifier n(io.get_executor());
  int wakes = 0;
  bool timed_out = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await n.wait();
        ++wakes;
        bool woke = co_await n.wait_until(asio::steady_timer::clock_type::now() + std::chrono::milliseconds(20));
        timed_out = !woke;
      },
      asio::detached);
  io.poll();  // the coroutine is now waiting
  CHECK(wakes == 0);
  n.notify();
  io.run_for(std::chrono::seconds(2));
  CHECK(wakes == 1);
  CHECK(timed_out);
}

TEST_CASE("a watchdog cancels a stalled operation, and is harmless when it does not fire", "[runtime][watchdog]") {
  // Any cancellable I/O object will do; a timer far in the future stands for
  // a read from a peer that sends nothing.
  asio::io_context io;
  asio::steady_timer stalled(io);
  bool fired = false;
  boost::system::error_code result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        runtime::watchdog dog(stalled, std::chrono::milliseconds(30));
        stalled.expires_after(std::chrono::hours(1));
        co_await stalled.async_wait(asio::redirect_error(asio::use_awaitable, result));
        fired = dog.fired();
      },
      asio::detached);
  io.run_for(std::chrono::seconds(2));
  CHECK(fired);
  CHECK(result == asio::error::operation_aborted);

  // Destroyed before its deadline: nothing is cancelled later.
  io.restart();
  bool finished = false;
  {
    runtime::watchdog dog(stalled, std::chrono::milliseconds(10));
  }
  stalled.expires_after(std::chrono::milliseconds(60));
  stalled.async_wait([&](const boost::system::error_code& ec) { finished = !ec; });
  io.run_for(std::chrono::seconds(2));
  CHECK(finished);
}
