#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "runtime/handshake_slots.hpp"
#include "runtime/log_throttle.hpp"
#include "runtime/notifier.hpp"
#include "runtime/source_address.hpp"
#include "runtime/task_group.hpp"
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

TEST_CASE("handshake slots push out the oldest opener when full", "[runtime][limits][hostile]") {
  runtime::handshake_slots slots(3, 0);
  std::vector<int> evicted;
  auto a = slots.enter("10.0.0.1", [&] { evicted.push_back(1); });
  auto b = slots.enter("10.0.0.2", [&] { evicted.push_back(2); });
  auto c = slots.enter("10.0.0.3", [&] { evicted.push_back(3); });
  CHECK(slots.openers() == 3);
  CHECK(evicted.empty());
  auto d = slots.enter("10.0.0.4", [&] { evicted.push_back(4); });
  CHECK(evicted == std::vector<int>{1});
  CHECK(slots.openers() == 3);
  CHECK(slots.take_evicted() == 1);
  CHECK(slots.take_evicted() == 0);
  // The pushed-out ticket frees nothing when it goes; a finished opening
  // frees its slot, so nobody is pushed out for the next.
  a.release();
  CHECK(slots.openers() == 3);
  b.release();
  CHECK(slots.openers() == 2);
  auto e = slots.enter("10.0.0.5", [&] { evicted.push_back(5); });
  CHECK(evicted == std::vector<int>{1});
  // The oldest still open goes next, not the newest.
  auto f = slots.enter("10.0.0.6", [&] { evicted.push_back(6); });
  CHECK(evicted == std::vector<int>{1, 3});
  CHECK(slots.sources() == 3);
}

TEST_CASE("one source holds only its share of the handshake slots", "[runtime][limits][hostile]") {
  runtime::handshake_slots slots(100, 2);
  int evictions = 0;
  auto x1 = slots.enter("192.0.2.9", [&] { ++evictions; });
  auto x2 = slots.enter("192.0.2.9", [&] { ++evictions; });
  auto x3 = slots.enter("192.0.2.9", [&] { ++evictions; });
  CHECK(x1);
  CHECK(x2);
  CHECK_FALSE(x3);  // refused outright, pushing out nobody
  CHECK(slots.take_refused() == 1);
  auto other = slots.enter("198.51.100.1", [&] { ++evictions; });
  CHECK(other);
  CHECK(evictions == 0);
  x1.release();
  CHECK(slots.enter("192.0.2.9", [&] { ++evictions; }));
}

TEST_CASE("a flood of openers leaves at most the limit held, and nothing once they go", "[runtime][limits][hostile]") {
  runtime::handshake_slots slots(64, 0);
  std::vector<runtime::handshake_slots::ticket> held;
  int evictions = 0;
  for (int i = 0; i < 10000; ++i) held.push_back(slots.enter("127.0.0.1", [&] { ++evictions; }));
  CHECK(slots.openers() == 64);
  CHECK(evictions == 10000 - 64);
  held.clear();
  CHECK(slots.openers() == 0);
  CHECK(slots.sources() == 0);
}

TEST_CASE("a log throttle lets one line per key and interval through and counts the rest", "[runtime][log]") {
  runtime::log_throttle t(std::chrono::seconds(10));
  const auto t0 = runtime::log_throttle::clock::time_point{} + std::chrono::hours(1);
  CHECK(t.allow("10.0.0.1", t0) == std::optional<std::size_t>(0));
  CHECK_FALSE(t.allow("10.0.0.1", t0 + std::chrono::seconds(1)));
  CHECK_FALSE(t.allow("10.0.0.1", t0 + std::chrono::seconds(9)));
  CHECK(t.allow("10.0.0.2", t0 + std::chrono::seconds(9)) == std::optional<std::size_t>(0));
  CHECK(t.allow("10.0.0.1", t0 + std::chrono::seconds(10)) == std::optional<std::size_t>(2));
  CHECK(runtime::log_throttle::left_out_text(2) == " (2 more like it left out)");
  CHECK(runtime::log_throttle::left_out_text(0).empty());
}

TEST_CASE("a log throttle stays bounded under a flood of new keys", "[runtime][log][hostile]") {
  runtime::log_throttle t(std::chrono::seconds(10), 64);
  const auto t0 = runtime::log_throttle::clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 10000; ++i) CHECK(t.allow("source " + std::to_string(i), t0));
  // Still counting for a key seen since the last reset.
  CHECK(t.allow("source 9999", t0 + std::chrono::seconds(1)) == std::nullopt);
}

TEST_CASE("sources are IPv4 addresses and IPv6 /64s", "[runtime][limits]") {
  using boost::asio::ip::make_address;
  CHECK(runtime::source_of(make_address("192.0.2.7")) == "192.0.2.7");
  CHECK(runtime::source_of(make_address("::ffff:192.0.2.7")) == "192.0.2.7");
  CHECK(runtime::source_of(make_address("2001:db8:1:2:aaaa:bbbb:cccc:dddd")) == "2001:db8:1:2::/64");
  CHECK(runtime::source_of(make_address("2001:db8:1:2::1")) == runtime::source_of(make_address("2001:db8:1:2:ffff::9")));
  CHECK(runtime::source_of(make_address("2001:db8:1:3::1")) != runtime::source_of(make_address("2001:db8:1:2::1")));
}

// --- task_group ---


