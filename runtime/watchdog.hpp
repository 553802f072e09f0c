// Bounds the operations on one socket in time: when the deadline passes
// first, pending operations on the socket are cancelled (they complete with
// operation_aborted) and fired() turns true. Safe to destroy at any time,
// even while its timer's handler is already queued.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

namespace runtime {

class watchdog {
 public:
  template <class Socket>
  watchdog(Socket& socket, std::chrono::steady_clock::duration timeout)
      : timer_(std::make_shared<boost::asio::steady_timer>(socket.get_executor())),
        state_(std::make_shared<state>()) {
    timer_->expires_after(timeout);
    timer_->async_wait([&socket, st = state_](const boost::system::error_code& ec) {
      if (ec || !st->alive) return;
      st->fired = true;
      if constexpr (requires(boost::system::error_code& e) { socket.cancel(e); }) {
        boost::system::error_code ignored;
        socket.cancel(ignored);
      } else {
        socket.cancel();  // resolvers: no error_code overload
      }
    });
  }
  ~watchdog() {
    state_->alive = false;
    timer_->cancel();
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  bool fired() const { return state_->fired; }

 private:
  struct state {
    bool alive = true;
    bool fired = false;
  };
  std::shared_ptr<boost::asio::steady_timer> timer_;
  std::shared_ptr<state> state_;
};

}  // namespace runtime
