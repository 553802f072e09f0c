#include "endproxy/shared/end_channel.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/log.hpp"

#include <atomic>
#include <sstream>

namespace endproxy {

namespace asio = boost::asio;

namespace {
std::atomic<std::uint64_t> next_admin_id{1};
}  // namespace

end_channel::end_channel(std::shared_ptr<end_tunnel> owner, std::uint32_t id, asio::ip::tcp::socket socket,
                         std::string label, channel_facts facts)
    : owner_(std::move(owner)),
      id_(id),
      admin_id_(next_admin_id++),
      facts_(std::move(facts)),
      socket_(std::move(socket)),
      label_(std::move(label)),
      reader_wake_(socket_.get_executor()),
      writer_wake_(socket_.get_executor()),
      opened_(std::chrono::steady_clock::now()) {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  // deliver() writes straight to the socket when it can, never waiting.
  socket_.non_blocking(true, ignored);
}

void end_channel::start(lstp::bytes early) {
  if (started_ || aborted_) return;
  started_ = true;
  auto self = shared_from_this();
  if (!early.empty()) {
    // App bytes that came with the SOCKS request go first, as one chunk.
    from_local_ = std::move(early);
    from_local_len_ = from_local_.size();
    queued_ = true;
    owner_->driver().schedule(self);
  }
  // The tunnel owns its channels' tasks. They end when the channel does
  // (abort closes the socket, which ends both loops), so they need no
  // cancellation, and an idle channel saves what Asio keeps for it. A task
  // that fails ends its channel; the tunnel and its other channels go on.
  // Their names are short and fixed: a task keeps its name as long as it
  // runs, and a label per loop cost an idle channel two allocations; the
  // channel's own line names it when one fails.
  const auto failed = [self] { self->local_failure("internal error in its reader or writer"); };
  owner_->channel_tasks().spawn_uncancellable("channel reader", [self] { return self->read_loop(); }, failed);
  owner_->channel_tasks().spawn_uncancellable("channel writer", [self] { return self->write_loop(); }, failed);
}

void end_channel::finish_within(std::chrono::steady_clock::duration limit) {
  if (finished_ || aborted_) return;
  owner_->channel_tasks().spawn(label_ + " last flush", [self = shared_from_this(), limit]() -> asio::awaitable<void> {
    // Only a channel that outlives its tunnel has this timer: an idle
    // channel pays nothing for it.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    self->last_flush_ = &timer;
    timer.expires_after(limit);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    self->last_flush_ = nullptr;
    if (!self->finished_ && !ec) self->abort("its last bytes were not taken in time after the tunnel closed");
  });
}

void end_channel::deliver(lstp::byte_view data) {
  if (to_local_.empty() && writing_.empty() && !aborted_) {
    // Nothing queued and no write under way: straight to the app's socket,
    // no copy and no trip through the writer. What the socket does not
    // take now is queued; an error is left for the writer to meet.
    boost::system::error_code ec;
    const auto n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
    if (!ec && n > 0) {
      bytes_down_ += n;
      owner_->proto().consumed(id_, n, std::chrono::steady_clock::now());
      window_ = std::max(window_, owner_->proto().receive_window(id_));
      data = data.subspan(n);
    }
  }
  if (data.empty()) return;
  to_local_.insert(to_local_.end(), data.begin(), data.end());
  writer_wake_.notify();
}

void end_channel::peer_fin() {
  peer_fin_ = true;
  writer_wake_.notify();
}

void end_channel::set_paused(bool paused) {
  paused_ = paused;
  if (paused) return;
  if (from_local_len_ > 0 && !queued_ && !aborted_) {
    // Bytes read before the credit ran out go first.
    queued_ = true;
    owner_->driver().schedule(shared_from_this());
  }
  reader_wake_.notify();
}

void end_channel::abort(std::string_view why) {
  if (aborted_ || finished_) return;
  aborted_ = true;
  runtime::log_info("end", label_, ": aborted: ", why);
  // A reset, never a FIN: the app must not take a broken stream for a
  // finished one.
  boost::system::error_code ignored;
  socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
  reader_wake_.notify();
  writer_wake_.notify();
  maybe_finish();
}

void end_channel::produce(lstp::tunnel& t) {
  queued_ = false;
  if (aborted_ || !t.channel_exists(id_)) return;
  if (from_local_len_ > 0 || local_eof_) {
    const auto sent = t.send_data(id_, lstp::byte_view(from_local_.data() + from_local_at_, from_local_len_), local_eof_);
    bytes_up_ += sent;
    from_local_at_ += sent;
    from_local_len_ -= sent;
    // The rest waits for credit: set_paused(false) queues it again.
    if (from_local_len_ > 0) return;
    from_local_at_ = 0;
    if (local_eof_) fin_sent_ = true;
  }
  // Hand the buffer back: an idle channel holds no read buffer at all.
  owner_->release_buffer(std::move(from_local_));
  from_local_ = {};
  reader_wake_.notify();
  if (fin_sent_) maybe_finish();
}

asio::awaitable<void> end_channel::read_loop() {
  auto self = shared_from_this();
  bool readable = true;  // worth a read without waiting first
  for (;;) {
    // Not while bytes read earlier wait to be sent (the tunnel took part of
    // them): a read would land on them. set_paused(false) sends them first.
    while ((queued_ || paused_ || from_local_len_ > 0) && !aborted_) co_await reader_wake_.wait();
    if (aborted_ || local_eof_) break;
    boost::system::error_code ec;
    if (!readable) {
      // Wait for data before taking a buffer, so idle channels cost no buffer.
      co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (aborted_) break;
    }
    std::size_t n = 0;
    if (!ec) {
      // A plain non-blocking read: in a burst the data is usually there
      // already, and a wait per chunk would cost a reactor round trip.
      if (from_local_.size() < read_chunk) from_local_ = owner_->take_buffer();
      // No more than the channel's credit: what is read is sent at once.
      const auto room = std::min(read_chunk, owner_->proto().send_allowance(id_));
      n = socket_.read_some(asio::buffer(from_local_.data(), std::max<std::size_t>(room, 1)), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        readable = false;
        owner_->release_buffer(std::move(from_local_));
        from_local_ = {};
        continue;
      }
    }
    readable = true;
    if (ec == asio::error::eof) {
      local_eof_ = true;
      queued_ = true;
      owner_->driver().schedule(self);
      break;
    }
    if (ec) {
      local_failure("reading failed: " + ec.message());
      break;
    }
    from_local_len_ = n;
    queued_ = true;
    owner_->driver().schedule(self);
  }
}

asio::awaitable<void> end_channel::write_loop() {
  auto self = shared_from_this();
  for (;;) {
    if (aborted_) break;
    if (to_local_.empty()) {
      // Between bursts, give back what the last burst grew.
      if (writing_.capacity() > 16 * 1024) writing_ = lstp::bytes{};
      if (to_local_.capacity() > 16 * 1024) to_local_ = lstp::bytes{};
      if (peer_fin_) {
        boost::system::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        break;
      }
      co_await writer_wake_.wait();
      continue;
    }
    std::swap(to_local_, writing_);
    boost::system::error_code ec;
    co_await asio::async_write(socket_, asio::buffer(writing_), asio::redirect_error(asio::use_awaitable, ec));
    auto n = writing_.size();
    writing_.clear();
    if (aborted_) break;
    if (ec) {
      local_failure("writing failed: " + ec.message());
      break;
    }
    bytes_down_ += n;
    owner_->proto().consumed(id_, n, std::chrono::steady_clock::now());
    window_ = std::max(window_, owner_->proto().receive_window(id_));
  }
  writer_done_ = true;
  maybe_finish();
}

channel_status end_channel::status() const {
  channel_status s;
  s.id = admin_id_;
  s.channel = id_;
  boost::system::error_code ec;
  auto peer = socket_.remote_endpoint(ec);
  if (!ec) {
    std::ostringstream text;
    text << peer;
    s.local_peer = text.str();
  }
  s.facts = facts_;
  s.age_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - opened_).count();
  s.bytes_sent = bytes_up_;
  s.bytes_received = bytes_down_;
  s.credit_window = std::max(window_, owner_->proto().receive_window(id_));
  s.paused = paused_;
  return s;
}

void end_channel::close_by_operator() {
  if (aborted_ || finished_) return;
  if (owner_->proto().channel_exists(id_))
    owner_->proto().free_channel(id_, {lstp::wire_error::general, "closed by the operator"});
  abort("closed by the operator");
}

void end_channel::local_failure(const std::string& why) {
  if (aborted_) return;
  owner_->proto().free_channel(id_, {lstp::wire_error::general, "the local connection failed"});
  abort(why);
}

void end_channel::maybe_finish() {
  if (finished_) return;
  if (!aborted_ && !(fin_sent_ && writer_done_)) return;
  finished_ = true;
  if (last_flush_) last_flush_->cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - opened_).count();
  if (window_ > 0)
    runtime::log_info("end", label_, ": closed after ", secs, " s, ", bytes_up_, " bytes sent, ", bytes_down_,
                      " bytes received (credit window ", window_ / 1024, " KiB)");
  else
    runtime::log_info("end", label_, ": closed after ", secs, " s, ", bytes_up_, " bytes sent, ", bytes_down_,
                      " bytes received");
  token_.reset();
  owner_->forget(id_);  // may drop the last reference but one: `self` in the loops keeps us alive
}

}  // namespace endproxy
