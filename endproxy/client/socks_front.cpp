// The client end's SOCKS front (SOCKS5 with RFC 1929, SOCKS4 and SOCKS4a on
// one port): each accepted app connection is read, authenticated and turned
// into one tunnel channel.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/client/front.hpp"
#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"
#include "endproxy/client/socks_udp.hpp"
#include "socks/socks4.hpp"
#include "socks/server_session.hpp"
#include "socks/socks5.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;
using runtime::log_warn;

namespace {
constexpr std::string_view component = "socks";

socks::reply_code reply_for(lstp::wire_error e) {
  const auto code = static_cast<socks::reply_code>(lstp::to_socks_reply(e));
  // A refusal is never "succeeded", whatever code ended the channel.
  return code == socks::reply_code::succeeded ? socks::reply_code::general_failure : code;
}
}  // namespace

void front::on_socks_client(tcp::socket sock) {
  if (active_clients_ >= cfg_.limit.max_connections) {
    if (auto left_out = quiet_.allow("connection limit", std::chrono::steady_clock::now()))
      log_warn(component, "refusing a SOCKS client: ", active_clients_, " open, the limit is ",
               cfg_.limit.max_connections, " (limits.max_connections)", runtime::log_throttle::left_out_text(*left_out));
    return;
  }
  boost::system::error_code ec;
  const auto peer = sock.remote_endpoint(ec);
  if (!cfg_.socks_allow_from.empty()) {
    // socks.allow_from: a host outside these networks is closed at once.
    // An IPv4-mapped peer (a dual-stack listener) is matched as the IPv6
    // address it is: list its ::ffff:a.b.c.d network to let it in.
    const auto addr = to_lstp(peer);
    const bool v6 = addr.type == lstp::address::kind::ipv6;
    const bool allowed = !ec && std::any_of(cfg_.socks_allow_from.begin(), cfg_.socks_allow_from.end(),
                                            [&](const policy::rule& r) { return r.matches_address(v6, addr.ip.data()); });
    if (!allowed) {
      if (auto left_out = quiet_.allow("allow_from " + peer.address().to_string(), std::chrono::steady_clock::now()))
        log_warn(component, "refusing SOCKS client ", peer, ": not in socks.allow_from",
                 runtime::log_throttle::left_out_text(*left_out));
      sock.close(ec);
      return;
    }
  }
  std::ostringstream who;
  who << "SOCKS client " << peer;
  tasks_.spawn(who.str(), [self = shared_from_this(), sock = std::move(sock)]() mutable {
    return self->socks_session(std::move(sock));
  });
}

