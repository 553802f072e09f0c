#include "endproxy/shared/end_tunnel.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/shared/end_channel.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;

namespace {
constexpr std::string_view component = "end";
}

struct end_tunnel::pending_open {
  explicit pending_open(const asio::any_io_executor& ex) : done(ex) {}
  runtime::notifier done;
  bool bind = false;  // a BIND: a second reply follows the first
  bool answered = false;
  open_result result;
};

end_tunnel::end_tunnel(const config::end_config& cfg, const config::tunnel_config& tunnel, transport::hop_ptr hop,
                       lstp::tunnel_params params,
                       Botan::RandomNumberGenerator& rng, std::function<void()> on_state_change)
    : cfg_(cfg),
      tun_(tunnel),
      policy_(cfg.allow, cfg.deny),
      on_state_change_(std::move(on_state_change)),
      own_nonce_(params.self.nonce),
      resume_step_(hop->get_executor()),
      tasks_(hop->get_executor(), [this](std::string_view task, std::string_view what) {
        // The task's channel is refused or freed by its failure handler;
        // the tunnel and its other channels go on.
        runtime::log_error(component, "tunnel ", tun_.name, " ", task, ": internal error: ", what);
      }),
      channel_tasks_(hop->get_executor(), [&tunnel](std::string_view task, std::string_view what) {
        // The task's channel is reset by its failure handler (which names it).
        runtime::log_error(component, "tunnel ", tunnel.name, " ", task, ": internal error: ", what);
      }) {
  driver_ = std::make_shared<lstp::asio_edge::tunnel_driver>(std::move(hop), std::move(params), rng, *this,
                                                             "tunnel " + tun_.name);
}

end_tunnel::~end_tunnel() = default;

asio::awaitable<void> end_tunnel::run() {
  auto self = shared_from_this();
  co_await driver_->run();
}

asio::awaitable<open_result> end_tunnel::open(const lstp::connection_request& request) {
  auto self = shared_from_this();
  open_result failed;
  failed.error = {lstp::wire_error::general, "the tunnel is not up"};
  if (!up_ || closed_) co_return failed;
  // Held here until the answer, then by the caller: freed on every path
  // that drops it (the app went away, a reply failed, a coroutine ended).
  auto channel = proto().open_channel(request);
  if (!channel || closed_) {
    failed.error = {lstp::wire_error::general, "the tunnel has no room for another channel"};
    co_return failed;
  }
  const auto id = channel.id();
  auto p = std::make_shared<pending_open>(driver_->executor());
  p->bind = request.command == static_cast<std::uint8_t>(lstp::connect_command::bind);
  pending_[id] = p;
  // The far end bounds its connect; this bound only guards against a peer
  // that never answers.
  auto deadline = asio::steady_timer::clock_type::now() + cfg_.limit.connect_timeout + std::chrono::seconds(20);
  while (!p->answered) {
    bool woke = co_await p->done.wait_until(deadline);
    if (!woke && !p->answered) {
      pending_.erase(id);
      channel.reset({lstp::wire_error::timeout, "no answer to CONNECTION_REQUEST"});
      failed.error = {lstp::wire_error::timeout, "the far end did not answer in time"};
      co_return failed;
    }
  }
  p->result.id = id;
  if (p->result.accepted) p->result.channel = std::move(channel);
  co_return std::move(p->result);
}

std::vector<channel_status> end_tunnel::channel_statuses() const {
  std::vector<channel_status> out;
  out.reserve(channels_.size());
  for (auto& [id, ch] : channels_) out.push_back(ch->status());
  return out;
}

bool end_tunnel::close_channel(std::uint64_t admin_id) {
  for (auto& [id, ch] : channels_) {
    if (ch->admin_id() != admin_id) continue;
    // Held: closing it may make the tunnel forget it.
    auto keep = ch;
    keep->close_by_operator();
    return true;
  }
  return false;
}

