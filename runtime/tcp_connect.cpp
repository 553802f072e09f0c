#include "runtime/tcp_connect.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vector>

#include "runtime/watchdog.hpp"

namespace runtime {

namespace asio = boost::asio;
using asio::ip::tcp;

asio::awaitable<tcp_connect_result> tcp_connect(asio::any_io_executor ex, std::string host, std::uint16_t port,
                                                std::chrono::steady_clock::duration timeout,
                                                address_filter refuse) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto left = [&] { return deadline - std::chrono::steady_clock::now(); };
  tcp_connect_result r;
  std::vector<tcp::endpoint> candidates;
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(host, ec);
  if (!ec) {
    candidates.emplace_back(literal, port);
  } else {
    tcp::resolver resolver(ex);
    watchdog limit(resolver, left());
    auto results = co_await resolver.async_resolve(host, std::to_string(port), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      r.result = tcp_connect_result::outcome::resolve_failed;
      r.error = ec;
      r.timed_out = limit.fired();
      co_return r;
    }
    for (auto& e : results) candidates.push_back(e.endpoint());
  }
  if (refuse) {
    // Every address is checked: a name allowed by pattern that resolves into
    // a refused network is refused (no DNS detour).
    std::vector<tcp::endpoint> allowed;
    for (auto& e : candidates) {
      if (auto why = refuse(e)) {
        if (r.refusal.empty()) r.refusal = *why;
      } else {
        allowed.push_back(e);
      }
    }
    if (allowed.empty()) {
      r.result = tcp_connect_result::outcome::refused;
      co_return r;
    }
    candidates = std::move(allowed);
  }
  tcp::socket sock(ex);
  {
    watchdog limit(sock, left());
    co_await asio::async_connect(sock, candidates, asio::redirect_error(asio::use_awaitable, ec));
    r.timed_out = limit.fired();
  }
  if (ec) {
    r.result = tcp_connect_result::outcome::connect_failed;
    r.error = ec;
    co_return r;
  }
  r.result = tcp_connect_result::outcome::connected;
  r.socket.emplace(std::move(sock));
  co_return r;
}

}  // namespace runtime
