#include "endproxy/client/socks_udp.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/shared/tunnel_keeper.hpp"
#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/log.hpp"
#include "runtime/task_group.hpp"
#include "socks/socks5.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using runtime::log_info;

namespace {
constexpr std::string_view component = "socks";
constexpr std::size_t max_queued = 16;  // datagrams held per tunnel while its channel opens
constexpr unsigned max_drops_logged = 8;

class socks_udp;

// One tunnel's UDP channel of the association, as that tunnel sees it.
class leg_channel final : public datagram_channel {
 public:
  leg_channel(std::weak_ptr<socks_udp> owner, std::size_t tunnel) : owner_(std::move(owner)), tunnel_(tunnel) {}
  void deliver(lstp::byte_view payload) override;
  void set_paused(bool) override {}  // send_datagram drops while paused
  void abort(std::string_view why) override;

 private:
  std::weak_ptr<socks_udp> owner_;
  std::size_t tunnel_;
};

class socks_udp final : public std::enable_shared_from_this<socks_udp> {
 public:
  socks_udp(udp_routing routing, tcp::socket control, udp::socket relay, udp::endpoint client, std::string label,
            std::shared_ptr<void> slot)
      : routing_(routing), control_(std::move(control)), relay_(std::move(relay)), client_(client),
        label_(std::move(label)), slot_(std::move(slot)), legs_(routing.tunnels.size()), buf_(65536 + 512),
        tasks_(relay_.get_executor(), [this](std::string_view task, std::string_view what) {
          runtime::log_error(component, label_, ": internal error in the ", task, ": ", what);
        }) {}

  void start(std::optional<udp_leg> first) {
    if (first) attach(first->tunnel, first->through, std::move(first->channel));
    auto self = shared_from_this();
    // The association ends when either task fails.
    const auto end_it = [self] { self->end("internal error"); };
    tasks_.spawn("control watch", [self] { return watch_control(self); }, end_it);
    tasks_.spawn("app receiver", [self] { return from_app(self); }, end_it);
  }

  // A datagram from the far side (any tunnel): to the app, behind a SOCKS UDP header.
  void from_tunnel(lstp::byte_view payload) {
    lstp::address source;
    lstp::byte_view data;
    std::string why;
    if (closed_ || client_.port() == 0 || !lstp::decode_datagram(payload, source, data, why)) {
      ++dropped_;
      return;
    }
    out_.clear();
    socks::write_udp_header(out_, to_socks(source));
    out_.insert(out_.end(), data.begin(), data.end());
    boost::system::error_code ec;
    relay_.send_to(asio::buffer(out_), client_, 0, ec);  // non-blocking: dropped if it cannot go now
    if (ec)
      ++dropped_;
    else
      ++back_;
  }

  // A tunnel's channel ended (its tunnel closed, or the far end freed it):
  // the next datagram for that tunnel opens a new one.
  void leg_ended(std::size_t t, std::string_view why) {
    auto& leg = legs_[t];
    if (leg.state != leg_state::open) return;
    log_info(component, label_, ": channel through tunnel ", leg.through->tunnel_name(), " ended (", why, ")");
    leg = {};
  }

 private:
  enum class leg_state { none, opening, open, refused };
  struct leg {
    leg_state state = leg_state::none;
    std::shared_ptr<end_tunnel> through;
    std::uint32_t id = 0;
    std::vector<std::pair<lstp::address, lstp::bytes>> queued;
  };

  void attach(std::size_t t, std::shared_ptr<end_tunnel> through, lstp::channel_handle channel) {
    auto& leg = legs_[t];
    leg.state = leg_state::open;
    leg.through = std::move(through);
    leg.id = channel.id();
    // The tunnel holds the handle from now on: forget_datagrams frees it.
    leg.through->attach_datagrams(leg.id, std::make_shared<leg_channel>(weak_from_this(), t), std::move(channel));
  }

  void dropped(const std::string& why) {
    ++dropped_;
    if (drops_logged_ < max_drops_logged) log_info(component, label_, ": datagram dropped: ", why);
    else if (drops_logged_ == max_drops_logged) log_info(component, label_, ": more datagrams dropped; not logging each");
    ++drops_logged_;
  }

  void route(lstp::address dst, lstp::byte_view data) {
    // An address sent as a name is routed as the address it is.
    if (dst.type == lstp::address::kind::domain) dst = to_lstp(config::endpoint{dst.host, dst.port});
    const bool by_name = dst.type == lstp::address::kind::domain;
    auto d = routing_.table.decide(by_name ? std::optional<std::string_view>(dst.host) : std::nullopt,
                                   dst.type == lstp::address::kind::ipv6, dst.ip.data(), dst.port);
    if (d.what == routing::decision::kind::refuse) return dropped("no route leads to " + dst.to_string() + " (" + d.why + ")");
    if (d.what == routing::decision::kind::direct)
      return dropped(dst.to_string() + " routes direct, and direct routes carry CONNECT only");
    if (d.host) dst = to_lstp(config::endpoint{*d.host, dst.port});
    auto& leg = legs_[d.tunnel];
    switch (leg.state) {
      case leg_state::open:
        if (leg.through->send_datagram(leg.id, dst, data))
          ++sent_;
        else
          ++dropped_;
        return;
      case leg_state::refused:
        ++dropped_;
        return;
      case leg_state::opening:
      case leg_state::none:
        if (leg.queued.size() >= max_queued) {
          ++dropped_;
          return;
        }
        leg.queued.emplace_back(dst, lstp::bytes(data.begin(), data.end()));
        if (leg.state == leg_state::none) {
          leg.state = leg_state::opening;
          tasks_.spawn("channel opener", [self = shared_from_this(), t = d.tunnel] { return open_leg(self, t); },
                       [self = shared_from_this(), t = d.tunnel] { self->legs_[t] = {}; });
        }
        return;
    }
  }

