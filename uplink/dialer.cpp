#include "uplink/dialer.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <map>

#include "transport/hop_socket.hpp"
#include "runtime/blocking_work.hpp"
#include "runtime/tcp_connect.hpp"
#include "runtime/watchdog.hpp"
#include "transport/poll_hop.hpp"
#include "transport/tls_hop.hpp"
#include "transport/websocket_hop.hpp"
#include "uplink/proxy_handshake.hpp"

namespace uplink {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::string failure(const boost::system::error_code& ec, bool timed_out) {
  return timed_out ? "timed out" : ec.message();
}

// The WebSocket handshake on `hop`, bounded by `left`: the hop, or null
// and why.
asio::awaitable<transport::hop_ptr> websocket_over(std::unique_ptr<transport::websocket_hop_base> hop, std::string host,
                                                   std::string target, std::chrono::steady_clock::duration left,
                                                   std::string& why) {
  runtime::watchdog limit(*hop, left);
  boost::system::error_code ec;
  co_await hop->handshake(std::move(host), std::move(target), ec);
  if (ec) {
    why = failure(ec, limit.fired());
    co_return nullptr;
  }
  co_return hop;
}

// GET http://middle:port/path with the upgrade headers, sent to the proxy
// (absolute-form, no CONNECT).
asio::awaitable<transport::hop_ptr> websocket_as_plain_request(asio::any_io_executor ex, const uplink::proxy& proxy,
                                                               const uplink::endpoint& middle,
                                                               const dial_options& options,
                                                               std::chrono::steady_clock::duration left,
                                                               std::string& why) {
  auto connected = co_await runtime::tcp_connect(ex, proxy.at.host, proxy.at.port, left);
  if (!connected.connected()) {
    why = "cannot connect again: " + connected.failure();
    co_return nullptr;
  }
  auto sock = std::move(*connected.socket);
  transport::configure_hop_socket(sock);
  // Made first, awaited after (no temporary inside co_await: GCC 12).
  auto shake = websocket_over(transport::make_websocket_hop(std::move(sock)), middle.to_string(),
                              "http://" + middle.to_string() + options.websocket_path, left, why);
  co_return co_await std::move(shake);
}

// A connection that leads to the middle: TCP to it, or to the way's proxy
// and through the proxy's handshake. `refused`: the proxy answered and
// would not connect (a plain-request fallback may still work).
struct opened_connection {
  std::optional<tcp::socket> socket;
  std::vector<std::uint8_t> leftover;  // bytes from the middle read with the proxy's answer
  bool refused = false;
};

asio::awaitable<opened_connection> open_connection(asio::any_io_executor ex, uplink::way way, uplink::endpoint middle,
                                                   std::chrono::steady_clock::time_point deadline, std::string& why) {
  auto left = [&] { return deadline - std::chrono::steady_clock::now(); };
  opened_connection result;
  const bool proxied = way.via == uplink::way::route::proxy && way.through;
  const uplink::endpoint& first = proxied ? way.through->at : middle;
  const std::string first_name = proxied ? "proxy " + way.through->to_string() : "middle proxy " + middle.to_string();

  auto connected = co_await runtime::tcp_connect(ex, first.host, first.port, left());
  if (!connected.connected()) {
    why = (connected.result == runtime::tcp_connect_result::outcome::resolve_failed ? "cannot resolve " : "cannot connect to ") +
          first_name + ": " + connected.failure();
    co_return result;
  }
  tcp::socket sock = std::move(*connected.socket);
  boost::system::error_code ec;
  transport::configure_hop_socket(sock);

  if (proxied) {
    // Shared with a Kerberos step on the blocking pool (compute, below).
    std::shared_ptr<proxy_handshake> hs = proxy_handshake::make(*way.through, middle.host, middle.port);
    runtime::watchdog limit(sock, left());
    std::vector<std::uint8_t> buf(4096);
    for (bool going = true; going && !ec;) {
      switch (hs->state()) {
        case proxy_handshake::status::need_more: {
          auto out = hs->take_output();
          if (!out.empty())
            co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
          auto n = co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
          if (ec == asio::error::eof) {
            ec.clear();
            hs->eof();
            break;
          }
          if (ec) break;
          hs->feed({buf.data(), n});
          break;
        }
        case proxy_handshake::status::compute:
          // A Kerberos step may wait for the KDC: not on this thread.
        {
          // Made first, awaited after (no temporary inside co_await: GCC 12).
          auto step = runtime::run_blocking([hs] { hs->compute(); });
          co_await std::move(step);
          break;
        }
        case proxy_handshake::status::reconnect: {
          // The proxy closed the connection after asking for a login: the
          // login goes on over a new one.
          sock.close(ec);
          ec.clear();
          auto again = co_await runtime::tcp_connect(ex, first.host, first.port, left());
          if (!again.connected()) {
            why = "through " + first_name + ": cannot connect again for the login: " + again.failure();
            co_return result;
          }
          sock = std::move(*again.socket);
          transport::configure_hop_socket(sock);
          hs->reconnected();
          break;
        }
        case proxy_handshake::status::done:
        case proxy_handshake::status::failed: going = false; break;
      }
    }
    if (hs->state() == proxy_handshake::status::failed) {
      why = "through " + first_name + ": " + hs->error();
      result.refused = true;
      co_return result;
    }
    if (ec) {
      why = "through " + first_name + ": " + failure(ec, limit.fired());
      co_return result;
    }
    result.leftover = std::move(hs->leftover());
  }
  result.socket = std::move(sock);
  co_return result;
}

// One connection for an http carrier lane: to the middle, to the plain
// HTTP proxy that forwards the requests, or through a SOCKS proxy.
asio::awaitable<std::optional<tcp::socket>> connect_for_requests(asio::any_io_executor ex, uplink::way way,
                                                                 uplink::endpoint middle,
                                                                 std::chrono::steady_clock::duration timeout,
                                                                 std::string& why) {
  if (way.via == uplink::way::route::proxy && way.through && way.through->kind == uplink::proxy_kind::http) {
    auto connected = co_await runtime::tcp_connect(ex, way.through->at.host, way.through->at.port, timeout);
    if (!connected.connected()) {
      why = "cannot connect to proxy " + way.through->to_string() + ": " + connected.failure();
      co_return std::nullopt;
    }
    transport::configure_hop_socket(*connected.socket);
    co_return std::move(connected.socket);
  }
  auto opened = co_await open_connection(ex, std::move(way), std::move(middle),
                                         std::chrono::steady_clock::now() + timeout, why);
  if (opened.socket && !opened.leftover.empty()) {
    why = "the proxy sent bytes before the first request";
    co_return std::nullopt;
  }
  co_return std::move(opened.socket);
}

// The http carrier (PROTOCOL.md 9.1): requests to the middle, directly or
// through a proxy (a plain HTTP proxy gets absolute-form targets: no
// CONNECT is asked of it).
asio::awaitable<transport::hop_ptr> dial_requests(asio::any_io_executor ex, const uplink::way& way,
                                                  const uplink::endpoint& middle, const dial_options& options,
                                                  std::string& why) {
  transport::poll_client_options o;
  o.host = middle.to_string();
  o.path = options.websocket_path;
  if (way.via == uplink::way::route::proxy && way.through && way.through->kind == uplink::proxy_kind::http) {
    o.target_prefix = "http://" + middle.to_string();
    // Every request carries its lane's login, once the proxy asked for one.
    auto logins = std::make_shared<std::map<unsigned, uplink::request_login>>();
    auto login_of = [logins, through = *way.through](unsigned lane) -> uplink::request_login& {
      return logins->try_emplace(lane, through).first->second;
    };
    o.authorization = [login_of](unsigned lane, std::string_view method, std::string_view target) {
      return login_of(lane).authorization(method, target);
    };
    o.challenged = [login_of](unsigned lane, const std::vector<std::string>& offered, std::string& w) {
      auto& login = login_of(lane);
      const bool again = login.challenged(offered);
      if (!again) w = login.why();
      return again;
    };
  }
  o.connect = [ex, way, middle, timeout = o.request_timeout](std::string& w) {
    return connect_for_requests(ex, way, middle, timeout, w);
  };
  auto opening = transport::open_poll_hop(ex, std::move(o), options.timeout, why);
  auto hop = co_await std::move(opening);
  if (!hop) why = "http carrier to middle proxy " + middle.to_string() + ": " + why;
  co_return hop;
}

}  // namespace

