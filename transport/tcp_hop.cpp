#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>

#include "transport/hop_stream.hpp"

namespace transport {

namespace asio = boost::asio;

namespace {

class tcp_hop final : public hop_stream {
 public:
  explicit tcp_hop(asio::ip::tcp::socket s) : socket_(std::move(s)) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
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
  asio::ip::tcp::socket& tcp() override { return socket_; }

 private:
  asio::ip::tcp::socket socket_;
};

// Hands out the bytes taken before (sniffing, a proxy's over-read) first.
class prefixed_hop final : public hop_stream {
 public:
  prefixed_hop(hop_ptr inner, std::vector<std::uint8_t> already_read)
      : inner_(std::move(inner)), pending_(std::move(already_read)) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    if (taken_ < pending_.size()) {
      auto n = std::min(buf.size(), pending_.size() - taken_);
      std::memcpy(buf.data(), pending_.data() + taken_, n);
      taken_ += n;
      if (taken_ == pending_.size()) {
        pending_ = {};
        taken_ = 0;
      }
      co_return n;
    }
    co_return co_await inner_->read_some(buf, ec);
  }
  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    co_await inner_->write(buf, ec);
  }
  void shutdown_send() override { inner_->shutdown_send(); }
  void close() override { inner_->close(); }
  void cancel(boost::system::error_code& ec) override { inner_->cancel(ec); }
  std::string kind() const override { return inner_->kind(); }
  asio::ip::tcp::socket& tcp() override { return inner_->tcp(); }

 private:
  hop_ptr inner_;
  std::vector<std::uint8_t> pending_;
  std::size_t taken_ = 0;
};

}  // namespace

hop_ptr with_prefix(hop_ptr inner, std::vector<std::uint8_t> already_read) {
  if (already_read.empty()) return inner;
  return std::make_unique<prefixed_hop>(std::move(inner), std::move(already_read));
}

hop_ptr make_tcp_hop(asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read) {
  return with_prefix(std::make_unique<tcp_hop>(std::move(socket)), std::move(already_read));
}

}  // namespace transport
