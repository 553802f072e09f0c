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

boost::asio::awaitable<void> run_blocking(const std::function<void()>& work) {
  // Named first, awaited after: GCC 12 must not see a lambda temporary in a
  // co_await expression (ARCHITECTURE.md). Owned by the awaiting coroutine,
  // which resumes when it completes.
  // `work` outlives this: the caller awaits it.
  auto on_pool = [&work]() -> boost::asio::awaitable<void> {
    work();
    co_return;
  };
  auto done = boost::asio::co_spawn(pool(), std::move(on_pool), boost::asio::use_awaitable);
  co_await std::move(done);
}

}  // namespace runtime
