// Fixed forwards at the client end: every connection to a forward's listener
// becomes a channel to its one destination behind the tunnel. The first
// user is X11 (seed 002): listen on 127.0.0.1:6010 (display :10) and go to
// the X server in the far network.

#include <sstream>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/client/front.hpp"
#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::string_view component = "forward";
}  // namespace

void front::open_forwards() {
  for (auto& fw : cfg_.forwards) {
    acceptors_.push_back(runtime::open_listener(io_, fw.listen.host, fw.listen.port, "forward"));
    auto& acc = *acceptors_.back();
    runtime::log_info(component, "forward listening on ", acc.local_endpoint(), " to ", fw.to.to_string(),
                      " (routed like a SOCKS request)");
    auto self = shared_from_this();
    tasks_.spawn("forward listener " + fw.listen.to_string(), [self, &acc, &fw] {
      return runtime::accept_loop(acc, component, [self, &fw](tcp::socket sock) {
        if (self->active_clients_ >= self->cfg_.limit.max_connections) {
          runtime::log_warn(component, "refusing a connection to forward ", fw.listen.to_string(), ": ",
                            self->active_clients_, " open, the limit is ", self->cfg_.limit.max_connections);
          return;
        }
        self->tasks_.spawn("forward " + fw.listen.to_string(), [self, &fw, sock = std::move(sock)]() mutable {
          return self->forward_session(std::move(sock), fw);
        });
      });
    });
  }
}

asio::awaitable<void> front::forward_session(tcp::socket sock, const config::forward& fw) {
  ++active_clients_;
  std::shared_ptr<void> slot(nullptr, [self = shared_from_this()](void*) { --self->active_clients_; });
  boost::system::error_code ec;
  std::ostringstream who;
  who << sock.remote_endpoint(ec);
  const auto dest = fw.to.to_string();
  auto routed = co_await open(to_lstp(fw.to), who.str(), component, lstp::connect_command::tcp_connect);
  if (routed.direct) {
    auto label = "direct (" + dest + ")";
    runtime::log_info(component, label, ": forwarded from ", who.str());
    co_await splice(std::move(sock), std::move(*routed.direct), label);
    co_return;
  }
  if (!routed.channel.tunnel) co_return;  // the app sees its connection close
  auto& tunnel = routed.channel.tunnel;
  auto& result = routed.channel.result;
  auto label = tunnel->label(result.id, dest);
  runtime::log_info(component, label, ": forwarded from ", who.str());
  tunnel->attach(std::move(result.channel), std::move(sock), label, {}, std::move(slot), channel_facts{"CONNECT", dest});
}

}  // namespace endproxy
