#include "transport/failing_hop.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace transport {

namespace asio = boost::asio;

namespace {

class failing_hop final : public hop_stream {
 public:
  failing_hop(hop_ptr inner, std::shared_ptr<fail_count> count) : inner_(std::move(inner)), count_(std::move(count)) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    if (count_->fail(ec)) {
      co_await asio::post(inner_->get_executor(), asio::use_awaitable);
      inner_->close();
      co_return 0;
    }
    co_return co_await inner_->read_some(buf, ec);
  }
  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    if (count_->fail(ec)) {
      co_await asio::post(inner_->get_executor(), asio::use_awaitable);
      inner_->close();
      co_return;
    }
    co_await inner_->write(buf, ec);
  }
  void shutdown_send() override { inner_->shutdown_send(); }
  void close() override { inner_->close(); }
  std::string kind() const override { return inner_->kind(); }
  asio::any_io_executor get_executor() override { return inner_->get_executor(); }
  void cancel(boost::system::error_code& ec) override { inner_->cancel(ec); }
  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override { co_await inner_->wait_readable(ec); }
  void tune_socket() override { inner_->tune_socket(); }
  // No plain_socket(): bytes moved by splice would bypass the count.

 private:
  hop_ptr inner_;
  std::shared_ptr<fail_count> count_;
};

}  // namespace

hop_ptr make_failing_hop(hop_ptr inner, std::shared_ptr<fail_count> count) {
  return std::make_unique<failing_hop>(std::move(inner), std::move(count));
}

}  // namespace transport
