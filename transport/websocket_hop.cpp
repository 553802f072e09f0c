#include "transport/websocket_hop.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>

#include "transport/hop_socket.hpp"
#include "transport/tls_hop.hpp"

namespace transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

void decorate_client(websocket::request_type& req) {
  req.set(beast::http::field::user_agent, "lstp/" LSTP_VERSION);
}

void decorate_server(websocket::response_type& res) {
  res.set(beast::http::field::server, "lstp/" LSTP_VERSION);
}

template <class Next>
class websocket_hop final : public websocket_hop_base {
 public:
  template <class Arg>
  websocket_hop(Arg&& next, std::string kind) : ws_(std::forward<Arg>(next)), kind_(std::move(kind)) {
    ws_.binary(true);
    // Beast's 4 KiB default write buffer costs about 30% of throughput.
    ws_.write_buffer_bytes(64 * 1024);
    // The hop is a byte stream read with read_some: message size means
    // nothing, so it is not limited (memory stays bounded by the reads).
    ws_.read_message_max(0);
    ws_.auto_fragment(false);
  }

  asio::awaitable<void> handshake(std::string host, std::string path, boost::system::error_code& ec) override {
    ws_.set_option(websocket::stream_base::decorator(decorate_client));
    ec = {};
    co_await ws_.async_handshake(host, path, asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> accept(const http_request& request, boost::system::error_code& ec) override {
    ws_.set_option(websocket::stream_base::decorator(decorate_server));
    ec = {};
    co_await ws_.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    for (;;) {
      auto n = co_await ws_.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
      // A close frame from the peer is a clean end of the byte stream.
      if (ec == websocket::error::closed) ec = asio::error::eof;
      if (ec || n > 0) co_return n;
      // An empty message: nothing to deliver, keep reading.
    }
  }

  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    co_await ws_.async_write(buf, asio::redirect_error(asio::use_awaitable, ec));
  }

  void shutdown_send() override {}  // WebSocket has no half-close; LSTP carries its own

  void close() override {
    if constexpr (std::is_same_v<Next, asio::ip::tcp::socket>) {
      boost::system::error_code ignored;
      ws_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      ws_.next_layer().close(ignored);
    } else {
      ws_.next_layer().close();
    }
  }

  void cancel(boost::system::error_code& ec) override { ws_.next_layer().cancel(ec); }

  std::string kind() const override { return kind_; }

  asio::any_io_executor get_executor() override { return ws_.get_executor(); }

  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    ec = {};
    if constexpr (std::is_same_v<Next, asio::ip::tcp::socket>)
      co_await ws_.next_layer().async_wait(asio::ip::tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await ws_.next_layer().wait_readable(ec);
  }

  void tune_socket() override {
    if constexpr (std::is_same_v<Next, asio::ip::tcp::socket>)
      configure_hop_socket(ws_.next_layer());
    else
      configure_hop_socket(ws_.next_layer().socket());
  }

 private:
  websocket::stream<Next> ws_;
  std::string kind_;
};

}  // namespace

std::unique_ptr<websocket_hop_base> make_websocket_hop(asio::ip::tcp::socket socket) {
  return std::make_unique<websocket_hop<asio::ip::tcp::socket>>(std::move(socket), "websocket");
}

std::unique_ptr<websocket_hop_base> make_websocket_hop(std::unique_ptr<tls_hop_base> tls) {
  return std::make_unique<websocket_hop<tls_stream>>(std::move(tls->stream()), "tls+websocket");
}

}  // namespace transport
