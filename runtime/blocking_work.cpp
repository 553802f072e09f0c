#include "runtime/blocking_work.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace runtime {

namespace {
boost::asio::thread_pool& pool() {
  // One thread: blocking steps are rare (a proxy login) and short.
  static boost::asio::thread_pool threads(1);
  return threads;
}
}  // namespace

boost::asio::awaitable<void> run_blocking(std::function<void()> work) {
  // Named first, awaited after: GCC 12 must not see a lambda temporary in a
  // co_await expression (ARCHITECTURE.md). The pool's coroutine holds the
  // work, so it lives as long as it runs, whatever becomes of this frame.
  auto on_pool = [w = std::move(work)]() -> boost::asio::awaitable<void> {
    w();
    co_return;
  };
  auto done = boost::asio::co_spawn(pool(), std::move(on_pool), boost::asio::use_awaitable);
  co_await std::move(done);
}

}  // namespace runtime
