#include "transport/hop_acceptor.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <optional>
#include <span>

#include "runtime/watchdog.hpp"
#include "transport/tls_hop.hpp"
#include "transport/upgrade_sniffer.hpp"
#include "transport/websocket_hop.hpp"

namespace transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

first_byte_kind classify_first_byte(std::uint8_t b) {
  // COMMON_UNIQUE_INFO, or ACCESS before it (PROTOCOL.md 3.6).
  if (b == 0x01 || b == 0x04) return first_byte_kind::lstp;
  if (b == 0x16) return first_byte_kind::tls;
  if (b >= 'A' && b <= 'Z') return first_byte_kind::http;
  return first_byte_kind::unknown;
}

namespace {

// Answers a request that is not a hop the way any web server would, and
// closes: a browser or a scanner sees a small web server, not a hang.
template <class Stream>
asio::awaitable<void> answer_plain(Stream& s, http::status status, unsigned version) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "lstp/" LSTP_VERSION);
  res.set(http::field::content_type, "text/plain");
  res.keep_alive(false);
  res.body() = std::string(http::obsolete_reason(status)) + "\n";
  res.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(s, res, asio::redirect_error(asio::use_awaitable, ec));
}

// Reads one HTTP request (its first bytes already taken) and returns it when
// it is a WebSocket upgrade on our path; otherwise answers it and returns
// nothing. What the bytes are is upgrade_sniffer's call (sans-I/O, fuzzed).
// A request of the `http` carrier is left to its server: `poll_raw` gets
// the bytes read so far, and nothing is answered here.
template <class Stream>
asio::awaitable<std::optional<http_request>> read_upgrade(Stream& stream, std::vector<std::uint8_t> first,
                                                          const acceptor_options& options, std::string& why,
                                                          std::optional<std::vector<std::uint8_t>>* poll_raw = nullptr) {
  upgrade_sniffer sniffer(options.websocket_path);
  auto verdict = sniffer.feed(first);
  std::array<std::uint8_t, 4096> more{};
  while (verdict == upgrade_sniffer::verdict::need_more) {
    boost::system::error_code ec;
    const auto n =
        co_await stream.async_read_some(asio::buffer(more), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      why = ec == asio::error::operation_aborted ? "no complete HTTP request in time"
                                                 : "not a valid HTTP request (" + ec.message() + ")";
      co_return std::nullopt;
    }
    verdict = sniffer.feed(std::span<const std::uint8_t>(more.data(), n));
  }
  why = sniffer.why();
  switch (verdict) {
    case upgrade_sniffer::verdict::upgrade: co_return sniffer.take_request();
    case upgrade_sniffer::verdict::poll_request:
      if (poll_raw && options.poll_handoff) {
        *poll_raw = sniffer.take_raw();
        co_return std::nullopt;
      }
      why = "an http carrier request, but that carrier is not served here (inside TLS, or not set up), answered 404";
      co_await answer_plain(stream, http::status::not_found, sniffer.version());
      break;
    case upgrade_sniffer::verdict::web_request:
      co_await answer_plain(stream, http::status::not_found, sniffer.version());
      break;
    case upgrade_sniffer::verdict::bad_request:
    case upgrade_sniffer::verdict::early_data:
      co_await answer_plain(stream, http::status::bad_request, sniffer.version());
      break;
    case upgrade_sniffer::verdict::need_more: break;
  }
  co_return std::nullopt;
}

asio::awaitable<hop_ptr> finish_websocket(std::unique_ptr<websocket_hop_base> hop, const http_request& req,
                                          std::chrono::steady_clock::time_point deadline, std::string& why) {
  boost::system::error_code ec;
  {
    runtime::watchdog limit(*hop, deadline - std::chrono::steady_clock::now());
    co_await hop->accept(req, ec);
  }
  if (ec) {
    why = ec == asio::error::operation_aborted ? std::string("no WebSocket handshake in time")
                                               : "WebSocket handshake failed: " + ec.message();
    co_return nullptr;
  }
  co_return hop;
}

