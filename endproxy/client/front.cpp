#include "endproxy/client/front.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "endproxy/shared/addresses.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"
#include "runtime/tcp_connect.hpp"
#include "transport/relay_pump.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;

namespace {
std::vector<std::string> tunnel_names(const std::vector<std::shared_ptr<tunnel_keeper>>& tunnels) {
  std::vector<std::string> names;
  for (auto& t : tunnels) names.push_back(t->tunnel().name);
  return names;
}

std::string_view verb_of(lstp::connect_command c) {
  switch (c) {
    case lstp::connect_command::bind: return "BIND";
    case lstp::connect_command::udp_associate: return "UDP ASSOCIATE";
    case lstp::connect_command::tcp_connect: break;
  }
  return "CONNECT";
}
}  // namespace

front::front(asio::io_context& io, const config::end_config& cfg, std::vector<std::shared_ptr<tunnel_keeper>> tunnels)
    : io_(io),
      cfg_(cfg),
      tunnels_(std::move(tunnels)),
      routes_(tunnel_names(tunnels_), cfg.routes, cfg.default_route),
      // Apps are local: no share per source address.
      openings_(cfg.limit.max_openings, 0),
      tasks_(io.get_executor(), [](std::string_view task, std::string_view what) {
        // The task's sockets close with its frame: only that app connection ends.
        runtime::log_error("socks", task, ": internal error: ", what);
      }) {}

void front::start() {
  for (auto& ep : cfg_.socks_listen) {
    acceptors_.push_back(runtime::open_listener(io_, ep.host, ep.port, "SOCKS"));
    log_info("end", "SOCKS5 listening on ", acceptors_.back()->local_endpoint());
  }
  for (auto& acc : acceptors_) {
    tasks_.spawn("SOCKS listener", [self = shared_from_this(), acc = acc.get()] {
      return runtime::accept_loop(*acc, "socks", [self](tcp::socket sock) { self->on_socks_client(std::move(sock)); });
    });
  }
  open_forwards();
  if (tunnels_.size() > 1) {
    std::string names;
    for (auto& n : routes_.tunnels()) names += (names.empty() ? "" : ", ") + n;
    log_info("end", "routing over tunnels ", names, " (", cfg_.routes.size(), " routes; anything else: ",
             cfg_.default_route, "; host.<tunnel>.lstp names a tunnel)");
  }
}

void front::stop() {
  boost::system::error_code ignored;
  for (auto& acc : acceptors_) acc->close(ignored);
}

void front::reset() {
  stop();
  tasks_.cancel();
}

asio::awaitable<front::routed> front::open(lstp::address dest, const std::string& who, std::string_view component,
                                           lstp::connect_command command) {
  routed out;
  // An address sent as a name (SOCKS4a, or ATYP 3 "10.1.2.3") is routed,
  // and sent on, as the address it is.
  if (dest.type == lstp::address::kind::domain) dest = to_lstp(config::endpoint{dest.host, dest.port});
  const bool by_name = dest.type == lstp::address::kind::domain;
  auto d = routes_.decide(by_name ? std::optional<std::string_view>(dest.host) : std::nullopt,
                          dest.type == lstp::address::kind::ipv6, dest.ip.data(), dest.port);
  switch (d.what) {
    case routing::decision::kind::refuse:
      log_info(component, who, ": ", verb_of(command), " ", dest.to_string(), " refused: no route leads there (",
               d.why, " is refuse)");
      out.refusal = lstp::wire_error::not_allowed;
      co_return out;
    case routing::decision::kind::direct:
      if (command != lstp::connect_command::tcp_connect) {
        log_info(component, who, ": ", verb_of(command), " ", dest.to_string(), " refused: ", d.why,
                 " is direct, and direct routes carry CONNECT only");
        out.refusal = lstp::wire_error::command_not_supported;
        co_return out;
      }
      out.direct = co_await connect_direct(dest, who, component, out.refusal);
      co_return out;
    case routing::decision::kind::tunnel: break;
  }
  if (d.host) {
    // host.<tunnel>.lstp: the far end gets the host alone (an IP stays an IP).
    const config::endpoint named{*d.host, dest.port};
    dest = to_lstp(named);
  }
  if (tunnels_.size() > 1)
    runtime::log_debug(component, who, ": ", dest.to_string(), " goes through tunnel ",
                       tunnels_[d.tunnel]->tunnel().name, " (", d.why, ")");
  out.channel = co_await tunnels_[d.tunnel]->open_channel(dest, who, component, command);
  if (!out.channel.tunnel) out.refusal = out.channel.result.error.code;
  co_return out;
}

asio::awaitable<std::optional<tcp::socket>> front::connect_direct(const lstp::address& dest, const std::string& who,
                                                                  std::string_view component, lstp::wire_error& error) {
  auto ex = co_await asio::this_coro::executor;
  const auto literal = literal_endpoint(dest);
  // A named local, not a temporary in the call: GCC 12 mishandles a
  // conditional's temporary passed to a coroutine (freed twice).
  const std::string host = literal ? literal->address().to_string() : dest.host;
  auto r = co_await runtime::tcp_connect(ex, host, dest.port, cfg_.limit.connect_timeout);
  if (!r.connected()) {
    error = connect_error_code(r.error, r.timed_out);
    log_info(component, who, ": direct CONNECT ", dest.to_string(), " failed: ", r.failure());
    co_return std::nullopt;
  }
  co_return std::move(r.socket);
}

namespace {
// Both sides of a direct route, as hops, so the relay pump the middle uses
// serves here too (the kernel moves the bytes: both are plain TCP).
struct direct_route {
  direct_route(tcp::socket x, tcp::socket y, std::string l)
      : a(transport::make_tcp_hop(std::move(x))), b(transport::make_tcp_hop(std::move(y))), label(std::move(l)) {}
  transport::hop_ptr a, b;
  std::string label;
  std::uint64_t bytes[2] = {0, 0};
};
}  // namespace

asio::awaitable<void> splice(tcp::socket a, tcp::socket b, std::string label) {
  auto ex = a.get_executor();
  auto st = std::make_shared<direct_route>(std::move(a), std::move(b), std::move(label));
  // Owned here: this coroutine waits for the other direction before it ends.
  runtime::task_group other_way(ex, [st](std::string_view, std::string_view what) {
    runtime::log_error("socks", st->label, ": internal error: ", what);
    transport::reset_hop(*st->a);
    transport::reset_hop(*st->b);
  });
  other_way.spawn("copy down", [st] { return transport::relay_one_way(*st->b, *st->a, st->bytes[1]); });
  co_await transport::relay_one_way(*st->a, *st->b, st->bytes[0]);
  co_await other_way.join();
  st->a->close();
  st->b->close();
  log_info("socks", st->label, ": closed (", st->bytes[0], " bytes up, ", st->bytes[1], " down)");
}

}  // namespace endproxy
