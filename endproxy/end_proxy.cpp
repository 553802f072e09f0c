#include "endproxy/end_proxy.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "endproxy/end_tunnel.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;
using runtime::log_warn;

namespace {
constexpr std::string_view component = "end";

lstp::end_role wire_role(config::end_role r) {
  switch (r) {
    case config::end_role::client: return lstp::end_role::client;
    case config::end_role::server: return lstp::end_role::server;
    case config::end_role::both: return lstp::end_role::both;
  }
  return lstp::end_role::both;
}
}  // namespace

end_proxy::end_proxy(asio::io_context& io, config::end_config cfg)
    : io_(io), cfg_(std::move(cfg)), tunnel_changed_(io), retry_timer_(io) {
  tunnel_changed_.expires_at(asio::steady_timer::time_point::max());
}

end_proxy::~end_proxy() = default;

void end_proxy::start() {
  // Slow on purpose (PBKDF2): once per process.
  keys_ = lstp::derive_tunnel_keys(cfg_.tunnel_name, cfg_.secret);
  log_info(component, "\"", cfg_.name, "\" (", (cfg_.role == config::end_role::client   ? "client end"
                                                : cfg_.role == config::end_role::server ? "server end"
                                                                                        : "client and server end"),
           "), tunnel ", cfg_.tunnel_name, " (id ", lstp::short_id(keys_.pairing_id), ", secret from ", cfg_.secret_source,
           "), middle proxy ", cfg_.middle.to_string());
  for (auto& ep : cfg_.socks_listen) {
    acceptors_.push_back(runtime::open_listener(io_, ep.host, ep.port, "SOCKS"));
    log_info(component, "SOCKS5 listening on ", acceptors_.back()->local_endpoint());
  }
  for (auto& acc : acceptors_) {
    asio::co_spawn(io_, runtime::accept_loop(*acc, "socks", [this](tcp::socket sock) { on_socks_client(std::move(sock)); }),
                   asio::detached);
  }
  asio::co_spawn(io_, keep_tunnel(), asio::detached);
}

void end_proxy::stop() {
  stopping_ = true;
  boost::system::error_code ignored;
  for (auto& acc : acceptors_) acc->close(ignored);
  retry_timer_.cancel();
  if (tunnel_) tunnel_->driver().shutdown("the end proxy is stopping");
}

lstp::tunnel_params end_proxy::make_params() {
  lstp::tunnel_params p;
  p.self.pairing = keys_.pairing_id;
  p.self.tag = keys_.tag;
  p.self.role = wire_role(cfg_.role);
  p.self.name = cfg_.name;
  rng_.randomize(p.self.nonce.data(), p.self.nonce.size());
  p.psk = keys_.psk;
  p.limits.high_watermark = cfg_.limit.high_watermark;
  p.limits.low_watermark = cfg_.limit.low_watermark;
  p.limits.pause_slack = cfg_.limit.pause_slack;
  p.limits.max_channels = cfg_.limit.max_channels;
  p.limits.keepalive = cfg_.limit.keepalive;
  p.limits.dead_after = cfg_.limit.dead_after;
  p.limits.handshake_timeout = cfg_.limit.handshake_timeout;
  return p;
}

// Connects to the middle proxy and runs the tunnel; whenever it ends, tries
// again after the retry interval (the next issue adds backoff and failover).
asio::awaitable<void> end_proxy::keep_tunnel() {
  std::string last_failure;
  while (!stopping_) {
    tcp::socket hop(io_);
    boost::system::error_code ec;
    {
      runtime::watchdog deadline(hop, cfg_.limit.handshake_timeout);
      tcp::resolver resolver(io_);
      auto results = co_await resolver.async_resolve(cfg_.middle.host, std::to_string(cfg_.middle.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) co_await asio::async_connect(hop, results, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (stopping_) break;
    if (ec) {
      // One line per change of cause, not one per retry.
      auto failure = "cannot reach middle proxy: " + ec.message();
      if (failure != last_failure)
        log_warn(component, "tunnel ", cfg_.tunnel_name, ": cannot reach middle proxy ", cfg_.middle.to_string(), ": ",
                 ec.message(), "; retrying every ", cfg_.retry_interval.count(), " ms");
      last_failure = failure;
    } else {
      // Quiet while the same setup refusal repeats at every retry.
      const bool repeating = !last_failure.empty() && last_failure.rfind("cannot reach", 0) != 0;
      runtime::log(repeating ? runtime::log_level::debug : runtime::log_level::info, component, "tunnel ",
                   cfg_.tunnel_name, ": connected to middle proxy ", cfg_.middle.to_string(),
                   ", waiting for the other end");
      tunnel_ = std::make_shared<end_tunnel>(cfg_, transport::make_tcp_hop(std::move(hop)), make_params(), rng_,
                                             [this] { tunnel_changed_.cancel(); });
      co_await tunnel_->run();
      // One line per closed tunnel; a setup refused again for the same
      // reason at every retry is logged once.
      auto& why = tunnel_->close_reason();
      auto text = std::string(lstp::to_string(why.code)) + ": " + why.reason;
      if (tunnel_->was_up() || text != last_failure) {
        auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - tunnel_->started()).count();
        auto level = why.code == lstp::wire_error::ok || why.code == lstp::wire_error::shutting_down
                         ? runtime::log_level::info
                         : runtime::log_level::warn;
        runtime::log(level, component, "tunnel ", cfg_.tunnel_name, " closed: ",
                     level == runtime::log_level::info ? why.reason : text, " (after ", secs, " s; ",
                     tunnel_->driver().bytes_out(), " bytes sent, ", tunnel_->driver().bytes_in(),
                     " bytes received on the hop)");
      } else {
        runtime::log_debug(component, "tunnel ", cfg_.tunnel_name, " closed again: ", text);
      }
      last_failure = tunnel_->was_up() ? std::string() : text;
      tunnel_.reset();
      tunnel_changed_.cancel();
    }
    if (stopping_) break;
    retry_timer_.expires_after(cfg_.retry_interval);
    co_await retry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<std::shared_ptr<end_tunnel>> end_proxy::wait_for_tunnel(std::chrono::steady_clock::time_point deadline) {
  while (!(tunnel_ && tunnel_->is_up())) {
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) co_return nullptr;
    // All waiters share one timer that never expires: cancelling it (when the
    // tunnel changes, or when any waiter's own deadline passes) wakes them all
    // and each re-checks.
    boost::system::error_code ec;
    runtime::watchdog limit(tunnel_changed_, deadline - std::chrono::steady_clock::now());
    co_await tunnel_changed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return tunnel_;
}

}  // namespace endproxy