void end_tunnel::attach(lstp::channel_handle channel, tcp::socket socket, std::string label, lstp::bytes early,
                        std::shared_ptr<void> slot, channel_facts facts) {
  const auto id = channel.id();
  if (closed_ || !proto().channel_exists(id)) {
    // The channel ended between the far end's answer and now: the app must
    // see its connection broken (RST), never a clean end of a stream that
    // did not begin.
    log_info(component, label, ": aborted: the ", closed_ ? "tunnel closed" : "channel ended", " before it began");
    boost::system::error_code ignored;
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
    return;
  }
  auto ch = std::make_shared<end_channel>(shared_from_this(), id, std::move(socket), std::move(label), std::move(facts));
  ch->hold(std::move(slot));
  ch->own(std::move(channel));
  channels_[id] = ch;
  proto().begin_service(id);
  ch->start(std::move(early));
}

void end_tunnel::forget(std::uint32_t id) { channels_.erase(id); }

lstp::bytes end_tunnel::take_buffer() {
  if (spare_buffers_.empty()) return lstp::bytes(end_channel::read_chunk);
  auto b = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return b;
}

void end_tunnel::release_buffer(lstp::bytes buffer) {
  constexpr std::size_t max_spares = 16;
  if (buffer.size() >= end_channel::read_chunk && spare_buffers_.size() < max_spares)
    spare_buffers_.push_back(std::move(buffer));
}

std::shared_ptr<end_channel> end_tunnel::find(std::uint32_t id) {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second;
}

void end_tunnel::on_up(const lstp::tunnel_info& info) {
  up_ = true;
  path_key_ = lstp::tunnel_choice_key(info.path, own_nonce_, info.peer.nonce);
  path_ = lstp::readable_path(info.path);
  up_since_ = std::chrono::system_clock::now();
  log_info(component, "tunnel ", tun_.name, " up (", info.master ? "master, TLS client" : "TLS server", ", ",
           info.cipher, "): ", lstp::format_path(lstp::readable_path(info.path)));
  if (on_state_change_) on_state_change_();
}

void end_tunnel::on_channel_request(std::uint32_t id, const lstp::connection_request& request) {
  auto self = shared_from_this();
  // A task that fails takes its channel down with it, nothing else.
  auto on_failure = [self, id] {
    if (self->closed_ || !self->proto().channel_exists(id)) return;
    self->proto().free_channel(id, {lstp::wire_error::general, "the far end failed to serve this channel"});
  };
  switch (static_cast<lstp::connect_command>(request.command)) {
    case lstp::connect_command::bind:
      tasks_.spawn(
          "channel " + std::to_string(id) + " (BIND)", [self, id, request] { return self->listen_for_peer(id, request); },
          on_failure);
      return;
    case lstp::connect_command::udp_associate: open_udp_relay(id, request); return;
    case lstp::connect_command::tcp_connect: break;
  }
  tasks_.spawn(
      "channel " + std::to_string(id) + " (connect)", [self, id, request] { return self->connect_destination(id, request); },
      on_failure);
}

void end_tunnel::on_channel_accepted(std::uint32_t id, const lstp::address& bound) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (it->second->bind) second_replies_[id] = std::make_shared<pending_open>(driver_->executor());
  it->second->answered = true;
  it->second->result.accepted = true;
  it->second->result.bound = bound;
  it->second->done.notify();
  pending_.erase(it);
}

void end_tunnel::on_bind_peer(std::uint32_t id, const lstp::address& peer) {
  auto it = second_replies_.find(id);
  if (it == second_replies_.end() || it->second->answered) return;
  it->second->answered = true;
  it->second->result.accepted = true;
  it->second->result.bound = peer;
  it->second->done.notify();
}

