// UDP associate at the server end (PROTOCOL.md 5.3): one UDP socket per
// association, in this network. Datagrams from the tunnel go where the
// policy allows; datagrams back are taken only from addresses this
// association sent to, like an address-restricted NAT, so the relay never
// becomes an open door into the client end.
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <set>

#include "endproxy/shared/addresses.hpp"
#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/log.hpp"
#include "runtime/task_group.hpp"
#include "runtime/watchdog.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::udp;
using runtime::log_info;

namespace {
constexpr std::string_view component = "udp";
constexpr std::size_t max_peers = 1024;          // addresses one association may talk to
constexpr std::size_t max_resolving = 16;        // names being resolved at once
constexpr unsigned max_refusals_logged = 8;      // per association: a flood of refusals is one summary

class udp_relay final : public datagram_channel, public std::enable_shared_from_this<udp_relay> {
 public:
  udp_relay(std::shared_ptr<end_tunnel> owner, std::uint32_t id, udp::socket sock, bool v6_socket, std::string label)
      : owner_(std::move(owner)), id_(id), sock_(std::move(sock)), v6_socket_(v6_socket), label_(std::move(label)),
        buf_(65536),
        tasks_(sock_.get_executor(), [this](std::string_view task, std::string_view what) {
          runtime::log_error(component, label_, ": internal error in the ", task, ": ", what);
        }) {}

  void start() {
    auto self = shared_from_this();
    // The association ends with its receiver, whatever ends it.
    tasks_.spawn("receiver", [self] { return receive_loop(self); }, [self] { self->fail("internal error"); });
  }

  void deliver(lstp::byte_view payload) override {
    lstp::address dst;
    lstp::byte_view data;
    std::string why;
    if (!lstp::decode_datagram(payload, dst, data, why)) {
      ++dropped_;
      return;
    }
    if (auto literal = literal_endpoint(dst)) return send_to(*literal, std::nullopt, data);
    if (resolving_ >= max_resolving) {
      ++dropped_;
      return;
    }
    if (auto v = owner_->policy().check_name(dst.host, dst.port); v.decided && !v.allowed) return refused(dst.to_string(), v.why);
    tasks_.spawn("resolver", [self = shared_from_this(), dst, bytes = lstp::bytes(data.begin(), data.end())]() mutable {
      return resolve_and_send(self, dst, std::move(bytes));
    });
  }

  void set_paused(bool) override {}  // send_datagram drops while paused

  void fail(const std::string& why) {
    owner_->forget_datagrams(id_, {lstp::wire_error::general, why});
    abort(why);
  }

  void abort(std::string_view why) override {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    sock_.close(ignored);
    log_info(component, label_, ": association ended (", why, "); datagrams out ", out_, ", back ", back_, ", dropped ",
             dropped_);
  }

 private:
  void refused(const std::string& dest, const std::string& why) {
    ++dropped_;
    if (refusals_logged_ < max_refusals_logged)
      log_info(component, label_, ": datagram to ", dest, " refused by policy (", why, ")");
    else if (refusals_logged_ == max_refusals_logged)
      log_info(component, label_, ": more datagrams refused by policy; not logging each");
    ++refusals_logged_;
  }

  void send_to(const asio::ip::tcp::endpoint& to, std::optional<std::string_view> name, lstp::byte_view data) {
    if (closed_) return;
    if (auto v = owner_->permits(to.address(), to.port(), name); !v.allowed) return refused(to_lstp(to).to_string(), v.why);
    udp::endpoint target(to.address(), to.port());
    if (v6_socket_ && target.address().is_v4())
      target = udp::endpoint(asio::ip::make_address_v6(asio::ip::v4_mapped, target.address().to_v4()), target.port());
    if (!v6_socket_ && target.address().is_v6()) {
      ++dropped_;
      return;
    }
    if (!peers_.count(target)) {
      if (peers_.size() >= max_peers) {
        ++dropped_;
        return;
      }
      peers_.insert(target);
    }
    boost::system::error_code ec;
    // Non-blocking: a datagram the kernel cannot take now is dropped, as UDP would.
    sock_.send_to(asio::buffer(data.data(), data.size()), target, 0, ec);
    if (ec)
      ++dropped_;
    else
      ++out_;
  }