TEST_CASE("a task group reports a task's exception once, by name, and the other tasks go on", "[runtime][task_group]") {
  asio::io_context io;
  std::vector<std::string> reports;
  runtime::task_group group(io.get_executor(), [&](std::string_view task, std::string_view what) {
    reports.push_back(std::string(task) + ": " + std::string(what));
  });
  bool other_finished = false;
  group.spawn("thrower", []() -> asio::awaitable<void> {
    co_await asio::post(asio::use_awaitable);
    throw std::runtime_error("boom");
  });
  group.spawn("sleeper", [&]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
    co_await t.async_wait(asio::use_awaitable);
    other_finished = true;
  });
  CHECK(group.running() == 2);
  io.run_for(std::chrono::seconds(2));
  REQUIRE(reports.size() == 1);
  CHECK(reports[0] == "thrower: boom");
  CHECK(other_finished);
  CHECK(group.running() == 0);
  CHECK(group.failures() == 1);
}

TEST_CASE("cancelling a task group ends every task at its wait, unreported, and join completes", "[runtime][task_group]") {
  asio::io_context io;
  int reports = 0;
  auto group = std::make_unique<runtime::task_group>(io.get_executor(), [&](auto, auto) { ++reports; });
  int ended = 0;
  for (int i = 0; i < 3; ++i) {
    group->spawn("waiter", [&]() -> asio::awaitable<void> {
      struct count_end {
        int& n;
        ~count_end() { ++n; }
      } guard{ended};
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      boost::system::error_code ec;
      // redirect_error keeps the first wait from throwing; the loop's next
      // wait throws, so a loop that ignores the error still ends.
      for (;;) co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    });
  }
  bool joined = false;
  runtime::task_group joiner(io.get_executor(), [](auto, auto) {});
  joiner.spawn("join", [&]() -> asio::awaitable<void> {
    co_await group->join();
    joined = true;
  });
  asio::steady_timer later(io, std::chrono::milliseconds(20));
  later.async_wait([&](auto) { group->cancel(); });
  io.run_for(std::chrono::seconds(2));
  CHECK(ended == 3);
  CHECK(joined);
  CHECK(reports == 0);
  CHECK(group->running() == 0);
}

TEST_CASE("destroying a task group cancels its tasks, which keep what they hold alive", "[runtime][task_group]") {
  asio::io_context io;
  auto held = std::make_shared<int>(7);
  std::weak_ptr<int> watch = held;
  bool ended = false;
  {
    runtime::task_group group(io.get_executor(), [](auto, auto) {});
    group.spawn("holder", [held = std::move(held), &ended]() -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      ended = *held == 7 && ec == asio::error::operation_aborted;
    });
    io.poll();
  }
  io.run_for(std::chrono::seconds(2));
  CHECK(ended);
  CHECK(watch.expired());
}

#include "runtime/tcp_connect.hpp"

namespace {
runtime::tcp_connect_result connect_now(boost::asio::io_context& io, std::string host, std::uint16_t port,
                                        runtime::address_filter filter = {}) {
  std::optional<runtime::tcp_connect_result> out;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> {
        out = co_await runtime::tcp_connect(io.get_executor(), host, port, std::chrono::seconds(5), filter);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.restart();
  io.run_for(std::chrono::seconds(10));
  REQUIRE(out);
  return std::move(*out);
}
}  // namespace

TEST_CASE("tcp_connect connects, refuses what the filter refuses without trying, and names a resolve failure",
          "[runtime][connect]") {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor listener(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = listener.local_endpoint().port();
  auto ok = connect_now(io, "127.0.0.1", port);
  CHECK(ok.connected());
  REQUIRE(ok.socket);
  CHECK(ok.socket->remote_endpoint().port() == port);

  int asked = 0;
  auto refused = connect_now(io, "127.0.0.1", port, [&](const boost::asio::ip::tcp::endpoint& e) {
    ++asked;
    return std::optional<std::string>("no " + e.address().to_string());
  });
  CHECK(refused.result == runtime::tcp_connect_result::outcome::refused);
  CHECK(refused.refusal == "no 127.0.0.1");
  CHECK(asked == 1);
  CHECK_FALSE(refused.socket);
  // Only the first connection reached the listener.
  listener.non_blocking(true);
  boost::system::error_code ec;
  listener.accept(ec);
  CHECK(!ec);
  listener.accept(ec);
  CHECK(ec == boost::asio::error::would_block);

  auto unknown = connect_now(io, "no-such-host.invalid", 80);
  CHECK(unknown.result == runtime::tcp_connect_result::outcome::resolve_failed);
  CHECK(unknown.error);

  listener.close();
  auto closed = connect_now(io, "127.0.0.1", port);
  CHECK(closed.result == runtime::tcp_connect_result::outcome::connect_failed);
  CHECK(closed.error == boost::asio::error::connection_refused);
}

TEST_CASE("an uncancellable task is counted, joined and reported, and cancel does not reach it", "[runtime][tasks]") {
  boost::asio::io_context io;
  std::vector<std::string> reported;
  runtime::task_group group(io.get_executor(), [&](std::string_view task, std::string_view) { reported.emplace_back(task); });
  runtime::notifier go(io.get_executor());
  bool ended = false, failed_handler = false;
  group.spawn_uncancellable("waits", [&]() -> boost::asio::awaitable<void> {
    co_await go.wait();
    ended = true;
  });
  group.spawn_uncancellable(
      "throws", []() -> boost::asio::awaitable<void> {
        co_await boost::asio::post(boost::asio::use_awaitable);
        throw std::runtime_error("boom");
      },
      [&] { failed_handler = true; });
  io.poll();
  CHECK(group.running() == 1);
  CHECK(reported == std::vector<std::string>{"throws"});
  CHECK(failed_handler);
  group.cancel();
  io.restart();
  io.poll();
  CHECK_FALSE(ended);  // not cancelled
  CHECK(group.running() == 1);
  go.notify();
  io.restart();
  io.poll();
  CHECK(ended);
  CHECK(group.running() == 0);
}