  static asio::awaitable<void> open_leg(std::shared_ptr<socks_udp> self, std::size_t t) {
    lstp::address any;  // the app's own address is not known per tunnel
    auto opened = co_await self->routing_.tunnels[t]->open_channel(any, self->label_, component,
                                                                   lstp::connect_command::udp_associate);
    auto queued = std::move(self->legs_[t].queued);
    self->legs_[t].queued.clear();
    if (self->closed_) {
      opened.result.channel.reset({lstp::wire_error::ok, ""});
      co_return;
    }
    if (!opened.tunnel) {
      // Refused by that server end (its policy), or the tunnel is down: a
      // refusal stands for this association; a tunnel down is tried again.
      const bool refused = opened.result.error.code == lstp::wire_error::not_allowed;
      self->legs_[t].state = refused ? leg_state::refused : leg_state::none;
      self->dropped_ += queued.size();
      co_return;
    }
    self->attach(t, opened.tunnel, std::move(opened.result.channel));
    for (auto& [dst, data] : queued) {
      if (opened.tunnel->send_datagram(opened.result.id, dst, data))
        ++self->sent_;
      else
        ++self->dropped_;
    }
  }

  void end(std::string_view why) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    relay_.close(ignored);
    control_.close(ignored);
    for (auto& leg : legs_) {
      if (leg.state != leg_state::open) continue;
      leg.through->forget_datagrams(leg.id, {lstp::wire_error::ok, ""});
      leg = {};
    }
    log_info(component, label_, ": UDP association ended (", why, "); datagrams out ", sent_, ", back ", back_,
             ", dropped ", dropped_);
    slot_.reset();
  }

  // RFC 1928: the association lives as long as its TCP connection.
  static asio::awaitable<void> watch_control(std::shared_ptr<socks_udp> self) {
    std::array<std::uint8_t, 512> sink{};
    for (;;) {
      boost::system::error_code ec;
      co_await self->control_.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
      if (self->closed_) co_return;
      if (ec) co_return self->end("the app closed its control connection");
    }
  }

  static asio::awaitable<void> from_app(std::shared_ptr<socks_udp> self) {
    for (;;) {
      udp::endpoint from;
      boost::system::error_code ec;
      auto n = co_await self->relay_.async_receive_from(asio::buffer(self->buf_), from,
                                                        asio::redirect_error(asio::use_awaitable, ec));
      if (self->closed_) co_return;
      if (ec) {
        if (ec == asio::error::connection_refused) continue;  // ICMP from an earlier send to the app
        co_return self->end("UDP receive failed: " + ec.message());
      }
      // Only the app that asked may use the relay.
      if (from.address() != self->client_.address() || (self->client_.port() != 0 && from.port() != self->client_.port())) {
        ++self->dropped_;
        continue;
      }
      auto parsed = socks::parse_udp_datagram(std::span<const std::uint8_t>(self->buf_.data(), n));
      // Fragments are dropped, as RFC 1928 allows a relay that does not reassemble.
      if (parsed.status != socks::parse_status::done || parsed.value.frag != 0) {
        ++self->dropped_;
        continue;
      }
      if (self->client_.port() == 0) self->client_ = from;
      self->route(to_lstp(parsed.value.dst), lstp::byte_view(parsed.value.data.data(), parsed.value.data.size()));
    }
  }

  udp_routing routing_;
  tcp::socket control_;
  udp::socket relay_;
  udp::endpoint client_;
  std::string label_;
  std::shared_ptr<void> slot_;
  std::vector<leg> legs_;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> out_;
  std::uint64_t sent_ = 0, back_ = 0, dropped_ = 0;
  unsigned drops_logged_ = 0;
  bool closed_ = false;
  runtime::task_group tasks_;  // the control watch, the app receiver, channel openers
};

void leg_channel::deliver(lstp::byte_view payload) {
  if (auto o = owner_.lock()) o->from_tunnel(payload);
}

void leg_channel::abort(std::string_view why) {
  if (auto o = owner_.lock()) o->leg_ended(tunnel_, why);
}
}  // namespace

void start_socks_udp(udp_routing routing, std::optional<udp_leg> first, tcp::socket control, udp::socket relay,
                     udp::endpoint client, std::string label, std::shared_ptr<void> slot) {
  auto a = std::make_shared<socks_udp>(routing, std::move(control), std::move(relay), client, std::move(label),
                                       std::move(slot));
  a->start(std::move(first));
}

}  // namespace endproxy