// Inside TLS: raw LSTP or WebSocket again.
asio::awaitable<hop_ptr> accept_inside_tls(std::unique_ptr<tls_hop_base> tls, const acceptor_options& options,
                                           std::chrono::steady_clock::time_point deadline, std::string& why) {
  boost::system::error_code ec;
  std::vector<std::uint8_t> first(512);
  std::size_t n = 0;
  {
    runtime::watchdog limit(*tls, deadline - std::chrono::steady_clock::now());
    co_await tls->handshake(ec);
    if (ec) {
      why = ec == asio::error::operation_aborted ? std::string("no complete TLS handshake in time")
            : "TLS handshake failed: " + (tls->failure().empty() ? ec.message() : tls->failure());
      co_return nullptr;
    }
    n = co_await tls->read_some(asio::buffer(first), ec);
  }
  if (ec) {
    why = ec == asio::error::operation_aborted ? std::string("sent nothing inside TLS in time")
                                               : "sent nothing inside TLS (" + ec.message() + ")";
    co_return nullptr;
  }
  first.resize(n);
  switch (classify_first_byte(first[0])) {
    case first_byte_kind::lstp: co_return with_prefix(std::move(tls), std::move(first));
    case first_byte_kind::http: {
      std::optional<http_request> req;
      {
        runtime::watchdog limit(*tls, deadline - std::chrono::steady_clock::now());
        req = co_await read_upgrade(tls->stream(), std::move(first), options, why);
      }
      if (!req) co_return nullptr;
      co_return co_await finish_websocket(make_websocket_hop(std::move(tls)), *req, deadline, why);
    }
    case first_byte_kind::tls:
    case first_byte_kind::unknown: break;
  }
  why = "not LSTP or HTTP inside TLS (first byte " + std::to_string(first[0]) + ")";
  co_return nullptr;
}

}  // namespace

asio::awaitable<hop_ptr> accept_hop(asio::ip::tcp::socket socket, const acceptor_options& options,
                                    std::chrono::steady_clock::duration timeout, std::string& why) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::uint8_t> first(512);
  boost::system::error_code ec;
  std::size_t n = 0;
  {
    runtime::watchdog limit(socket, timeout);
    n = co_await socket.async_read_some(asio::buffer(first), asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    why = ec == asio::error::operation_aborted ? "sent nothing in time"
          : ec == asio::error::eof             ? "closed without sending anything"
                                               : ec.message();
    co_return nullptr;
  }
  first.resize(n);
  switch (classify_first_byte(first[0])) {
    case first_byte_kind::lstp: co_return make_tcp_hop(std::move(socket), std::move(first));
    case first_byte_kind::http: {
      std::optional<http_request> req;
      std::optional<std::vector<std::uint8_t>> poll_raw;
      {
        runtime::watchdog limit(socket, deadline - std::chrono::steady_clock::now());
        req = co_await read_upgrade(socket, std::move(first), options, why, &poll_raw);
      }
      if (poll_raw) {
        why.clear();
        options.poll_handoff(std::move(socket), std::move(*poll_raw));
        co_return nullptr;
      }
      if (!req) co_return nullptr;
      co_return co_await finish_websocket(make_websocket_hop(std::move(socket)), *req, deadline, why);
    }
    case first_byte_kind::tls:
      if (!options.tls) {
        why = "a TLS hop, but TLS hops are not set up here";
        co_return nullptr;
      }
      co_return co_await accept_inside_tls(make_tls_server_hop(std::move(socket), options.tls, std::move(first)),
                                           options, deadline, why);
    case first_byte_kind::unknown: break;
  }
  why = "not LSTP, TLS or HTTP (first byte " + std::to_string(first[0]) + ")";
  co_return nullptr;
}

}  // namespace transport