asio::awaitable<transport::hop_ptr> dial(asio::any_io_executor ex, const uplink::way& way,
                                         const uplink::endpoint& middle, const dial_options& options,
                                         std::string& why) {
  if (way.how == uplink::carrier::http) co_return co_await dial_requests(ex, way, middle, options, why);
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  auto left = [&] { return deadline - std::chrono::steady_clock::now(); };
  auto opened = co_await open_connection(ex, way, middle, deadline, why);
  if (!opened.socket) {
    // A proxy that refuses CONNECT may still pass a WebSocket upgrade as
    // an ordinary request (squid's http_upgrade_request_protocols): ask
    // it for ws://middle/path as a web client would.
    if (opened.refused && way.how == uplink::carrier::ws && way.through &&
        way.through->kind == uplink::proxy_kind::http) {
      std::string plain_why;
      auto hop = co_await websocket_as_plain_request(ex, *way.through, middle, options, left(), plain_why);
      if (hop) co_return hop;
      why += "; WebSocket as a plain request: " + plain_why;
    }
    co_return nullptr;
  }
  tcp::socket sock = std::move(*opened.socket);
  auto leftover = std::move(opened.leftover);
  boost::system::error_code ec;

  switch (way.how) {
    case uplink::carrier::tcp: co_return transport::make_tcp_hop(std::move(sock), std::move(leftover));
    case uplink::carrier::ws: {
      if (!leftover.empty()) {
        why = "the proxy sent bytes before the WebSocket handshake";
        co_return nullptr;
      }
      auto shake = websocket_over(transport::make_websocket_hop(std::move(sock)), middle.to_string(),
                                  options.websocket_path, left(), why);
      auto hop = co_await std::move(shake);
      if (!hop) why = "WebSocket handshake with middle proxy " + middle.to_string() + " failed: " + why;
      co_return hop;
    }
    case uplink::carrier::tls:
    case uplink::carrier::wss: {
      auto tls = transport::make_tls_client_hop(std::move(sock), middle.host, std::move(leftover));
      {
        runtime::watchdog limit(*tls, left());
        co_await tls->handshake(ec);
        if (ec) {
          why = "TLS handshake with middle proxy " + middle.to_string() + " failed: " +
                (limit.fired() ? std::string("timed out") : tls->failure().empty() ? ec.message() : tls->failure());
          co_return nullptr;
        }
      }
      if (way.how == uplink::carrier::tls) co_return tls;
      auto shake = websocket_over(transport::make_websocket_hop(std::move(tls)), middle.to_string(),
                                  options.websocket_path, left(), why);
      auto hop = co_await std::move(shake);
      if (!hop) why = "WebSocket handshake (inside TLS) with middle proxy " + middle.to_string() + " failed: " + why;
      co_return hop;
    }
    case uplink::carrier::http: break;  // dial_requests, above
  }
  why = "unknown carrier";
  co_return nullptr;
}

}  // namespace uplink
