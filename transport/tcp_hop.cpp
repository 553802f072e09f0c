#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>

#include "transport/hop_socket.hpp"
#include "transport/hop_stream.hpp"

namespace transport {

namespace asio = boost::asio;

namespace {

// Bytes taken from a connection before the hop was made (sniffing, a
// proxy's over-read), handed out before anything is read from it again.
class pending_bytes {
 public:
  explicit pending_bytes(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  bool empty() const { return taken_ == bytes_.size(); }
  std::size_t take(asio::mutable_buffer buf) {
    const auto n = std::min(buf.size(), bytes_.size() - taken_);
    std::memcpy(buf.data(), bytes_.data() + taken_, n);
    taken_ += n;
    if (empty()) {
      bytes_ = {};
      taken_ = 0;
    }
    return n;
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t taken_ = 0;
};

// Plain TCP. Keeps its own pending bytes rather than sitting under a
// prefixed_hop: every raw hop at a middle has some (the sniffed first
// bytes), and a second layer would cost a coroutine per read for the life
// of the hop.
class tcp_hop final : public hop_stream {
 public:
  tcp_hop(asio::ip::tcp::socket s, std::vector<std::uint8_t> already_read)
      : socket_(std::move(s)), pending_(std::move(already_read)) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    if (!pending_.empty()) co_return pending_.take(buf);
    co_return co_await socket_.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    co_await asio::async_write(socket_, buf, asio::redirect_error(asio::use_awaitable, ec));
  }

  void shutdown_send() override {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

  void close() override {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  std::string kind() const override { return "tcp"; }
  asio::any_io_executor get_executor() override { return socket_.get_executor(); }
  void cancel(boost::system::error_code& ec) override { socket_.cancel(ec); }
  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    ec = {};
    if (!pending_.empty()) co_return;
    co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
  }
  void tune_socket() override { configure_hop_socket(socket_); }
  asio::ip::tcp::socket* plain_socket() override { return pending_.empty() ? &socket_ : nullptr; }

 private:
  asio::ip::tcp::socket socket_;
  pending_bytes pending_;
};

// Any other hop (TLS) with bytes already taken from it put back in front.
class prefixed_hop final : public hop_stream {
 public:
  prefixed_hop(hop_ptr inner, std::vector<std::uint8_t> already_read)
      : inner_(std::move(inner)), pending_(std::move(already_read)) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    if (!pending_.empty()) co_return pending_.take(buf);
    co_return co_await inner_->read_some(buf, ec);
  }
  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    co_await inner_->write(buf, ec);
  }
  void shutdown_send() override { inner_->shutdown_send(); }
  void close() override { inner_->close(); }
  void cancel(boost::system::error_code& ec) override { inner_->cancel(ec); }
  std::string kind() const override { return inner_->kind(); }
  asio::any_io_executor get_executor() override { return inner_->get_executor(); }
  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    ec = {};
    if (!pending_.empty()) co_return;
    co_await inner_->wait_readable(ec);
  }
  void tune_socket() override { inner_->tune_socket(); }

 private:
  hop_ptr inner_;
  pending_bytes pending_;
};

}  // namespace

hop_ptr with_prefix(hop_ptr inner, std::vector<std::uint8_t> already_read) {
  if (already_read.empty()) return inner;
  return std::make_unique<prefixed_hop>(std::move(inner), std::move(already_read));
}

hop_ptr make_tcp_hop(asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read) {
  return std::make_unique<tcp_hop>(std::move(socket), std::move(already_read));
}

}  // namespace transport
