// Fixed forwards at the client end: every connection to a forward's listener
// becomes a channel to its one destination behind the tunnel. The first
// user is X11 (seed 002): listen on 127.0.0.1:6010 (display :10) and go to
// the X server in the far network.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <sstream>

#include "endproxy/addresses.hpp"
#include "endproxy/end_proxy.hpp"
#include "endproxy/end_tunnel.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::string_view component = "forward";
}  // namespace

void end_proxy::open_forwards() {
  for (auto& fw : cfg_.forwards) {
    acceptors_.push_back(runtime::open_listener(io_, fw.listen.host, fw.listen.port, "forward"));
    auto& acc = *acceptors_.back();
    runtime::log_info(component, "forward listening on ", acc.local_endpoint(), " to ", fw.to.to_string(),
                      " behind tunnel ", cfg_.tunnel_name);
    asio::co_spawn(io_,
                   runtime::accept_loop(acc, component,
                                        [this, &fw](tcp::socket sock) {
                                          if (active_clients_ >= cfg_.limit.max_connections) {
                                            runtime::log_warn(component, "refusing a connection to forward ",
                                                              fw.listen.to_string(), ": ", active_clients_,
                                                              " open, the limit is ", cfg_.limit.max_connections);
                                            return;
                                          }
                                          asio::co_spawn(io_, forward_session(std::move(sock), fw), asio::detached);
                                        }),
                   asio::detached);
  }
}

// Waits for the tunnel (up to socks.timeout) and asks the far end to connect
// to `dest`; logs a failure. Shared by the SOCKS front and the forwards.
asio::awaitable<end_proxy::opened_channel> end_proxy::open_channel(const lstp::address& dest, const std::string& who,
                                                                   std::string_view log_component,
                                                                   lstp::connect_command command) {
  const std::string_view verb = command == lstp::connect_command::bind            ? "BIND"
                                : command == lstp::connect_command::udp_associate ? "UDP ASSOCIATE"
                                                                                  : "CONNECT";
  opened_channel out;
  auto tunnel = co_await wait_for_tunnel(std::chrono::steady_clock::now() + cfg_.limit.socks_timeout);
  if (!tunnel) {
    runtime::log_warn(log_component, who, ": ", verb, " ", dest.to_string(), " refused: tunnel ", cfg_.tunnel_name,
                      " is not up");
    out.result.error = {lstp::wire_error::general, "the tunnel is not up"};
    co_return out;
  }
  lstp::connection_request req;
  req.command = static_cast<std::uint8_t>(command);
  req.destination = dest;
  out.result = co_await tunnel->open(req);
  if (!out.result.accepted) {
    runtime::log_info(log_component, who, ": ", verb, " ", dest.to_string(), " failed: ",
                      lstp::to_string(out.result.error.code),
                      out.result.error.reason.empty() ? "" : ": " + out.result.error.reason);
    co_return out;
  }
  out.tunnel = std::move(tunnel);
  co_return out;
}

asio::awaitable<void> end_proxy::forward_session(tcp::socket sock, const config::forward& fw) {
  ++active_clients_;
  std::shared_ptr<void> slot(nullptr, [this](void*) { --active_clients_; });
  boost::system::error_code ec;
  std::ostringstream who;
  who << sock.remote_endpoint(ec);
  const auto dest = fw.to.to_string();
  auto opened = co_await open_channel(to_lstp(fw.to), who.str(), component);
  if (!opened.tunnel) co_return;  // the app sees its connection close
  auto& tunnel = opened.tunnel;
  auto& result = opened.result;
  auto label = "tunnel " + cfg_.tunnel_name + " channel " + std::to_string(result.id) + " (" + dest + ")";
  runtime::log_info(component, label, ": forwarded from ", who.str());
  tunnel->attach(result.id, std::move(sock), label, {}, std::move(slot));
}

}  // namespace endproxy