asio::awaitable<void> front::socks_session(tcp::socket sock) {
  // Counts this app connection until it closes, through the channel that
  // takes it over (limits.max_connections).
  ++active_clients_;
  // Held by the channel that takes the connection over: keeps this front alive too.
  std::shared_ptr<void> slot(nullptr, [self = shared_from_this()](void*) { --self->active_clients_; });
  boost::system::error_code ec;
  auto peer = sock.remote_endpoint(ec);
  std::ostringstream who;
  who << peer;
  // Broken or hostile clients: the first line of a kind is logged, then one
  // per ten seconds with a count, so a flood does not flood the log.
  auto note = [&](std::string_view kind, const std::string& what) {
    if (auto left_out = quiet_.allow(std::string(kind), std::chrono::steady_clock::now()))
      log_info(component, who.str(), ": ", what, runtime::log_throttle::left_out_text(*left_out));
  };
  // The greeting, login and request: the session decides, this writes and reads.
  std::vector<socks::server_session::user> users;
  for (auto& u : cfg_.socks_users) users.push_back({u.username, u.password});
  socks::server_session session(std::move(users));
  std::vector<std::uint8_t> in;  // early data after the request
  const auto flush = [&]() -> asio::awaitable<bool> {
    if (session.output().empty()) co_return true;
    boost::system::error_code wec;
    co_await asio::async_write(sock, asio::buffer(session.output()), asio::redirect_error(asio::use_awaitable, wec));
    session.output().clear();
    co_return !wec;
  };
  const auto refuse = [&](socks::reply_code code) -> asio::awaitable<void> {
    session.reply_failure(code);
    co_await flush();
  };

  std::uint8_t cmd = 0;
  socks::address dst;
  {
    // A client gets socks_timeout for its greeting, login and request: one
    // that sends half a message and stalls is dropped.
    runtime::watchdog deadline(sock, cfg_.limit.socks_timeout);
    // And it holds an opening slot meanwhile: when max_openings are taken,
    // the oldest opener is dropped for the newcomer (cancelling its read).
    auto opening = openings_.enter({}, [&sock] {
      boost::system::error_code ignored;
      sock.cancel(ignored);
    });
    if (openings_.evicted() > 0 && quiet_.allow("pushed out", std::chrono::steady_clock::now()))
      log_warn(component, openings_.take_evicted(), " SOCKS client(s) that had not finished their greeting were "
               "dropped for newer ones (", cfg_.limit.max_openings, " may be opening at once: limits.max_openings)");
    std::array<std::uint8_t, 1024> chunk{};
    while (session.state() == socks::server_session::status::need_more) {
      if (!co_await flush()) co_return;
      boost::system::error_code rec;
      auto n = co_await sock.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, rec));
      if (rec) {
        if (deadline.fired()) {
          switch (session.where()) {
            case socks::server_session::phase::greeting: note("slow greeting", "no greeting in time"); break;
            case socks::server_session::phase::login: note("slow login", "no complete login in time"); break;
            default: note("slow request", "no complete request in time"); break;
          }
        }
        co_return;
      }
      session.receive({chunk.data(), n});
    }
    if (session.state() == socks::server_session::status::failed) {
      co_await flush();
      // A refused login is worth a warning: someone tried a password.
      if (session.failure_kind() == "login refused" || session.failure_kind() == "socks4 with users")
        log_warn(component, who.str(), ": ", session.failure());
      else
        note(session.failure_kind(), session.failure());
      co_return;
    }
    cmd = session.command_byte();
    dst = session.destination();
    in = session.take_unread();
  }
  const bool v4 = session.version() == 4;
  const auto dest = dst.to_string();
  const char* version = v4 ? "SOCKS4" : "SOCKS5";
  if (!session.command_supported()) {
    log_info(component, who.str(), ": ", version, " command ", static_cast<int>(cmd), " for ", dest, " not supported");
    co_await refuse(socks::reply_code::command_not_supported);
    co_return;
  }
  const auto command = static_cast<lstp::connect_command>(cmd);
  const auto reply = [&](const lstp::address& bound) -> asio::awaitable<bool> {
    session.reply_success(to_socks(bound));
    co_return co_await flush();
  };

  if (command == lstp::connect_command::udp_associate) {
    // The relay socket next to the app comes first, so a host that cannot
    // open one never costs the far end a channel.
    asio::ip::udp::socket relay(sock.get_executor());
    const auto local = sock.local_endpoint(ec);
    if (!ec) relay.open(local.address().is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), ec);
    if (!ec) relay.bind({local.address(), 0}, ec);
    if (!ec) relay.non_blocking(true, ec);
    if (ec) {
      log_warn(component, who.str(), ": cannot open a UDP relay socket: ", ec.message());
      co_await refuse(socks::reply_code::general_failure);
      co_return;
    }
    // DST in the request is where the app will send from (RFC 1928 7): its
    // port is held to when the address is the app's own or unspecified; port
    // 0 means unknown, and the first datagram from the app's host fixes it.
    // Only the control connection's host may use the relay in any case.
    asio::ip::udp::endpoint client(peer.address(), 0);
    if (auto declared = literal_endpoint(to_lstp(dst));
        declared && (declared->address() == peer.address() || declared->address().is_unspecified()))
      client.port(declared->port());
    // Each datagram is routed on its own destination. The default route's
    // tunnel (with one tunnel: that tunnel) is asked at once, so a server
    // end that allows no UDP refuses the association itself (reply 0x02).
    std::optional<udp_leg> first;
    if (auto t = routes_.default_tunnel()) {
      auto opened = co_await tunnels_[*t]->open_channel(to_lstp(dst), who.str(), component, command);
      if (!opened.tunnel) {
        co_await refuse(reply_for(opened.result.error.code));
        co_return;
      }
      first = udp_leg{*t, opened.tunnel, std::move(opened.result.channel)};
    }
    const auto relay_at = relay.local_endpoint(ec);
    if (!co_await reply(to_lstp(tcp::endpoint(relay_at.address(), relay_at.port())))) {
      if (first) first->channel.reset({lstp::wire_error::general, "the app went away"});
      co_return;
    }
    auto label = "UDP association of " + who.str() + " (relay " + to_lstp(tcp::endpoint(relay_at.address(), relay_at.port())).to_string() + ")";
    log_info(component, label, ": ", version, " UDP ASSOCIATE ok",
             first ? ", first channel " + first->through->label(first->channel.id(), dst.to_string()) : std::string());
    start_socks_udp(udp_routing{routes_, tunnels_, shared_from_this()}, std::move(first), std::move(sock), std::move(relay), client, label,
                    std::move(slot));
    co_return;
  }

  auto routed = co_await open(to_lstp(dst), who.str(), component, command);
  if (routed.direct) {
    // A direct route: this end connected itself; no tunnel involved.
    const auto bound = routed.direct->local_endpoint(ec);
    if (!co_await reply(to_lstp(bound))) co_return;
    auto label = "direct (" + dest + ")";
    log_info(component, label, ": ", version, " CONNECT from ", who.str(), " ok, bound ", bound);
    if (!in.empty()) co_await asio::async_write(*routed.direct, asio::buffer(in), asio::redirect_error(asio::use_awaitable, ec));
    co_await splice(std::move(sock), std::move(*routed.direct), label);
    co_return;
  }
  if (!routed.channel.tunnel) {
    co_await refuse(reply_for(routed.refusal));
    co_return;
  }
  auto& tunnel = routed.channel.tunnel;
  auto& result = routed.channel.result;
  // Every path that does not attach the channel frees it (dropping the
  // handle would too, with a vaguer reason).
  const auto give_up = [&](const std::string& why) { result.channel.reset({lstp::wire_error::general, why}); };
  const char* verb = command == lstp::connect_command::bind            ? "BIND"
                     : command == lstp::connect_command::udp_associate ? "UDP ASSOCIATE"
                                                                       : "CONNECT";
  auto label = tunnel->label(result.id, dest);

  // CONNECT: the one reply. BIND: the first (where the far end listens).
  if (!co_await reply(result.bound)) {
    tunnel->drop_second_reply(result.id);
    co_return give_up("the app went away");
  }
  log_info(component, label, ": ", version, " ", verb, " from ", who.str(), " ok, bound ", result.bound.to_string());
  if (command == lstp::connect_command::bind) {
    // The second reply: the peer that connected over there, or the failure.
    auto peer_result = co_await tunnel->wait_bind_peer(result.id, sock);
    if (!peer_result.accepted) {
      log_info(component, label, ": BIND ended without a peer: ", lstp::to_string(peer_result.error.code),
               peer_result.error.reason.empty() ? "" : ": " + peer_result.error.reason);
      give_up(peer_result.error.reason);
      co_await refuse(reply_for(peer_result.error.code));
      co_return;
    }
    if (!co_await reply(peer_result.bound)) co_return give_up("the app went away");
    log_info(component, label, ": BIND peer ", peer_result.bound.to_string(), " connected");
  }
  tunnel->attach(std::move(result.channel), std::move(sock), label, std::move(in), std::move(slot),
                 channel_facts{verb, dest});
}

}  // namespace endproxy
