#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <vector>

#include "transport/failing_hop.hpp"
#include "transport/memory_hop.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using transport::hop_ptr;

namespace {

// Runs a coroutine to its end (or fails the test after a bound).
template <class F>
void run(asio::io_context& io, F f) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, f(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(10ms);
  }
  REQUIRE(done);
  if (failure) std::rethrow_exception(failure);
}

asio::awaitable<std::string> read_all(transport::hop_stream& h, boost::system::error_code& ec) {
  std::string got;
  char buf[1000];
  for (;;) {
    auto n = co_await h.read_some(asio::buffer(buf), ec);
    if (ec) co_return got;
    got.append(buf, n);
  }
}

}  // namespace

TEST_CASE("memory hop: bytes pass both ways and a half-close reads as eof after them") {
  asio::io_context io;
  auto [a, b] = transport::make_memory_hop_pair(io.get_executor());
  run(io, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    co_await a->write(asio::buffer(std::string("hello")), ec);
    REQUIRE(!ec);
    co_await b->write(asio::buffer(std::string("world")), ec);
    REQUIRE(!ec);
    a->shutdown_send();
    auto got = co_await read_all(*b, ec);
    CHECK(got == "hello");
    CHECK(ec == asio::error::eof);
    // b can still send after a's half-close.
    char buf[16];
    auto n = co_await a->read_some(asio::buffer(buf), ec);
    CHECK(!ec);
    CHECK(std::string(buf, n) == "world");
  });
}

TEST_CASE("memory hop: a writer waits while the reader's side is full (back pressure)") {
  asio::io_context io;
  transport::memory_hop_options options;
  options.capacity = 1000;
  auto [a, b] = transport::make_memory_hop_pair(io.get_executor(), options);
  bool written = false;
  asio::co_spawn(io, [&, &a = a]() -> asio::awaitable<void> {
    std::vector<char> big(5000, 'x');
    boost::system::error_code ec;
    co_await a->write(asio::buffer(big), ec);
    written = !ec;
  }, [](std::exception_ptr) {});
  for (int i = 0; i < 50; ++i) io.run_one_for(1ms);
  CHECK_FALSE(written);  // 4000 bytes cannot be placed yet
  run(io, [&, &b = b]() -> asio::awaitable<void> {
    std::size_t total = 0;
    char buf[700];
    boost::system::error_code ec;
    while (total < 5000) {
      auto n = co_await b->read_some(asio::buffer(buf), ec);
      REQUIRE(!ec);
      CHECK(n <= 1000);
      total += n;
    }
  });
  io.restart();
  io.poll();
  CHECK(written);
}

TEST_CASE("memory hop: close aborts its own pending read, the peer reads eof and cannot write") {
  asio::io_context io;
  auto [a, b] = transport::make_memory_hop_pair(io.get_executor());
  boost::system::error_code read_ec;
  bool read_done = false;
  asio::co_spawn(io, [&, &a = a]() -> asio::awaitable<void> {
    char buf[10];
    co_await a->read_some(asio::buffer(buf), read_ec);
    read_done = true;
  }, [](std::exception_ptr) {});
  io.poll();
  CHECK_FALSE(read_done);
  a->close();
  io.restart();
  io.poll();
  CHECK(read_done);
  CHECK(read_ec == asio::error::operation_aborted);
  run(io, [&, &b = b]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    char buf[10];
    co_await b->read_some(asio::buffer(buf), ec);
    CHECK(ec == asio::error::eof);
    co_await b->write(asio::buffer(std::string("late")), ec);
    CHECK(ec == asio::error::broken_pipe);
  });
}

TEST_CASE("memory hop: cancel aborts pending operations only and the hop goes on") {
  asio::io_context io;
  auto [a, b] = transport::make_memory_hop_pair(io.get_executor());
  boost::system::error_code wait_ec;
  bool done = false;
  asio::co_spawn(io, [&, &a = a]() -> asio::awaitable<void> {
    co_await a->wait_readable(wait_ec);
    done = true;
  }, [](std::exception_ptr) {});
  io.poll();
  CHECK_FALSE(done);
  boost::system::error_code ec;
  a->cancel(ec);
  io.restart();
  io.poll();
  CHECK(done);
  CHECK(wait_ec == asio::error::operation_aborted);
  run(io, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    boost::system::error_code ec2;
    co_await b->write(asio::buffer(std::string("still here")), ec2);
    co_await a->wait_readable(ec2);
    CHECK(!ec2);
    char buf[32];
    auto n = co_await a->read_some(asio::buffer(buf), ec2);
    CHECK(std::string(buf, n) == "still here");
  });
}

