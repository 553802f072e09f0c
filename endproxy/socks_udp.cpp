#include "endproxy/socks_udp.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "endproxy/addresses.hpp"
#include "endproxy/end_tunnel.hpp"
#include "runtime/log.hpp"
#include "socks/socks5.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using runtime::log_info;

namespace {
constexpr std::string_view component = "socks";

class socks_udp final : public datagram_channel, public std::enable_shared_from_this<socks_udp> {
 public:
  socks_udp(std::shared_ptr<end_tunnel> tunnel, std::uint32_t id, tcp::socket control, udp::socket relay,
            udp::endpoint client, std::string label, std::shared_ptr<void> slot)
      : tunnel_(std::move(tunnel)), id_(id), control_(std::move(control)), relay_(std::move(relay)),
        client_(client), label_(std::move(label)), slot_(std::move(slot)), buf_(65536 + 512) {}

  void start() {
    auto ex = relay_.get_executor();
    asio::co_spawn(ex, watch_control(shared_from_this()), asio::detached);
    asio::co_spawn(ex, from_app(shared_from_this()), asio::detached);
  }

  // A datagram from the far side: to the app, behind a SOCKS UDP header.
  void deliver(lstp::byte_view payload) override {
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

  void set_paused(bool) override {}  // send_datagram drops while paused

  void abort(std::string_view why) override { end(why, false); }

 private:
  void end(std::string_view why, bool free_channel) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    relay_.close(ignored);
    control_.close(ignored);
    if (free_channel) {
      tunnel_->forget_datagrams(id_);
      if (tunnel_->proto().channel_exists(id_)) {
        tunnel_->proto().free_channel(id_, {lstp::wire_error::ok, ""});
        tunnel_->driver().wake();
      }
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
      if (ec) co_return self->end("the app closed its control connection", true);
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
        co_return self->end("UDP receive failed: " + ec.message(), true);
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
      if (self->tunnel_->send_datagram(self->id_, to_lstp(parsed.value.dst),
                                       lstp::byte_view(parsed.value.data.data(), parsed.value.data.size())))
        ++self->sent_;
      else
        ++self->dropped_;
    }
  }

  std::shared_ptr<end_tunnel> tunnel_;
  std::uint32_t id_;
  tcp::socket control_;
  udp::socket relay_;
  udp::endpoint client_;
  std::string label_;
  std::shared_ptr<void> slot_;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> out_;
  std::uint64_t sent_ = 0, back_ = 0, dropped_ = 0;
  bool closed_ = false;
};
}  // namespace

void start_socks_udp(std::shared_ptr<end_tunnel> tunnel, std::uint32_t id, tcp::socket control, udp::socket relay,
                     udp::endpoint client, std::string label, std::shared_ptr<void> slot) {
  auto a = std::make_shared<socks_udp>(tunnel, id, std::move(control), std::move(relay), client, std::move(label),
                                       std::move(slot));
  tunnel->attach_datagrams(id, a);
  a->start();
}

}  // namespace endproxy
