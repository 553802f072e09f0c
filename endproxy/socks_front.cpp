// The client end's SOCKS front (SOCKS5 with RFC 1929, SOCKS4 and SOCKS4a on
// one port): each accepted app connection is read, authenticated and turned
// into one tunnel channel.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <botan/mem_ops.h>

#include "endproxy/addresses.hpp"
#include "endproxy/front.hpp"
#include "endproxy/end_tunnel.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"
#include "endproxy/socks_udp.hpp"
#include "socks/socks4.hpp"
#include "socks/socks5.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;
using runtime::log_warn;

namespace {
constexpr std::string_view component = "socks";

// Reads until `parse` says done or invalid. Returns the parse result; a
// read error or a closed connection gives need_more.
template <class Parse>
asio::awaitable<decltype(std::declval<Parse>()(std::span<const std::uint8_t>{}))> read_message(
    tcp::socket& s, std::vector<std::uint8_t>& buf, Parse parse) {
  std::array<std::uint8_t, 1024> chunk{};
  for (;;) {
    auto r = parse(std::span<const std::uint8_t>(buf));
    if (r.status != socks::parse_status::need_more) co_return r;
    if (buf.size() > 2048) co_return r;  // longer than any valid message: the caller refuses it
    boost::system::error_code ec;
    auto n = co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return r;
    buf.insert(buf.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

bool same_secret(const std::string& a, const std::string& b) {
  // Constant time over the configured value; the length leaks, the content not.
  if (a.size() != b.size()) return false;
  return Botan::constant_time_compare(reinterpret_cast<const std::uint8_t*>(a.data()),
                                      reinterpret_cast<const std::uint8_t*>(b.data()), a.size());
}

asio::awaitable<void> write_all(tcp::socket& s, const std::vector<std::uint8_t>& bytes) {
  boost::system::error_code ec;
  co_await asio::async_write(s, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
}

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
  std::ostringstream who;
  who << "SOCKS client " << sock.remote_endpoint(ec);
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
  std::vector<std::uint8_t> in, out;
  bool v4 = false;  // SOCKS4 or 4a: its own reply format
  auto refuse = [&](socks::reply_code code) -> asio::awaitable<void> {
    out.clear();
    if (v4)
      socks::write_socks4_reply(out, false, socks::address{});
    else
      socks::write_reply(out, code, socks::address{});
    co_await write_all(sock, out);
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
    // The first byte tells SOCKS4 from SOCKS5.
    auto first = co_await read_message(sock, in, [](std::span<const std::uint8_t> b) {
      return socks::parsed<int>{b.empty() ? socks::parse_status::need_more : socks::parse_status::done, 0, 0,
                                socks::parse_error::none};
    });
    if (first.status != socks::parse_status::done) {
      if (deadline.fired()) note("slow greeting", "no greeting in time");
      co_return;
    }
    if (in[0] == socks::socks4_version) {
      v4 = true;
      auto request = co_await read_message(sock, in, socks::parse_socks4_request);
      if (request.status != socks::parse_status::done) {
        if (request.status == socks::parse_status::invalid) {
          note("bad request", std::string("bad SOCKS4 request: ") + std::string(socks::to_string(request.error)));
          co_await refuse(socks::reply_code::general_failure);
        } else if (deadline.fired()) {
          note("slow greeting", "no complete SOCKS4 request in time");
        }
        co_return;
      }
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(request.consumed));
      if (!cfg_.socks_users.empty()) {
        // SOCKS4 carries a user id but no password: it cannot log in.
        log_warn(component, who.str(), ": SOCKS4 request refused: users are configured, and SOCKS4 has no passwords");
        co_await refuse(socks::reply_code::not_allowed);
        co_return;
      }
      cmd = request.value.cmd;
      dst = request.value.dst;
    } else {
      auto greeting = co_await read_message(sock, in, socks::parse_greeting);
      if (greeting.status != socks::parse_status::done) {
        if (greeting.status == socks::parse_status::invalid)
          note("bad greeting", std::string("bad greeting: ") + std::string(socks::to_string(greeting.error)));
        else if (deadline.fired())
          note("slow greeting", "no greeting in time");
        co_return;
      }
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(greeting.consumed));
      auto method = socks::choose_method(greeting.value, !cfg_.socks_users.empty());
      out.clear();
      socks::write_method_choice(out, method);
      co_await write_all(sock, out);
      if (method == socks::method_none_acceptable) {
        log_info(component, who.str(), ": no acceptable authentication method offered");
        co_return;
      }
      if (method == socks::method_userpass) {
        auto login = co_await read_message(sock, in, socks::parse_userpass);
        if (login.status != socks::parse_status::done) {
          if (login.status == socks::parse_status::invalid) {
            note("bad login", std::string("bad login message: ") + std::string(socks::to_string(login.error)));
            out.clear();
            socks::write_userpass_status(out, false);
            co_await write_all(sock, out);
          } else if (deadline.fired()) {
            note("slow login", "no complete login in time");
          }
          co_return;
        }
        in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(login.consumed));
        // Every user is compared, name and password both, whatever matched:
        // the time taken does not tell which part was wrong.
        bool ok = false;
        for (auto& u : cfg_.socks_users) {
          const bool name_ok = same_secret(u.username, login.value.username);
          const bool password_ok = same_secret(u.password, login.value.password);
          ok = (name_ok && password_ok) || ok;
        }
        out.clear();
        socks::write_userpass_status(out, ok);
        co_await write_all(sock, out);
        if (!ok) {
          log_warn(component, who.str(), ": login refused for user \"", login.value.username, "\"");
          co_return;
        }
      }
      auto request = co_await read_message(sock, in, socks::parse_request);
      if (request.status != socks::parse_status::done) {
        if (request.status == socks::parse_status::invalid) {
          note("bad request", std::string("bad request: ") + std::string(socks::to_string(request.error)));
          co_await refuse(request.error == socks::parse_error::bad_address_type
                              ? socks::reply_code::address_type_not_supported
                              : socks::reply_code::general_failure);
        } else if (deadline.fired()) {
          note("slow request", "no complete request in time");
        }
        co_return;
      }
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(request.consumed));
      cmd = request.value.raw_cmd;
      dst = request.value.dst;
    }
  }
  const auto dest = dst.to_string();
  const char* version = v4 ? "SOCKS4" : "SOCKS5";
  const bool known = cmd == static_cast<std::uint8_t>(socks::command::connect) ||
                     cmd == static_cast<std::uint8_t>(socks::command::bind) ||
                     (!v4 && cmd == static_cast<std::uint8_t>(socks::command::udp_associate));
  if (!known) {
    log_info(component, who.str(), ": ", version, " command ", static_cast<int>(cmd), " for ", dest, " not supported");
    co_await refuse(socks::reply_code::command_not_supported);
    co_return;
  }
  const auto command = static_cast<lstp::connect_command>(cmd);
  const auto reply = [&](const lstp::address& bound) -> asio::awaitable<bool> {
    out.clear();
    if (v4)
      socks::write_socks4_reply(out, true, to_socks(bound));
    else
      socks::write_reply(out, socks::reply_code::succeeded, to_socks(bound));
    boost::system::error_code wec;
    co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, wec));
    co_return !wec;
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
    // DST in the request is where the app will send from; 0 means unknown.
    // Only the control connection's host may use the relay in any case.
    asio::ip::udp::endpoint client(peer.address(), 0);
    if (auto declared = literal_endpoint(to_lstp(dst)); declared && declared->address() == peer.address())
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
      first = udp_leg{*t, opened.tunnel, opened.result.id};
    }
    const auto relay_at = relay.local_endpoint(ec);
    if (!co_await reply(to_lstp(tcp::endpoint(relay_at.address(), relay_at.port())))) {
      if (first) {
        first->through->proto().free_channel(first->id, {lstp::wire_error::general, "the app went away"});
        first->through->driver().wake();
      }
      co_return;
    }
    auto label = "UDP association of " + who.str() + " (relay " + to_lstp(tcp::endpoint(relay_at.address(), relay_at.port())).to_string() + ")";
    log_info(component, label, ": ", version, " UDP ASSOCIATE ok",
             first ? ", first channel " + first->through->label(first->id, dst.to_string()) : std::string());
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
  const auto give_up = [&](const char* why) {
    tunnel->proto().free_channel(result.id, {lstp::wire_error::general, why});
    tunnel->driver().wake();
  };
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
      co_await refuse(reply_for(peer_result.error.code));
      co_return;
    }
    if (!co_await reply(peer_result.bound)) co_return give_up("the app went away");
    log_info(component, label, ": BIND peer ", peer_result.bound.to_string(), " connected");
  }
  tunnel->attach(result.id, std::move(sock), label, std::move(in), std::move(slot));
}

}  // namespace endproxy
