// A wake-up signal for one waiting coroutine on a single-threaded executor.
// notify() before wait() is remembered, so a wake-up is never lost.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace runtime {

class notifier {
 public:
  explicit notifier(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  // Cheap when nobody waits (the common case for a busy writer woken by
  // every command): only a flag, no timer operation.
  void notify() {
    pending_ = true;
    if (waiting_) {
      waiting_ = false;
      timer_.cancel();
    }
  }

  boost::asio::awaitable<void> wait() {
    if (!pending_) {
      timer_.expires_at(boost::asio::steady_timer::time_point::max());
      boost::system::error_code ec;
      waiting_ = true;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      waiting_ = false;
    }
    pending_ = false;
  }

  // Waits at most until `deadline`; returns false on timeout.
  boost::asio::awaitable<bool> wait_until(boost::asio::steady_timer::time_point deadline) {
    if (!pending_) {
      timer_.expires_at(deadline);
      boost::system::error_code ec;
      waiting_ = true;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      waiting_ = false;
    }
    bool woke = pending_;
    pending_ = false;
    co_return woke;
  }

 private:
  boost::asio::steady_timer timer_;
  bool pending_ = false;
  bool waiting_ = false;  // a wait is under way on timer_
};

}  // namespace runtime
