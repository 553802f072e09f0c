#include "runtime/capacity.hpp"

#include <malloc.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "runtime/log.hpp"

namespace runtime {

namespace asio = boost::asio;
using asio::ip::tcp;

void prewarm_socket_states(asio::io_context& io, std::size_t count) {
  std::vector<tcp::socket> sockets;
  sockets.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    tcp::socket s(io);
    boost::system::error_code ec;
    s.open(tcp::v4(), ec);
    if (ec) break;
    sockets.push_back(std::move(s));
  }
  // Closing them hands their states back to the pool, where the next
  // connections find them.
}

void prepare_for_connections(asio::io_context& io, task_group& tasks, std::size_t max_connections,
                             std::size_t max_openings) {
  rlimit lim{};
  std::size_t limit = SIZE_MAX;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    if (lim.rlim_cur < lim.rlim_max) {
      rlimit raised = lim;
      raised.rlim_cur = lim.rlim_max;
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
    }
    if (lim.rlim_cur != RLIM_INFINITY) limit = static_cast<std::size_t>(lim.rlim_cur);
  }
  // One descriptor per counted connection (a hop, an app's connection), and
  // some for listeners, tunnels' hops and the far side's sockets.
  if (max_connections < SIZE_MAX - 64 && max_connections + 64 > limit)
    log_warn("main", "limits.max_connections is ", max_connections, " but this process may open only ", limit,
             " descriptors (ulimit -n): past that, new connections fail");
  prewarm_socket_states(io, std::min(max_openings + 64, limit / 4));
  trim_memory_after_bursts(tasks);
}

namespace {
asio::awaitable<void> trim_loop() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::seconds(10));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    // Free bytes inside the heap: what a burst left behind. Pages already
    // given back cost the next trim little.
    if (::mallinfo2().fordblks < 256 * 1024) continue;
    const auto start = std::chrono::steady_clock::now();
    ::malloc_trim(0);
    log_debug("main", "gave free heap pages back in ",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(), " ms");
  }
}
}  // namespace

void trim_memory_after_bursts(task_group& tasks) { tasks.spawn("heap trimmer", [] { return trim_loop(); }); }

}  // namespace runtime