TEST_CASE("failing hop: the nth operation and every later one fail, and the hop is closed") {
  asio::io_context io;
  auto [a, b] = transport::make_memory_hop_pair(io.get_executor());
  auto count = std::make_shared<transport::fail_count>(3);
  auto f = transport::make_failing_hop(std::move(a), count);
  run(io, [&, &b = b]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    co_await f->write(asio::buffer(std::string("one")), ec);  // 1
    CHECK(!ec);
    co_await b->write(asio::buffer(std::string("two")), ec);  // not counted: b is not wrapped
    char buf[8];
    auto n = co_await f->read_some(asio::buffer(buf), ec);  // 2
    CHECK(!ec);
    CHECK(std::string(buf, n) == "two");
    co_await f->write(asio::buffer(std::string("three")), ec);  // 3: fails
    CHECK(ec == asio::error::connection_reset);
    co_await f->read_some(asio::buffer(buf), ec);  // 4: fails too
    CHECK(ec == asio::error::connection_reset);
    CHECK(count->failed());
    CHECK(count->counted() == 3);
    // The peer sees the hop end after what got through.
    auto got = co_await read_all(*b, ec);
    CHECK(got == "one");
    CHECK(ec == asio::error::eof);
  });
}

TEST_CASE("failing hop: a count of zero never fails and counts every operation") {
  asio::io_context io;
  auto [a, b] = transport::make_memory_hop_pair(io.get_executor());
  auto count = std::make_shared<transport::fail_count>();
  auto f = transport::make_failing_hop(std::move(a), count);
  run(io, [&]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    for (int i = 0; i < 10; ++i) co_await f->write(asio::buffer(std::string("x")), ec);
    CHECK(!ec);
  });
  CHECK(count->counted() == 10);
  CHECK_FALSE(count->failed());
}

#include "transport/relay_pump.hpp"

TEST_CASE("relay pump: an end passes on as a half-close and the other direction goes on") {
  asio::io_context io;
  auto [app, near] = transport::make_memory_hop_pair(io.get_executor());
  auto [far, dest] = transport::make_memory_hop_pair(io.get_executor());
  std::uint64_t up = 0, down = 0;
  bool up_done = false, down_done = false;
  asio::co_spawn(io, transport::relay_one_way(*near, *far, up), [&](std::exception_ptr) { up_done = true; });
  asio::co_spawn(io, transport::relay_one_way(*far, *near, down), [&](std::exception_ptr) { down_done = true; });
  run(io, [&, &app = app, &dest = dest]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    co_await app->write(asio::buffer(std::string("request")), ec);
    app->shutdown_send();
    auto got = co_await read_all(*dest, ec);
    CHECK(got == "request");
    CHECK(ec == asio::error::eof);  // the half-close arrived
    co_await dest->write(asio::buffer(std::string("answer")), ec);
    CHECK(!ec);
    dest->shutdown_send();
    got = co_await read_all(*app, ec);
    CHECK(got == "answer");
    CHECK(ec == asio::error::eof);
  });
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  CHECK(up_done);
  CHECK(down_done);
  CHECK(up == 7);
  CHECK(down == 6);
}

TEST_CASE("relay pump: a failure on one side ends both directions") {
  asio::io_context io;
  auto [app, near] = transport::make_memory_hop_pair(io.get_executor());
  auto [far, dest] = transport::make_memory_hop_pair(io.get_executor());
  auto count = std::make_shared<transport::fail_count>(2);  // the second read of the destination side fails
  auto failing_far = transport::make_failing_hop(std::move(far), count);
  std::uint64_t up = 0, down = 0;
  asio::co_spawn(io, transport::relay_one_way(*near, *failing_far, up), [](std::exception_ptr) {});
  asio::co_spawn(io, transport::relay_one_way(*failing_far, *near, down), [](std::exception_ptr) {});
  run(io, [&, &app = app]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    char buf[16];
    // Both relays end: the app's hop is closed under it (its reads end,
    // its writes fail), and no byte it did not send comes back. (Memory
    // hops have no reset: test_routing shows a TCP hop's reset passed on.)
    co_await app->write(asio::buffer(std::string("x")), ec);
    auto n = co_await app->read_some(asio::buffer(buf), ec);
    CHECK(n == 0);
    CHECK(ec);
  });
  CHECK(count->failed());
}

TEST_CASE("relay pump: a failed write leaves the other direction to deliver the gone side's last bytes") {
  // The far side sent its last words ("bye", like an end's ERROR) and
  // closed; the near side writes towards it at the same moment. The
  // write fails, and the bytes still in flight from the far side reach the
  // near side all the same, then its end. (Resetting both hops on the failed
  // write lost them: a peer then took a tunnel's end for a lost hop.)
  asio::io_context io;
  auto [app, near] = transport::make_memory_hop_pair(io.get_executor());
  auto [far, dest] = transport::make_memory_hop_pair(io.get_executor());
  std::uint64_t up = 0, down = 0;
  run(io, [&, &app = app, &dest = dest]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    co_await dest->write(asio::buffer(std::string("bye")), ec);
    dest->close();
    co_await app->write(asio::buffer(std::string("x")), ec);
  });
  asio::co_spawn(io, transport::relay_one_way(*near, *far, up), [](std::exception_ptr) {});
  asio::co_spawn(io, transport::relay_one_way(*far, *near, down), [](std::exception_ptr) {});
  run(io, [&, &app = app]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    auto got = co_await read_all(*app, ec);
    CHECK(got == "bye");
    CHECK(ec == asio::error::eof);
  });
  CHECK(up == 0);
  CHECK(down == 3);
}