  static asio::awaitable<void> resolve_and_send(std::shared_ptr<udp_relay> self, lstp::address dst, lstp::bytes data) {
    ++self->resolving_;
    udp::resolver resolver(self->sock_.get_executor());
    boost::system::error_code ec;
    udp::resolver::results_type results;
    {
      runtime::watchdog deadline(resolver, self->owner_->cfg().limit.connect_timeout);
      results = co_await resolver.async_resolve(dst.host, std::to_string(dst.port), asio::redirect_error(asio::use_awaitable, ec));
    }
    --self->resolving_;
    if (ec || results.empty()) {
      ++self->dropped_;
      co_return;
    }
    // The first address the policy allows (every one is checked: a name
    // allowed by pattern must not lead into a denied network).
    std::string first_refusal;
    for (auto& r : results) {
      asio::ip::tcp::endpoint e(r.endpoint().address(), r.endpoint().port());
      auto v = self->owner_->permits(e.address(), e.port(), std::string_view(dst.host));
      if (v.allowed) co_return self->send_to(e, std::string_view(dst.host), data);
      if (first_refusal.empty()) first_refusal = e.address().to_string() + ": " + v.why;
    }
    self->refused(dst.to_string(), first_refusal);
  }

  static asio::awaitable<void> receive_loop(std::shared_ptr<udp_relay> self) {
    for (;;) {
      udp::endpoint from;
      boost::system::error_code ec;
      auto n = co_await self->sock_.async_receive_from(asio::buffer(self->buf_), from,
                                                       asio::redirect_error(asio::use_awaitable, ec));
      if (self->closed_) co_return;
      if (ec) {
        // ICMP errors from earlier sends surface here on Linux: not fatal.
        if (ec == asio::error::connection_refused || ec == asio::error::host_unreachable ||
            ec == asio::error::network_unreachable)
          continue;
        // Anything else: the association cannot go on; the app is told by
        // the end of its channel (its SOCKS control connection closes).
        co_return self->fail("UDP receive failed: " + ec.message());
      }
      if (!self->peers_.count(from)) {
        ++self->dropped_;
        continue;
      }
      asio::ip::tcp::endpoint source(from.address(), from.port());
      if (self->owner_->send_datagram(self->id_, to_lstp(source), lstp::byte_view(self->buf_.data(), n)))
        ++self->back_;
      else
        ++self->dropped_;
    }
  }

 private:
  std::shared_ptr<end_tunnel> owner_;
  std::uint32_t id_;
  udp::socket sock_;
  bool v6_socket_;  // dual-stack: IPv4 peers appear as v4-mapped addresses
  std::string label_;
  lstp::bytes buf_;
  std::set<udp::endpoint> peers_;
  std::size_t resolving_ = 0;
  unsigned refusals_logged_ = 0;
  std::uint64_t out_ = 0, back_ = 0, dropped_ = 0;
  bool closed_ = false;
  runtime::task_group tasks_;  // the receiver and the name lookups
};
}  // namespace

void end_tunnel::open_udp_relay(std::uint32_t id, const lstp::connection_request& request) {
  const auto label = this->label(id, "UDP for " + request.destination.to_string());
  if (policy_.allows_nothing()) return refuse(id, label, "UDP", "no allow rule matches");
  udp::socket sock(driver_->executor());
  boost::system::error_code ec;
  bool v6 = false;
  // One dual-stack socket serves IPv4 and IPv6 destinations; IPv4 only
  // where IPv6 is off.
  sock.open(udp::v6(), ec);
  if (!ec) sock.set_option(asio::ip::v6_only(false), ec);
  if (!ec) sock.bind({udp::v6(), 0}, ec);
  if (!ec) {
    v6 = true;
  } else {
    boost::system::error_code ignored;
    sock.close(ignored);
    ec.clear();
    sock.open(udp::v4(), ec);
    if (!ec) sock.bind({udp::v4(), 0}, ec);
  }
  if (!ec) sock.non_blocking(true, ec);
  if (ec) {
    log_info(component, label, ": cannot open a UDP socket: ", ec.message());
    proto().reject_channel(id, {lstp::wire_error::general, "cannot open a UDP socket: " + ec.message()});
    return;
  }
  const auto port = sock.local_endpoint(ec).port();
  auto relay = std::make_shared<udp_relay>(shared_from_this(), id, std::move(sock), v6, label);
  datagrams_[id] = relay;
  relay->start();
  log_info(component, label, ": relaying from UDP port ", port);
  lstp::address bound;  // 0.0.0.0: the socket listens on every address
  bound.port = port;
  proto().accept_channel(id, bound);
}

}  // namespace endproxy
