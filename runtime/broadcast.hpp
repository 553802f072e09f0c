// A wake-up for every coroutine waiting on one state (single-threaded
// executor): waiters check their condition, then wait; notify_all() wakes
// all of them to check again. Unlike runtime::notifier it serves any number
// of waiters, each with its own deadline; a notify with nobody waiting is
// not remembered (a waiter checks before it waits, with no suspension in
// between, so it cannot miss one).
#pragma once

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <list>

namespace runtime {

class broadcast {
 public:
  void notify_all() {
    for (auto* t : waiters_) t->cancel();
  }

  // Returns when notified or at `deadline`, whichever comes first.
  boost::asio::awaitable<void> wait_until(boost::asio::steady_timer::time_point deadline) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
    auto it = waiters_.insert(waiters_.end(), &timer);
    struct leave {
      std::list<boost::asio::steady_timer*>& list;
      std::list<boost::asio::steady_timer*>::iterator it;
      ~leave() { list.erase(it); }
    } guard{waiters_, it};
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
  boost::asio::awaitable<void> wait() { return wait_until(boost::asio::steady_timer::time_point::max()); }

  std::size_t waiting() const { return waiters_.size(); }

 private:
  std::list<boost::asio::steady_timer*> waiters_;
};

}  // namespace runtime
