// The server side of a CONNECT: the policy check, the name resolved here
// (inside the far network), every address checked, the connect with its
// deadline, and the channel that takes the socket.
#include "endproxy/shared/end_tunnel.hpp"
#include "endproxy/shared/tunnel_stats.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/shared/end_channel.hpp"
#include "runtime/log.hpp"
#include "runtime/tcp_connect.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;

namespace {
constexpr std::string_view component = "end";
}

policy::verdict end_tunnel::permits(const asio::ip::address& a, std::uint16_t port,
                                    std::optional<std::string_view> name) const {
  if (a.is_v6()) {
    // IPv4-mapped and other embedded IPv4 addresses: the policy unwraps them.
    const auto b = a.to_v6().to_bytes();
    return policy_.check(name, true, b.data(), port);
  }
  const auto b = a.to_v4().to_bytes();
  return policy_.check(name, false, b.data(), port);
}

void end_tunnel::refuse(std::uint32_t id, const std::string& label, const std::string& what, const std::string& why) {
  log_info(component, label, ": refused by policy (", why, ")");
  if (stats_) stats_->count_open("not_allowed", std::chrono::steady_clock::duration::zero());
  if (closed_ || !proto().channel_exists(id)) return;
  proto().reject_channel(id, {lstp::wire_error::not_allowed, "the server end's policy refuses " + what + ": " + why});
}

asio::awaitable<void> end_tunnel::connect_destination(std::uint32_t id, lstp::connection_request request) {
  auto self = shared_from_this();
  auto ex = driver_->executor();
  auto dest = request.destination.to_string();
  const auto label = this->label(id, dest);
  const auto asked = std::chrono::steady_clock::now();
  const auto literal = literal_endpoint(request.destination);
  // Refused names are not even resolved.
  if (!literal) {
    if (auto v = policy_.check_name(request.destination.host, request.destination.port); v.decided && !v.allowed) {
      refuse(id, label, dest, v.why);
      co_return;
    }
  }
  // Names are resolved here, inside the far network: never at the client
  // end. Every address is checked, with the name it came from.
  const std::optional<std::string_view> name =
      literal ? std::nullopt : std::optional<std::string_view>(request.destination.host);
  const auto check = [&](const tcp::endpoint& e) -> std::optional<std::string> {
    auto v = permits(e.address(), e.port(), name);
    if (v.allowed) return std::nullopt;
    return literal ? v.why : e.address().to_string() + ": " + v.why;
  };
  const auto host = literal ? literal->address().to_string() : request.destination.host;
  auto r = co_await runtime::tcp_connect(ex, host, request.destination.port, cfg_.limit.connect_timeout, check);
  if (r.result == runtime::tcp_connect_result::outcome::refused) {
    refuse(id, label, dest, r.refusal);
    co_return;
  }
  const bool timed_out = r.timed_out;
  const auto ec = r.error;
  if (closed_) co_return;
  if (!proto().channel_exists(id)) {
    log_info(component, label, ": the peer gave up before the connection was made");
    co_return;
  }
  if (ec || timed_out) {
    auto code = connect_error_code(ec, timed_out);
    auto reason = "connect to " + dest + " failed: " + (timed_out ? std::string("timed out") : ec.message());
    log_info(component, label, ": ", reason);
    if (stats_) stats_->count_open(lstp::to_string(code), std::chrono::steady_clock::now() - asked);
    proto().reject_channel(id, {code, reason});
    co_return;
  }
  boost::system::error_code local_ec;
  auto local = r.socket->local_endpoint(local_ec);
  log_info(component, label, ": connected from ", local);
  if (stats_) stats_->count_open("ok", std::chrono::steady_clock::now() - asked);
  auto ch = std::make_shared<end_channel>(shared_from_this(), id, std::move(*r.socket), label,
                                          channel_facts{"CONNECT", dest});
  channels_[id] = ch;
  proto().accept_channel(id, to_lstp(local));
}

}  // namespace endproxy