asio::awaitable<open_result> end_tunnel::wait_bind_peer(std::uint32_t id, tcp::socket& app) {
  auto self = shared_from_this();
  open_result failed;
  failed.id = id;
  failed.error = {lstp::wire_error::general, "the tunnel closed"};
  auto found = second_replies_.find(id);
  if (found == second_replies_.end()) co_return failed;
  auto p = found->second;
  // An app that closes while it waits takes its BIND with it. Early data
  // (readable, not EOF) stays in the socket for the channel; the far end's
  // bind_timeout still bounds the wait then.
  auto app_gone = std::make_shared<bool>(false);
  if (!p->answered) {
    app.async_wait(tcp::socket::wait_read, [p, app_gone, &app](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted || p->answered) return;
      std::array<std::uint8_t, 1> probe{};
      boost::system::error_code peek_ec;
      const auto n = app.receive(asio::buffer(probe), tcp::socket::message_peek, peek_ec);
      if (!peek_ec && n > 0) return;
      *app_gone = true;
      p->done.notify();
    });
  }
  while (!p->answered && !*app_gone) co_await p->done.wait();
  boost::system::error_code ignored;
  app.cancel(ignored);
  second_replies_.erase(id);
  if (!p->answered) {
    failed.error = {lstp::wire_error::general, "the app closed its BIND request"};
    co_return failed;
  }
  p->result.id = id;
  co_return std::move(p->result);
}

void end_tunnel::attach_datagrams(std::uint32_t id, std::shared_ptr<datagram_channel> ch, lstp::channel_handle channel) {
  if (closed_ || !proto().channel_exists(id)) return ch->abort("the tunnel closed");
  datagrams_[id] = std::move(ch);
  if (channel) datagram_handles_[id] = std::move(channel);
  proto().begin_service(id);
}

void end_tunnel::forget_datagrams(std::uint32_t id, const lstp::error_info& why) {
  datagrams_.erase(id);
  if (auto it = datagram_handles_.find(id); it != datagram_handles_.end()) {
    it->second.reset(why);
    datagram_handles_.erase(it);
  } else if (!closed_) {
    proto().free_channel(id, why);
  }
}

bool end_tunnel::send_datagram(std::uint32_t id, const lstp::address& far, lstp::byte_view data) {
  if (closed_) return false;
  // Datagrams may be lost; they are never queued behind a slow hop.
  if (proto().output().size() > lstp::asio_edge::tunnel_driver::output_limit) return false;
  return proto().send_datagram(id, far, data) == lstp::tunnel::datagram_verdict::sent;
}

