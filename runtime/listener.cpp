#include "runtime/listener.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <system_error>

#include "runtime/log.hpp"

namespace runtime {

namespace asio = boost::asio;
using asio::ip::tcp;

std::unique_ptr<tcp::acceptor> open_listener(asio::io_context& io, const std::string& host, std::uint16_t port,
                                             std::string_view what) {
  auto where = std::string(what) + " on " + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
               std::to_string(port);
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) throw std::system_error(ec, "cannot listen for " + where);
  auto endpoint = results.begin()->endpoint();
  auto acceptor = std::make_unique<tcp::acceptor>(io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::system_error(ec, "cannot listen for " + where);
  return acceptor;
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::string_view component,
                                  std::function<void(tcp::socket)> on_accept) {
  asio::steady_timer backoff(acceptor.get_executor());
  while (acceptor.is_open()) {
    boost::system::error_code ec;
    auto sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      log_warn(component, "accept failed: ", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    on_accept(std::move(sock));
  }
}

}  // namespace runtime
