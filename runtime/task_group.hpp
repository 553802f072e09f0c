// The coroutines one object starts, owned by it (as in Beast's examples):
// every task is started through its owner's group, so the owner can cancel
// them together, wait until they have all ended, and learn once of a task
// that ended by an exception (which ends only that task; the owner decides
// what else it takes down).
//
// Lifetime: a task must keep alive what it uses (capture a shared_ptr to
// its owner, never a raw `this` of an object that may go first). The group
// itself may be destroyed while tasks run: they are cancelled then, and
// what they report is dropped.
//
// Cancellation is Asio's terminal cancellation: the operation a task waits
// in completes with operation_aborted, and the task's next co_await of an
// asynchronous operation throws it. A task ended that way is not reported.
//
// Single-threaded: use it from the executor it was made with.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace runtime {

class task_group {
 public:
  // Called once for each task that ended by an exception: the task's name
  // and the exception's text.
  using reporter = std::function<void(std::string_view task, std::string_view what)>;

  task_group(const boost::asio::any_io_executor& ex, reporter report)
      : ex_(ex), state_(std::make_shared<state>(ex, std::move(report))) {}
  ~task_group() {
    state_->report = nullptr;
    cancel();
  }
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  // Starts `make()` (a callable returning awaitable<void>, kept alive until
  // the task ends) as a task of this group. If it ends by an exception,
  // the group's reporter hears of it, then `on_failure` runs (to end what
  // the task owned).
  template <class Make>
  void spawn(std::string name, Make make, std::function<void()> on_failure = {}) {
    auto st = state_;
    auto it = st->signals.emplace(st->signals.end());
    boost::asio::co_spawn(
        ex_, std::move(make),
        boost::asio::bind_cancellation_slot(
            it->slot(), [st, it, name = std::move(name), on_failure = std::move(on_failure)](std::exception_ptr e) {
              if (st->finished(it, e, name) && on_failure) on_failure();
            }));
  }

  // The same for a task that ends by other means than cancellation (an
  // end_channel's loops end when its socket closes): it is counted, joined
  // and reported like any other, but cancel() does not reach it. It saves
  // the cancellation state Asio keeps for each pending operation of a task
  // (about 700 bytes for an idle channel's two loops).
  template <class Make>
  void spawn_uncancellable(std::string name, Make make, std::function<void()> on_failure = {}) {
    auto st = state_;
    auto it = st->signals.emplace(st->signals.end());
    boost::asio::co_spawn(ex_, std::move(make),
                          [st, it, name = std::move(name), on_failure = std::move(on_failure)](std::exception_ptr e) {
                            if (st->finished(it, e, name) && on_failure) on_failure();
                          });
  }

  // Terminal cancellation of every running task.
  void cancel() {
    // A task may end (and leave the list) while this runs: walk a snapshot.
    std::vector<boost::asio::cancellation_signal*> all;
    for (auto& s : state_->signals) all.push_back(&s);
    for (auto* s : all) s->emit(boost::asio::cancellation_type::terminal);
  }

  std::size_t running() const { return state_->signals.size(); }
  std::size_t failures() const { return state_->failures; }

  // Completes once no task of the group runs (at once when none does).
  // Do not call join() from a task of the same group: it would wait for itself.
  boost::asio::awaitable<void> join() {
    auto st = state_;
    while (!st->signals.empty()) {
      boost::system::error_code ec;
      st->idle.expires_at(boost::asio::steady_timer::time_point::max());
      co_await st->idle.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
  }

 private:
  struct state {
    state(const boost::asio::any_io_executor& ex, reporter r) : idle(ex), report(std::move(r)) {}
    std::list<boost::asio::cancellation_signal> signals;
    boost::asio::steady_timer idle;
    reporter report;
    std::size_t failures = 0;

    // True when the task failed (ended by an exception other than cancellation).
    bool finished(std::list<boost::asio::cancellation_signal>::iterator it, std::exception_ptr e,
                  const std::string& name) {
      signals.erase(it);
      bool failed = false;
      if (e) {
        std::string what;
        bool cancelled = false;
        try {
          std::rethrow_exception(e);
        } catch (const boost::system::system_error& se) {
          cancelled = se.code() == boost::asio::error::operation_aborted;
          what = se.what();
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
          what = "an unknown exception";
        }
        if (!cancelled) {
          failed = true;
          ++failures;
          // A copy: the report may end the owner, and the owner's end
          // clears `report` while it runs.
          if (auto r = report) r(name, what);
        }
      }
      if (signals.empty()) idle.cancel();
      return failed;
    }
  };

  boost::asio::any_io_executor ex_;
  std::shared_ptr<state> state_;
};

}  // namespace runtime