void end_tunnel::on_channel_rejected(std::uint32_t id, const lstp::error_info& why) {
  if (auto second = second_replies_.find(id); second != second_replies_.end() && !second->second->answered) {
    second->second->answered = true;
    second->second->result.error = why;
    second->second->done.notify();
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  it->second->answered = true;
  it->second->result.error = why;
  it->second->done.notify();
  pending_.erase(it);
}

void end_tunnel::on_service_begin(std::uint32_t id) {
  if (auto ch = find(id)) ch->start();
}

void end_tunnel::on_data(std::uint32_t id, lstp::byte_view data) {
  if (auto ch = find(id)) return ch->deliver(data);
  // Sent or dropped at once; the tunnel counts it taken (PROTOCOL.md 5.3).
  if (auto it = datagrams_.find(id); it != datagrams_.end()) it->second->deliver(data);
}

void end_tunnel::on_peer_fin(std::uint32_t id) {
  if (auto ch = find(id)) ch->peer_fin();
}

void end_tunnel::on_pause(std::uint32_t id) {
  if (auto ch = find(id)) ch->set_paused(true);
  if (auto it = datagrams_.find(id); it != datagrams_.end()) it->second->set_paused(true);
}

void end_tunnel::on_resume(std::uint32_t id) {
  if (auto ch = find(id)) ch->set_paused(false);
  if (auto it = datagrams_.find(id); it != datagrams_.end()) it->second->set_paused(false);
}

void end_tunnel::on_channel_freed(std::uint32_t id, const lstp::error_info& why) {
  const auto text = [&] {
    return std::string("the peer ended the channel: ") + std::string(lstp::to_string(why.code)) +
           (why.reason.empty() ? "" : " (" + why.reason + ")");
  };
  if (auto ch = find(id)) ch->abort(text());
  if (auto it = datagrams_.find(id); it != datagrams_.end()) {
    auto d = it->second;
    datagrams_.erase(it);
    datagram_handles_.erase(id);
    d->abort(text());
  }
  if (auto it = listening_.find(id); it != listening_.end()) {
    boost::system::error_code ignored;
    it->second->close(ignored);
    listening_.erase(it);
    log_info("bind", label(id, "BIND"), ": stopped listening: ", text());
  }
  // A BIND opener waiting for its second reply.
  on_channel_rejected(id, why);
}

void end_tunnel::on_hop_lost(const lstp::error_info& why) {
  ++hops_lost_;
  if (!resuming_) {
    resuming_ = true;
    lost_at_ = std::chrono::steady_clock::now();
    up_ = false;  // new requests wait (within socks.timeout); open channels just pause
    log_info(component, "tunnel ", tun_.name, ": hop lost (", why.reason, "); resuming within ",
             std::chrono::duration_cast<std::chrono::seconds>(cfg_.limit.resume_window).count(), " s, ",
             channels_.size() + datagrams_.size(), " channels held");
  } else {
    runtime::log_debug(component, "tunnel ", tun_.name, ": resumption hop lost: ", why.reason);
  }
  resume_step_.notify();
  if (on_state_change_) on_state_change_();
}

void end_tunnel::on_resumed(std::uint64_t replayed) {
  resuming_ = false;
  ++resumptions_;
  path_ = lstp::readable_path(proto().info().path);
  up_ = true;
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - lost_at_).count();
  const auto& path = proto().info().path;
  std::string via = "no middle";
  if (path.size() > 2) via = "middle \"" + path[1].name + "\" (" + path[1].address + ")";
  char mib[32];
  std::snprintf(mib, sizeof mib, "%.1f", static_cast<double>(replayed) / (1024.0 * 1024.0));
  char took[32];
  std::snprintf(took, sizeof took, secs < 10 ? "%.3f" : "%.1f", secs);  // most take milliseconds
  log_info(component, "tunnel ", tun_.name, " resumed after ", took, " s via ", via,
           resuming_via_.empty() ? "" : " by " + resuming_via_, ", ", mib, " MiB replayed");
  resume_step_.notify();
  if (on_state_change_) on_state_change_();
}

void end_tunnel::on_closed(const lstp::error_info& why) {
  closed_ = true;
  was_up_ = up_ || resuming_;
  up_ = false;
  resuming_ = false;
  resume_step_.notify();
  close_reason_ = why;
  auto pending = std::move(pending_);
  for (auto& [id, p] : second_replies_) pending.emplace(id, p);
  second_replies_.clear();
  for (auto& [id, p] : pending) {
    if (p->answered) continue;  // a BIND peer that came just before
    p->answered = true;
    p->result.error = {lstp::wire_error::general, "the tunnel closed"};
    p->done.notify();
  }
  // Channels that ended both ways finish writing what they received (their
  // loops hold them); every other channel is reset.
  auto channels = std::move(channels_);
  for (auto& [id, ch] : channels) {
    if (ch->ended_both_ways())
      ch->finish_within(lstp::asio_edge::tunnel_driver::flush_grace);
    else
      ch->abort("the tunnel closed");
  }
  auto datagrams = std::move(datagrams_);
  datagram_handles_.clear();
  for (auto& [id, d] : datagrams) d->abort("the tunnel closed");
  auto listening = std::move(listening_);
  for (auto& [id, acc] : listening) {
    boost::system::error_code ignored;
    acc->close(ignored);
  }
  if (on_state_change_) on_state_change_();
}

}  // namespace endproxy
