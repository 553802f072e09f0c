// SOCKS BIND at the server end (PROTOCOL.md 5.2): listen inside this
// network for the one peer the app expects, tell the client end where
// (first reply), and hand the accepted connection to an ordinary channel
// (second reply).
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <set>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/shared/end_channel.hpp"
#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;

namespace {
constexpr std::string_view component = "bind";

// The address this host would send from toward `peer` (a connected UDP
// socket picks it from the routing table; nothing is sent).
std::optional<asio::ip::address> local_address_toward(asio::any_io_executor ex, const asio::ip::address& peer) {
  boost::system::error_code ec;
  asio::ip::udp::socket probe(ex);
  probe.open(peer.is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), ec);
  if (ec) return std::nullopt;
  probe.connect({peer, 9}, ec);
  if (ec) return std::nullopt;
  auto local = probe.local_endpoint(ec);
  if (ec) return std::nullopt;
  return local.address();
}

// With no expected peer: the first IPv4 address of an interface that is up
// and not loopback, so a peer elsewhere in the network can use the answer.
asio::ip::address first_lan_address() {
  asio::ip::address found = asio::ip::make_address_v4("127.0.0.1");
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return found;
  for (auto* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    found = asio::ip::address_v4(ntohl(in->sin_addr.s_addr));
    break;
  }
  ::freeifaddrs(list);
  return found;
}

bool unspecified(const lstp::address& a) {
  if (a.type == lstp::address::kind::domain) return false;
  auto e = literal_endpoint(a);
  return !e || e->address().is_unspecified();
}
}  // namespace

asio::awaitable<void> end_tunnel::listen_for_peer(std::uint32_t id, lstp::connection_request request) {
  auto self = shared_from_this();
  auto ex = driver_->executor();
  const auto expected_text = request.destination.to_string();
  const auto label = this->label(id, "BIND for " + expected_text);
  boost::system::error_code ec;
  const auto fail = [&](lstp::wire_error code, const std::string& why) {
    log_info(component, label, ": ", why);
    if (closed_ || !proto().channel_exists(id)) return;
    proto().reject_channel(id, {code, why});
  };

  // The expected peer: any (0.0.0.0 / ::), one address, or a name's addresses.
  std::set<asio::ip::address> expected;
  if (request.destination.type == lstp::address::kind::domain) {
    if (auto v = policy_.check_name(request.destination.host, request.destination.port); v.decided && !v.allowed) {
      refuse(id, label, expected_text, v.why);
      co_return;
    }
    tcp::resolver resolver(ex);
    runtime::watchdog deadline(resolver, cfg_.limit.connect_timeout);
    auto results = co_await resolver.async_resolve(request.destination.host, "0",
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec || deadline.fired()) {
      fail(connect_error_code(ec, deadline.fired()), "cannot resolve " + request.destination.host + ": " +
                                                         (deadline.fired() ? std::string("timed out") : ec.message()));
      co_return;
    }
    for (auto& r : results) expected.insert(r.endpoint().address());
  } else if (!unspecified(request.destination)) {
    expected.insert(literal_endpoint(request.destination)->address());
  }
  const std::optional<std::string_view> name =
      request.destination.type == lstp::address::kind::domain ? std::optional<std::string_view>(request.destination.host)
                                                              : std::nullopt;
  if (!expected.empty()) {
    std::string refusal;
    bool any = false;
    for (auto& a : expected) {
      auto v = permits(a, request.destination.port, name);
      any = any || v.allowed;
      if (!v.allowed && refusal.empty()) refusal = a.to_string() + ": " + v.why;
    }
    if (!any) {
      refuse(id, label, expected_text, refusal);
      co_return;
    }
  } else if (policy_.allows_nothing()) {
    refuse(id, label, expected_text, "no allow rule matches");
    co_return;
  }
  if (closed_ || !proto().channel_exists(id)) co_return;

  asio::ip::address listen_ip;
  if (!cfg_.bind_address.empty()) {
    listen_ip = asio::ip::make_address(cfg_.bind_address, ec);
  } else if (!expected.empty()) {
    listen_ip = local_address_toward(ex, *expected.begin()).value_or(first_lan_address());
  } else {
    listen_ip = first_lan_address();
  }
  auto acceptor = std::make_shared<tcp::acceptor>(ex);
  tcp::endpoint listen_at(listen_ip, 0);
  acceptor->open(listen_at.protocol(), ec);
  if (!ec) acceptor->bind(listen_at, ec);
  if (!ec) acceptor->listen(1, ec);
  if (ec) {
    fail(lstp::wire_error::general, "cannot listen on " + listen_ip.to_string() + ": " + ec.message());
    co_return;
  }
  const auto bound = acceptor->local_endpoint(ec);
  listening_[id] = acceptor;
  log_info(component, label, ": listening on ", bound, " for up to ", cfg_.limit.bind_timeout.count() / 1000, " s");
  proto().accept_channel(id, to_lstp(bound));

  runtime::watchdog deadline(*acceptor, cfg_.limit.bind_timeout);
  for (;;) {
    tcp::socket peer_sock(ex);
    co_await acceptor->async_accept(peer_sock, asio::redirect_error(asio::use_awaitable, ec));
    if (closed_ || !proto().channel_exists(id) || !listening_.count(id)) co_return;  // the channel ended meanwhile
    if (ec) {
      listening_.erase(id);
      if (deadline.fired())
        fail(lstp::wire_error::timeout, "no peer connected within " + std::to_string(cfg_.limit.bind_timeout.count() / 1000) + " s");
      else
        fail(lstp::wire_error::general, "accept failed: " + ec.message());
      co_return;
    }
    auto peer = peer_sock.remote_endpoint(ec);
    if (ec) continue;
    auto peer_ip = peer.address();
    if (peer_ip.is_v6() && peer_ip.to_v6().is_v4_mapped())
      peer_ip = asio::ip::make_address_v4(asio::ip::v4_mapped, peer_ip.to_v6());
    // Someone else (a scanner, a wrong host) is turned away; the wait goes on.
    if (!expected.empty() && !expected.count(peer_ip)) {
      log_info(component, label, ": closed a connection from ", peer, ", not the expected peer");
      continue;
    }
    // Rules with ports match the port the request named, as for the check
    // above (the peer's own source port is ephemeral).
    if (auto v = permits(peer_ip, request.destination.port, name); !v.allowed) {
      log_info(component, label, ": closed a connection from ", peer, ": refused by policy (", v.why, ")");
      continue;
    }
    listening_.erase(id);
    acceptor->close(ec);
    log_info(component, label, ": peer ", peer, " connected");
    auto ch = std::make_shared<end_channel>(shared_from_this(), id, std::move(peer_sock), label,
                                          channel_facts{"BIND", request.destination.to_string()});
    channels_[id] = ch;
    proto().bind_peer(id, to_lstp(peer));
    co_return;
  }
}

}  // namespace endproxy
