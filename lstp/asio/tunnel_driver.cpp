#include "lstp/asio/tunnel_driver.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "runtime/log.hpp"

namespace lstp::asio_edge {

namespace asio = boost::asio;

tunnel_driver::tunnel_driver(transport::hop_ptr hop, tunnel_params params, Botan::RandomNumberGenerator& rng,
                             tunnel_handler& handler, std::string label)
    : label_(std::move(label)),
      handler_(handler),
      hop_(std::move(hop)),
      tunnel_(std::move(params), rng, clock::now()),
      writer_wake_(hop_->get_executor()),
      output_drained_(hop_->get_executor()),
      hop_changed_(hop_->get_executor()),
      timer_(hop_->get_executor()),
      tasks_(hop_->get_executor(), [this](std::string_view task, std::string_view what) { task_failed(task, what); }) {
  hop_->tune_socket();
  // Commands from anywhere (channels, the keeper) leave output or events:
  // the writer writes the one and dispatches the other.
  tunnel_.on_pending([this] { writer_wake_.notify(); });
}

void tunnel_driver::schedule(std::shared_ptr<data_source> source) {
  ready_.push_back(std::move(source));
  writer_wake_.notify();
}

bool tunnel_driver::replace_hop(transport::hop_ptr hop) {
  if (tunnel_.state() == tunnel_state::closed || writer_finished_) {
    hop->close();
    return false;
  }
  std::shared_ptr<transport::hop_stream> next(std::move(hop));
  next->tune_socket();
  auto old = std::exchange(hop_, std::move(next));
  ++hops_used_;
  old->close();  // the loops see their operation on it end, and take the new hop
  hop_dead_ = false;
  writer_wake_.notify();
  hop_changed_.notify();
  timer_.cancel();  // a new hop's setup has its own deadline
  return true;
}

void tunnel_driver::dispatch() {
  while (auto e = tunnel_.poll_event()) {
    if (e->type == event_type::hop_lost && !hop_dead_) {
      // Nothing more goes to or comes from that hop; closing it also tells
      // the middle to free the pair.
      // The end's handler logs the loss for operators (one line per event).
      runtime::log_debug("tunnel", label_, ": hop lost: ", e->error.reason);
      hop_dead_ = true;
      hop_->close();
      timer_.cancel();  // the deadlines are the resumption's now
    }
    // Channels that became ready while the tunnel was not up wait for it.
    if (e->type == event_type::resumed || e->type == event_type::up) writer_wake_.notify();
    if (e->type == event_type::closed) {
      hop_changed_.notify();  // a reader waiting for a new hop ends
      writer_wake_.notify();
      timer_.cancel();        // the flush deadline
    }
    deliver_event(tunnel_, handler_, *e);
  }
}

void tunnel_driver::hop_failed(std::string why) {
  if (tunnel_.state() == tunnel_state::closed) return;
  tunnel_.hop_lost(std::move(why), clock::now());
  dispatch();
  if (tunnel_.state() == tunnel_state::closed) timer_.cancel();  // start the flush deadline
}

void tunnel_driver::close(const error_info& why) {
  tunnel_.close(why);
  // The handler hears it now, not when the writer next runs: a process
  // stopping at once resets its channels before the loop ends. Closed, the
  // tunnel reads no more input, so this cannot move past a data event a
  // handler is still looking at.
  dispatch();
  timer_.cancel();  // the timer loop starts the flush deadline
}

void tunnel_driver::shutdown(std::string_view reason) {
  tunnel_.shutdown(reason, clock::now());
  timer_.cancel();
}

asio::awaitable<void> tunnel_driver::run() {
  auto self = shared_from_this();
  tasks_.spawn("writer", [self]() { return self->write_loop(); });
  tasks_.spawn("timer", [self]() { return self->timer_loop(); });
  try {
    co_await read_loop();
  } catch (const boost::system::system_error& e) {
    if (e.code() != asio::error::operation_aborted) task_failed("reader", e.what());
    else close({wire_error::general, "the end proxy is stopping"});
  } catch (const std::exception& e) {
    task_failed("reader", e.what());
  }
  writer_wake_.notify();
  co_await tasks_.join();
  dispatch();  // the last events (closed) reach the handler
  ready_.clear();
}

void tunnel_driver::task_failed(std::string_view task, std::string_view what) {
  runtime::log_error("tunnel", label_, ": internal error in the hop's ", task, ": ", what);
  if (tunnel_.state() != tunnel_state::closed) tunnel_.close({wire_error::general, "internal error"});
  // The writer may be the one that failed: nothing flushes any more.
  writer_finished_ = true;
  hop_->close();
  writer_wake_.notify();
  output_drained_.notify();
  timer_.cancel();
}

asio::awaitable<void> tunnel_driver::read_loop() {
  while (tunnel_.state() != tunnel_state::closed) {
    while (tunnel_.output().size() > read_pause_output && tunnel_.state() != tunnel_state::closed)
      co_await output_drained_.wait();
    if (tunnel_.state() == tunnel_state::closed) break;
    if (hop_dead_) {
      co_await hop_changed_.wait();  // a new hop, or the tunnel closed
      continue;
    }
    boost::system::error_code ec;
    // Straight into the tunnel's buffer: records are opened where they land.
    auto space = tunnel_.receive_space(read_size);
    const auto hop = hop_;
    auto n = co_await hop->read_some(asio::buffer(space.data(), space.size()), ec);
    if (ec && hop != hop_ && tunnel_.state() != tunnel_state::closed) continue;  // replaced: read the new one
    if (ec) {
      if (hop_dead_) continue;  // lost already (the tunnel said so): wait for the next
      hop_failed(ec == asio::error::eof ? "the hop to the middle proxy was closed"
                                        : "the hop to the middle proxy failed: " + ec.message());
      continue;  // closed: the loop ends; resuming: it waits for a new hop
    }
    // A read can complete with bytes after its hop was lost (the writer
    // failed meanwhile) or replaced: they belong to a link the tunnel has
    // started over from, and go nowhere (the tunnel voids the space too).
    if (hop != hop_ || hop_dead_) continue;
    bytes_in_ += n;
    tunnel_.received(n, clock::now());
    dispatch();  // every event now: a data event's bytes live until the next read
    if (tunnel_.state() == tunnel_state::closed) timer_.cancel();  // start the flush deadline
    // Re-arm only when the deadline came closer (e.g. the handshake began);
    // a later deadline is found by the timer loop when it fires.
    if (tunnel_.next_deadline() < timer_.expiry()) timer_.cancel();
  }
}

asio::awaitable<void> tunnel_driver::write_loop() {
  auto self = shared_from_this();
  for (;;) {
    // Events left by commands (a pause, the tunnel closed).
    dispatch();
    if (hop_dead_) {
      // The output (a resumption hop's setup) waits for the new hop.
      if (tunnel_.state() == tunnel_state::closed) break;
      co_await writer_wake_.wait();
      continue;
    }
    // Round robin: one chunk per ready channel per turn, while the hop keeps up.
    while (tunnel_.output().size() < output_limit && !ready_.empty() && tunnel_.state() == tunnel_state::up) {
      auto source = std::move(ready_.front());
      ready_.pop_front();
      source->produce(tunnel_);
    }
    if (tunnel_.output().empty()) {
      if (tunnel_.state() == tunnel_state::closed) break;
      co_await writer_wake_.wait();
      continue;
    }
    // Swap buffers: the tunnel keeps appending while this one is written,
    // and both keep their capacity, so steady state allocates nothing.
    std::swap(write_buf_, tunnel_.output());
    boost::system::error_code ec;
    const auto hop = hop_;
    co_await hop->write(asio::buffer(write_buf_), ec);
    if (!ec) bytes_out_ += write_buf_.size();
    write_buf_.clear();
    output_drained_.notify();
    if (ec && hop != hop_ && tunnel_.state() != tunnel_state::closed) continue;  // replaced: write on the new one
    if (ec) {
      if (!hop_dead_) hop_failed("writing to the middle proxy failed: " + ec.message());
      if (tunnel_.state() == tunnel_state::closed) break;
      continue;  // resuming: the next hop gets the output
    }
  }
  hop_->close();
  writer_finished_ = true;
  output_drained_.notify();
  timer_.cancel();
}

asio::awaitable<void> tunnel_driver::timer_loop() {
  auto self = shared_from_this();
  while (tunnel_.state() != tunnel_state::closed) {
    timer_.expires_at(tunnel_.next_deadline());
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (tunnel_.state() == tunnel_state::closed) break;
    if (!ec) {
      tunnel_.on_timer(clock::now());
      dispatch();
    }
  }
  // Closed: the writer flushes the last bytes (ERROR, close_notify), but a
  // hop that does not drain must not keep this tunnel (and its reconnect)
  // waiting, so cut it after the grace time.
  // Other paths cancel the timer to wake the loop above; here a cancel only
  // means "look again": the writer's end, or the grace really passing, ends
  // the wait (a cancel once cut the flush short, and the peer lost the
  // ERROR that says the tunnel ended, not its hop).
  const auto deadline = clock::now() + flush_grace;
  while (!writer_finished_ && clock::now() < deadline) {
    timer_.expires_at(deadline);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!writer_finished_) hop_->close();  // aborts the pending read and write
}

}  // namespace lstp::asio_edge
