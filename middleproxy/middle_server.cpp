#include "middleproxy/middle_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <sstream>

#include "lstp/access.hpp"
#include "lstp/secrets.hpp"
#include "middleproxy/setup_check.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"
#include "runtime/source_address.hpp"
#include "transport/relay_pump.hpp"
#include "runtime/notifier.hpp"
#include "runtime/watchdog.hpp"
#include "transport/hop_acceptor.hpp"
#include "transport/hop_socket.hpp"
#include "transport/tls_hop.hpp"
#include "uplink/dialer.hpp"
#include "uplink/environment_proxy.hpp"

namespace middleproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;
using runtime::log_warn;

namespace {
constexpr std::string_view component = "middle";

std::string endpoint_text(const tcp::endpoint& e) {
  std::ostringstream s;
  s << e;
  return s.str();
}

std::string describe(const lstp::setup_message& s) {
  return lstp::format_path({s.topology.front()});
}

// Counts one open connection (against limits.max_connections) for as long
// as it lives: every way a connection is served holds one.
class counted_connection {
 public:
  explicit counted_connection(std::size_t& open) : open_(open) { ++open_; }
  ~counted_connection() { --open_; }
  counted_connection(const counted_connection&) = delete;
  counted_connection& operator=(const counted_connection&) = delete;

 private:
  std::size_t& open_;
};

}  // namespace

struct middle_server::hop {
  explicit hop(transport::hop_ptr s)
      : stream(std::move(s)), wait_timer(stream->get_executor()), watch(stream->get_executor(), [](auto, auto) {}) {}
  transport::hop_ptr stream;
  std::string peer;   // "ip:port" of the neighbour, for logs
  std::string source;  // the neighbour's address: waiting setups are counted per source
  std::string local;  // "ip:port" this hop arrived on
  lstp::setup_message setup;
  lstp::bytes unread;  // bytes that followed the setup
  std::string tunnel;  // the tunnel's short tag, for logs (never a byte of the pairing id)
  std::string credential;  // the access credential it proved, if any (its name)
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
  bool taken = false;  // another coroutine paired this hop and owns it now
  bool beside_seen = false;     // a setup of the same tunnel name with another pairing id waited with it
  bool writing_notice = false;  // a PAIRING_NOTICE is being written to it (send_notices)
  bool gone = false;   // it closed while waiting
  std::shared_ptr<transport::hop_stream> upstream;  // the hop to the next middle, when forwarded
  asio::steady_timer wait_timer;
  // The watch for the end going away while it waits: cancelled, not the
  // hop's operations, when the wait is over (cancelling a TLS or WebSocket
  // hop would leave it unusable for the pair).
  runtime::task_group watch;
};

namespace {
void warn_if_passphrase(const config::access_credential& c) {
  if (c.token.is_key) return;
  log_warn(component, "access credential \"", c.name, "\": the token from ", c.token_source,
           " is a passphrase, stretched with Argon2id; a generated key cannot be guessed: make one with "
           "middleproxy --new-token FILE");
}
}  // namespace

middle_server::middle_server(asio::io_context& io, config::middle_config cfg)
    : io_(io),
      cfg_(std::move(cfg)),
      table_(cfg_.limit.max_waiting, cfg_.limit.max_waiting_per_source),
      openings_(cfg_.limit.max_openings, cfg_.limit.max_openings_per_source),
      tasks_(io.get_executor(), [](std::string_view task, std::string_view what) {
        // The task's hop (or pair) closes with its frame; every other hop goes on.
        runtime::log_error(component, task, ": internal error: ", what);
      }) {
  acceptor_options_.websocket_path = cfg_.websocket_path;
  // Slow for passphrases on purpose (Argon2id): once per credential, here.
  std::vector<access_key> keys;
  for (auto& g : cfg_.access) {
    warn_if_passphrase(g.credential);
    keys.push_back({g.credential.name, lstp::access_key(g.credential.name, g.credential.token), g.tunnels});
  }
  access_ = access_gate(std::move(keys), cfg_.access_window);
  if (cfg_.next_hop_access) {
    warn_if_passphrase(*cfg_.next_hop_access);
    next_hop_key_ = lstp::access_key(cfg_.next_hop_access->name, cfg_.next_hop_access->token);
  }
}

namespace {
std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

void middle_server::load_tls_identity() {
  if (!cfg_.tls_certificate.empty()) {
    acceptor_options_.tls = transport::tls_server_identity::load(cfg_.tls_certificate, cfg_.tls_private_key);
    log_info(component, "TLS hops use the certificate ", cfg_.tls_certificate);
  } else {
    // The outer TLS of a hop is camouflage (ends accept any certificate);
    // a made-up one serves when the operator gives none.
    const auto name = cfg_.public_address.empty() ? cfg_.name : cfg_.public_address.substr(0, cfg_.public_address.rfind(':'));
    acceptor_options_.tls = transport::tls_server_identity::self_signed(name);
    log_info(component, "TLS hops use a self-signed certificate for \"", name, "\" made at start");
  }
}

void middle_server::start() {
  load_tls_identity();
  if (access_.required()) {
    std::string names;
    for (auto& g : cfg_.access) names += (names.empty() ? "" : ", ") + g.credential.name;
    log_info(component, "hops must prove an access credential (", names, "; clock window ",
             cfg_.access_window.count(), " s)");
  } else {
    log_warn(component, "no access list: anyone may relay through this middle proxy (set access: in ", cfg_.file,
             " when it is reachable from the internet)");
  }
  for (auto& ep : cfg_.listen) {
    acceptors_.push_back(runtime::open_listener(io_, ep.host, ep.port, "hops"));
    log_info(component, "\"", cfg_.name, "\" listening on ", endpoint_text(acceptors_.back()->local_endpoint()));
  }
  start_http_carrier();
  auto self = shared_from_this();
  for (auto& acc : acceptors_) {
    tasks_.spawn("listener", [self, acc = acc.get()] {
      return runtime::accept_loop(*acc, component, [self](tcp::socket sock) { self->on_accept(std::move(sock)); });
    });
  }
}

// The `http` carrier (PROTOCOL.md 9.1) on the same port: its requests may
// come on any connection, and each new session is a hop served like any
// other. Weak references: the server owns the carrier's server.
void middle_server::start_http_carrier() {
  std::weak_ptr<middle_server> weak = shared_from_this();
  transport::poll_server::options o;
  o.path = cfg_.websocket_path;
  poll_ = transport::poll_server::make(
      io_.get_executor(), o, [weak](transport::hop_ptr hop, const tcp::endpoint& from, const tcp::endpoint& local) {
        auto self = weak.lock();
        if (!self) return;
        self->serve(std::move(hop), endpoint_text(from) + " (http)", runtime::source_of(from.address()),
                    endpoint_text(local));
      });
  acceptor_options_.poll_handoff = [weak](tcp::socket sock, std::vector<std::uint8_t> first) {
    auto self = weak.lock();
    if (!self) return;
    boost::system::error_code ec;
    const auto name = "http carrier connection " + endpoint_text(sock.remote_endpoint(ec));
    self->tasks_.spawn(name, [self, sock = std::move(sock), first = std::move(first)]() mutable {
      return self->serve_http_carrier(std::move(sock), std::move(first));
    });
  };
}

// A connection carrying requests counts against limits.max_connections
// while it is open, as any other.
asio::awaitable<void> middle_server::serve_http_carrier(tcp::socket sock, std::vector<std::uint8_t> first) {
  const counted_connection counted(active_hops_);
  auto poll = poll_;
  co_await poll->serve(std::move(sock), std::move(first));
}

void middle_server::stop() {
  for (auto& acc : acceptors_) {
    boost::system::error_code ignored;
    acc->close(ignored);
  }
}

void middle_server::reset() {
  stop();
  if (poll_) poll_->close_all();
  tasks_.cancel();
}

void middle_server::on_accept(tcp::socket sock) {
  boost::system::error_code ec;
  if (active_hops_ >= cfg_.limit.max_connections) {
    if (auto left_out = quiet_.allow("connection limit", std::chrono::steady_clock::now()))
      log_warn(component, "refusing hop from ", endpoint_text(sock.remote_endpoint(ec)), ": ", active_hops_,
               " hops open, the limit is ", cfg_.limit.max_connections, " (limits.max_connections)",
               runtime::log_throttle::left_out_text(*left_out));
    count_refusal("connection limit");
    return;  // sock closes here
  }
  transport::configure_hop_socket(sock);
  const auto name = "hop " + endpoint_text(sock.remote_endpoint(ec));
  tasks_.spawn(name, [self = shared_from_this(), sock = std::move(sock)]() mutable {
    return self->handle_connection(std::move(sock));
  });
}

// Tells the carriers apart (raw LSTP, TLS, WebSocket) and runs the hop.
asio::awaitable<void> middle_server::handle_connection(tcp::socket sock) {
  const counted_connection counted(active_hops_);
  boost::system::error_code ec;
  const auto remote = sock.remote_endpoint(ec);
  const auto peer = endpoint_text(remote);
  // Counted per IPv4 address or IPv6 /64 (limits.*_per_source).
  const auto source = ec ? std::string() : runtime::source_of(remote.address());
  const auto local = endpoint_text(sock.local_endpoint(ec));
  const auto now = std::chrono::steady_clock::now();
  // Until its setup is read, the hop holds an opening slot. Pushed out by
  // newer ones, it is shut down (not closed: the descriptor stays this
  // coroutine's until it ends), which ends whatever read it waits in.
  const int fd = sock.native_handle();
  auto opening = openings_.enter(source, [fd, remote] {
    // The descriptor is this connection's while its slot is held; checking
    // the peer still guards against ever shutting down a reused number.
    sockaddr_storage peer_now{};
    socklen_t len = sizeof peer_now;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer_now), &len) == 0 && len == remote.size() &&
        std::memcmp(&peer_now, remote.data(), len) == 0)
      ::shutdown(fd, SHUT_RDWR);
  });
  if (!opening) {
    count_refusal("source openings full");
    if (auto left_out = quiet_.allow("source full " + source, now))
      log_warn(component, "refusing connections from ", source, ": ", cfg_.limit.max_openings_per_source,
               " of its connections are still opening (limits.max_openings_per_source)",
               runtime::log_throttle::left_out_text(*left_out));
    co_return;
  }
  if (openings_.evicted() > 0 && quiet_.allow("pushed out", now))
    log_warn(component, openings_.take_evicted(), " connection(s) that had not finished their opening were dropped "
             "for newer ones (", cfg_.limit.max_openings, " may be opening at once: limits.max_openings)");
  std::string why;
  transport::hop_ptr stream;
  stream = co_await transport::accept_hop(std::move(sock), acceptor_options_, cfg_.limit.setup_timeout, why);
  if (!stream && why.empty()) co_return;  // an http carrier connection: served by poll_
  if (!stream) {
    opening.release();
    count_refusal("not a hop");
    // Strangers' garbage: one line per source, kind (the reason up to its
    // details in parentheses) and ten seconds is enough.
    const auto kind = why.substr(0, why.find('('));
    if (auto left_out = quiet_.allow("not a hop " + source + " " + kind, std::chrono::steady_clock::now()))
      log_info(component, "connection from ", peer, " is not a hop: ", why, runtime::log_throttle::left_out_text(*left_out));
    co_return;
  }
  auto h = std::make_shared<hop>(std::move(stream));
  h->peer = peer;
  h->source = source;
  h->local = local;
  if (h->stream->kind() != "tcp") h->peer += " (" + h->stream->kind() + ")";
  co_await handle_hop(h, std::move(opening));
}

void middle_server::serve(transport::hop_ptr stream, std::string peer, std::string source, std::string local) {
  auto h = std::make_shared<hop>(std::move(stream));
  h->peer = std::move(peer);
  h->source = std::move(source);
  h->local = std::move(local);
  tasks_.spawn("hop " + h->peer, [self = shared_from_this(), h] { return self->handle_served(h); });
}

asio::awaitable<void> middle_server::handle_served(hop_ptr h) {
  const counted_connection counted(active_hops_);
  // Pushed out of its opening slot, the hop's read is cancelled (the hop
  // lives as long as this coroutine, which holds the ticket).
  auto opening = openings_.enter(h->source, [stream = h->stream.get()] {
    boost::system::error_code ignored;
    stream->cancel(ignored);
  });
  if (!opening) co_return;
  co_await handle_hop(h, std::move(opening));
}

asio::awaitable<bool> middle_server::read_setup(transport::hop_stream& s, lstp::setup_reader& reader, std::string& why,
                                                lstp::wire_error& code, bool& peer_error, hop_ptr relay_notices_to) {
  std::vector<std::uint8_t> buf(16 * 1024);
  for (;;) {
    auto r = reader.next();
    switch (r.state) {
      case lstp::setup_reader::status::done: co_return true;
      case lstp::setup_reader::status::notice:
        if (relay_notices_to) co_await send_notices(relay_notices_to, std::vector<lstp::pairing_hint>(1, reader.notice_hint()));
        continue;
      case lstp::setup_reader::status::invalid:
        why = r.reason;
        code = r.error;
        co_return false;
      case lstp::setup_reader::status::peer_error:
        why = r.reason;
        code = r.error;
        peer_error = true;
        co_return false;
      case lstp::setup_reader::status::need_more: break;
    }
    boost::system::error_code ec;
    auto n = co_await s.read_some(asio::buffer(buf), ec);
    if (ec) {
      why = ec == asio::error::operation_aborted ? "no complete setup in time"
            : ec == asio::error::eof             ? "closed before its setup was complete"
                                                 : ec.message();
      code = ec == asio::error::operation_aborted ? lstp::wire_error::setup_timeout : lstp::wire_error::general;
      co_return false;
    }
    reader.feed({buf.data(), n});
  }
}

lstp::topology_entry middle_server::self_entry(const hop_ptr& h) const {
  return {lstp::hop_kind::middle, cfg_.name, cfg_.public_address.empty() ? h->local : cfg_.public_address};
}

void middle_server::count_refusal(std::string_view reason) {
  std::string word;
  for (char c : reason) word.push_back(c == ' ' ? '_' : c);
  ++refusals_[word];
}

asio::awaitable<void> middle_server::refuse(hop_ptr h, lstp::wire_error code, std::string reason, std::string detail) {
  count_refusal(lstp::to_string(code));
  co_await wait_for_notices(h);
  // An end refused for a lasting reason retries every second or so: its
  // first refusal per tunnel and reason is a warning, repeats within a
  // minute are debug lines. Strangers sending setups with ever new ids get
  // one warning per source and kind of refusal each 10 s, with a count.
  const auto now = std::chrono::steady_clock::now();
  const auto per_tunnel = repeated_refusals_.allow(h->tunnel + "\n" + reason, now);
  const auto per_source =
      per_tunnel ? quiet_.allow("refused " + h->source + " " + std::string(lstp::to_string(code)), now) : std::nullopt;
  const bool warn = per_tunnel && per_source;
  runtime::log(warn ? runtime::log_level::warn : runtime::log_level::debug, component, "hop ", h->peer,
               (h->tunnel.empty() ? "" : " tunnel " + h->tunnel), ": refused: ", reason,
               (detail.empty() ? "" : " (" + detail + ")"), warn ? runtime::log_throttle::left_out_text(*per_source) : "");
  lstp::bytes out;
  lstp::encode_error_info(out, lstp::frame_type::error, 0, {code, reason});
  runtime::watchdog guard(*h->stream, std::chrono::seconds(2));
  boost::system::error_code ec;
  co_await h->stream->write(asio::buffer(out), ec);
  h->stream->close();
}

asio::awaitable<void> middle_server::handle_hop(hop_ptr h, runtime::handshake_slots::ticket opening) {
  lstp::setup_reader reader(lstp::setup_reader::access_frame::accepted, lstp::setup_reader::notices::refused);
  std::string why;
  auto code = lstp::wire_error::ok;
  bool peer_error = false;
  bool ok = false;
  {
    runtime::watchdog deadline(*h->stream, cfg_.limit.setup_timeout);
    ok = co_await read_setup(*h->stream, reader, why, code, peer_error);
  }
  opening.release();
  if (!ok) {
    if (code == lstp::wire_error::general) {
      log_info(component, "hop ", h->peer, ": ", why);
      co_return;
    }
    co_await refuse(h, code, "bad setup: " + why);
    co_return;
  }
  ++hops_seen_;
  h->setup = std::move(reader.setup());
  h->unread.assign(reader.unread().begin(), reader.unread().end());
  h->tunnel = lstp::short_tag(h->setup.info.tag);
  // Who may use this middle is settled before anything is kept for the hop.
  auto access = access_.check(reader.access(), h->setup, unix_now());
  if (access.refusal) {
    co_await refuse(h, access.refusal->code, access.refusal->reason, access.detail);
    co_return;
  }
  h->credential = access.who;
  if (!h->credential.empty()) ++credentials_[h->credential].hops;
  if (auto refusal = check_setup(h->setup, cfg_.name)) {
    co_await refuse(h, refusal->code, refusal->reason);
    co_return;
  }

  // Setups of this tunnel name with other pairing ids wait here: the
  // newcomer hears of each (a hash of its id) before it is listed, so that
  // a resuming end learns its peer started anew (PROTOCOL.md 3.1).
  if (!table_.is_waiting(h->setup.info.pairing)) {
    std::vector<lstp::pairing_hint> hints;
    for (auto& other : table_.waiting_beside(h->setup.info.tag, h->setup.info.pairing))
      hints.push_back(lstp::hint_of(other->setup.info.pairing));
    if (!hints.empty()) co_await send_notices(h, hints);
    if (h->gone) co_return;
  }
  auto admitted =
      table_.admit(h->setup.info.pairing, h->setup.info.tag, h->setup.info.nonce, h, h->source, h->setup.info.role);
  if (admitted.replaced) {
    // The same end came again (its older setup's connection not yet seen
    // closed), or the same source already held its share of this name
    // (an end that came back, or one host probing): the older setup gives
    // way.
    auto old = *admitted.replaced;
    if (admitted.replaced_same_end)
      log_info(component, "tunnel ", old->tunnel, ": ", describe(old->setup), " from ", old->peer,
               " is replaced by a newer setup of the same end from ", h->peer);
    else
      log_warn(component, "tunnel ", old->tunnel, ": ", describe(old->setup), " from ", old->peer,
               " is replaced by a newer setup for the same tunnel name from the same source (",
               table_.per_tag_source(), " may wait per source and tunnel name)");
    old->gone = true;
    old->stream->close();
    if (old->upstream) old->upstream->close();
    old->wait_timer.cancel();
    old->watch.cancel();
  }
  switch (admitted.result) {
    case admit_result::already_paired:
      co_await refuse(h, lstp::wire_error::already_paired, "this tunnel is already paired here");
      co_return;
    case admit_result::replay:
      co_await refuse(h, lstp::wire_error::setup_mismatch, "a setup with the same nonce is already waiting (replay?)");
      co_return;
    case admit_result::name_full:
      co_await refuse(h, lstp::wire_error::too_many_waiting,
                      "too many setups with different pairing ids wait for this tunnel name here");
      co_return;
    case admit_result::table_full:
      co_await refuse(h, lstp::wire_error::too_many_waiting,
                      "too many setups waiting here (" + std::to_string(cfg_.limit.max_waiting) + ")");
      co_return;
    case admit_result::source_full:
      co_await refuse(h, lstp::wire_error::too_many_waiting,
                      "too many setups waiting from " + h->source + " (" +
                          std::to_string(cfg_.limit.max_waiting_per_source) + ")");
      co_return;
    case admit_result::wait_beside:
      // Neither is refused: a stranger who knows the tunnel's name (every
      // setup shows its tag) must not be able to evict or block its ends.
      // Each is told when its wait ends.
      // Each older one hears of the newcomer too (its hash), as the
      // newcomer heard of them.
      h->beside_seen = true;
      for (auto& other : table_.waiting_beside(h->setup.info.tag, h->setup.info.pairing)) {
        other->beside_seen = true;
        co_await send_notices(other, std::vector<lstp::pairing_hint>(1, lstp::hint_of(h->setup.info.pairing)));
      }
      log_warn(component, "tunnel ", h->tunnel, ": ", describe(h->setup), " from ", h->peer,
               (h->credential.empty() ? "" : " (credential " + h->credential + ")"),
               " waits beside an end of the same tunnel name with another pairing id: the two ends' secrets "
               "differ, or someone who knows the name is probing (possible attack)");
      [[fallthrough]];
    case admit_result::wait:
      if (admitted.result == admit_result::wait)
        log_info(component, "tunnel ", h->tunnel, ": ", describe(h->setup), " from ", h->peer,
                 (h->credential.empty() ? "" : " (credential " + h->credential + ")"), " waits for its partner");
      if (cfg_.next_hop)
        co_await forward_to_next_hop(h);
      else
        co_await wait_for_partner(h);
      co_return;
    case admit_result::pair: break;
  }

  // A partner was waiting: pair the two hops here.
  auto partner = *admitted.partner;
  take_over(partner);
  co_await wait_for_notices(partner);
  auto self = self_entry(partner);
  log_info(component, "tunnel ", h->tunnel, ": paired ", describe(partner->setup), " (", partner->peer, ") with ",
           describe(h->setup), " (", h->peer, ")");
  auto to_partner = lstp::relay_setup(h->setup, self);
  to_partner.insert(to_partner.end(), h->unread.begin(), h->unread.end());
  auto to_new = lstp::relay_setup(partner->setup, self);
  to_new.insert(to_new.end(), partner->unread.begin(), partner->unread.end());
  auto new_sock = std::shared_ptr<transport::hop_stream>(h, h->stream.get());
  co_await join(partner, std::move(to_partner), new_sock, std::move(to_new), h->peer, describe(h->setup), h->tunnel);
}

// PAIRING_NOTICE frames to a hop that waits (or is about to): never while
// another coroutine owns the hop, and a pair waits for one under way
// (wait_for_notices) so that their bytes never mix.
asio::awaitable<void> middle_server::send_notices(hop_ptr h, std::vector<lstp::pairing_hint> hints) {
  co_await wait_for_notices(h);
  if (h->taken || h->gone) co_return;
  lstp::bytes out;
  for (auto& hint : hints) lstp::write_frame(out, lstp::frame_type::pairing_notice, 0, hint);
  h->writing_notice = true;
  boost::system::error_code ec;
  {
    runtime::watchdog guard(*h->stream, std::chrono::seconds(2));
    co_await h->stream->write(asio::buffer(out), ec);
  }
  h->writing_notice = false;
  if (ec) {
    h->gone = true;
    h->stream->close();
  }
}

asio::awaitable<void> middle_server::wait_for_notices(const hop_ptr& h) {
  asio::steady_timer pause(h->stream->get_executor());
  while (h->writing_notice) {
    pause.expires_after(std::chrono::milliseconds(1));
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// The waiting hop now belongs to the coroutine that paired it: stop
// everything that watched it, and drop a setup forwarded upstream.
void middle_server::take_over(const hop_ptr& waiting) {
  waiting->taken = true;
  waiting->wait_timer.cancel();
  waiting->watch.cancel();
  if (waiting->upstream) waiting->upstream->close();
}

// While a setup waits, its end sends nothing, so the hop turning readable
// means it closed (or broke the protocol): forget it. Ends when the hop is
// taken over (take_over cancels the hop's operations) or gone.
asio::awaitable<void> middle_server::watch_while_waiting(hop_ptr h) {
  boost::system::error_code ec;
  co_await h->stream->wait_readable(ec);
  if (ec == asio::error::operation_aborted || h->taken || h->gone) co_return;
  if (table_.forget_waiting(h->setup.info.pairing, h))
    log_info(component, "tunnel ", h->tunnel, ": ", describe(h->setup), " from ", h->peer,
             " left before its partner came");
  h->gone = true;
  h->stream->close();
  if (h->upstream) h->upstream->close();
  h->wait_timer.cancel();
}

void middle_server::start_watch(const hop_ptr& h) {
  h->watch.spawn("watch", [self = shared_from_this(), h] { return self->watch_while_waiting(h); });
}

asio::awaitable<void> middle_server::wait_for_partner(hop_ptr h) {
  start_watch(h);
  h->wait_timer.expires_after(cfg_.limit.waiting_timeout);
  boost::system::error_code ec;
  co_await h->wait_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (h->taken || h->gone) co_return;
  co_await end_wait(h);
}

// The waiting timeout passed and no partner came: tell the end why.
asio::awaitable<void> middle_server::end_wait(hop_ptr h) {
  table_.forget_waiting(h->setup.info.pairing, h);
  h->watch.cancel();
  // Built first: GCC 12 miscompiles a temporary of a conditional expression
  // inside a co_await (a double free).
  std::string why = "no partner arrived in time";
  if (h->beside_seen)
    why += ", but another end of this tunnel name waited here with a different pairing id: check that both ends use "
           "the same secret";
  co_await refuse(h, lstp::wire_error::setup_timeout, why);
}

// One attempt to pass the setup on to the next middle: on success the hop
// has its upstream; ec and why say what failed.
asio::awaitable<void> middle_server::send_to_next_hop(hop_ptr h, boost::system::error_code& ec, std::string& why) {
  auto& next = *cfg_.next_hop;
  uplink::dial_options options;
  options.timeout = cfg_.limit.setup_timeout;
  options.websocket_path = cfg_.websocket_path;
  auto way = cfg_.next_hop_way.value_or(config::way{});
  if (way.via == config::way::route::environment) {
    // The proxy the environment names for the next hop, or none (direct).
    auto env = uplink::proxy_from_environment(next.host, uplink::is_plain_web(way.how), ::getenv);
    if (!env.problem.empty()) log_warn(component, "next hop: ignoring ", env.problem);
    way.via = env.proxy ? config::way::route::proxy : config::way::route::direct;
    way.through = env.proxy;
  }
  // A local partner may take the hop over while we dial: then the
  // forwarded setup must not reach the next middle.
  auto up = co_await uplink::dial(io_.get_executor(), way, next, options, why);
  if (!up) {
    ec = asio::error::host_unreachable;
    co_return;
  }
  if (h->taken || h->gone) {
    up->close();
    co_return;
  }
  h->upstream = std::shared_ptr<transport::hop_stream>(std::move(up));
  runtime::watchdog deadline(*h->upstream, cfg_.limit.setup_timeout);
  // This middle's own credential for the next, if any: the end's stays here.
  std::optional<lstp::middle_access> access;
  if (cfg_.next_hop_access)
    access = lstp::middle_access{cfg_.next_hop_access->name, next_hop_key_, static_cast<std::uint64_t>(unix_now())};
  auto out = lstp::hop_opening(lstp::appended(h->setup, self_entry(h)), access);
  out.insert(out.end(), h->unread.begin(), h->unread.end());
  co_await h->upstream->write(asio::buffer(out), ec);
  if (ec) why = ec.message();
}

asio::awaitable<void> middle_server::forward_to_next_hop(hop_ptr h) {
  auto& next = *cfg_.next_hop;
  start_watch(h);
  const auto give_up_at = std::chrono::steady_clock::now() + cfg_.limit.waiting_timeout;
  // A next hop that is down (restarting, or started after this one) is
  // tried again while the setup waits here: the tunnel forms as soon as it
  // is back, not one waiting timeout later.
  std::chrono::milliseconds retry_after{250};
  bool warned = false;
  boost::system::error_code ec;
  std::string why;
  for (;;) {
    ec = {};
    why.clear();
    co_await send_to_next_hop(h, ec, why);
    if (h->taken || h->gone) co_return;
    if (!ec) break;
    const auto left = give_up_at - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      co_await end_wait(h);
      co_return;
    }
    // The partner may still come here: keep waiting locally.
    if (!warned)
      log_warn(component, "tunnel ", h->tunnel, ": next hop ", next.to_string(), " unreachable (", why,
               "); waiting here and trying it again");
    warned = true;
    h->upstream.reset();
    h->wait_timer.expires_after(std::min<std::chrono::steady_clock::duration>(retry_after, left));
    boost::system::error_code wait_ec;
    co_await h->wait_timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    if (h->taken || h->gone) co_return;
    retry_after = std::min(retry_after * 2, std::chrono::milliseconds(5000));
  }
  auto up = h->upstream;
  log_info(component, "tunnel ", h->tunnel, ": setup forwarded to next hop ", next.to_string(), " by ",
           cfg_.next_hop_way.value_or(config::way{}).to_string());

  lstp::setup_reader reader;
  why.clear();
  auto code = lstp::wire_error::ok;
  bool peer_error = false;
  bool ok = false;
  {
    runtime::watchdog deadline(*up, cfg_.limit.waiting_timeout);
    ok = co_await read_setup(*up, reader, why, code, peer_error, h);
  }
  if (h->taken || h->gone) co_return;
  table_.forget_waiting(h->setup.info.pairing, h);
  h->taken = true;  // from here this coroutine owns the hop alone
  h->watch.cancel();
  if (!ok) {
    up->close();
    if (peer_error) {
      co_await refuse(h, code, "next hop " + next.to_string() + " refused: " + why);
    } else {
      co_await refuse(h, code == lstp::wire_error::general ? lstp::wire_error::next_hop_failed : code,
                      "next hop " + next.to_string() + ": " + why);
    }
    co_return;
  }
  table_.mark_paired(h->setup.info.pairing);
  auto& reply = reader.setup();
  log_info(component, "tunnel ", h->tunnel, ": paired ", describe(h->setup), " (", h->peer, ") with ",
           describe(reply), " via next hop ", next.to_string());
  auto to_down = lstp::relay_setup(reply, self_entry(h));
  to_down.insert(to_down.end(), reader.unread().begin(), reader.unread().end());
  co_await join(h, std::move(to_down), up, {}, "next hop " + next.to_string(), describe(reply), h->tunnel);
}

asio::awaitable<void> middle_server::join(hop_ptr first, lstp::bytes to_first, std::shared_ptr<transport::hop_stream> second,
                                          lstp::bytes to_second, std::string second_name, std::string second_end,
                                          std::string tunnel) {
  auto started = std::chrono::steady_clock::now();
  ++pairs_made_;
  if (!first->credential.empty()) ++credentials_[first->credential].pairs;
  auto pairing = first->setup.info.pairing;
  ++active_hops_;  // the second hop of the pair (the first one counts in its handle_hop)
  boost::system::error_code ec;
  {
    // Each end is told of its partner within the setup timeout, or the
    // pair ends: an end that stopped reading must not hold the pair (and its
    // pairing id) forever.
    runtime::watchdog first_deadline(*first->stream, cfg_.limit.setup_timeout);
    runtime::watchdog second_deadline(*second, cfg_.limit.setup_timeout);
    if (!to_first.empty()) co_await first->stream->write(asio::buffer(to_first), ec);
    if (!ec && !to_second.empty()) co_await second->write(asio::buffer(to_second), ec);
  }
  if (ec)
    log_info(component, "tunnel ", tunnel, ": the pair ended before both ends heard of it: ",
             ec == asio::error::operation_aborted ? "an end did not read its partner's setup in time" : ec.message());

  // Counters and flags live in shared state: the copies run as their own
  // coroutines and may outlive a wait here by a moment.
  struct pump_state : pair_counters {
    explicit pump_state(const asio::any_io_executor& ex) : done(ex) {}
    runtime::notifier done;
    int finished = 0;
  };
  auto st = std::make_shared<pump_state>(first->stream->get_executor());
  // Listed while it lives (the admin page); its bytes as the copies count them.
  const auto pair_number = next_pair_++;
  pairs_[pair_number] = pair_info{tunnel, describe(first->setup), first->peer, second_end, second_name, started, st};
  struct listed_guard {
    std::map<std::uint64_t, pair_info>& pairs;
    std::uint64_t number;
    std::uint64_t& closed_bytes;
    ~listed_guard() {
      auto it = pairs.find(number);
      if (it == pairs.end()) return;
      closed_bytes += it->second.bytes->a_to_b + it->second.bytes->b_to_a;
      pairs.erase(it);
    }
  } listed{pairs_, pair_number, bytes_of_closed_pairs_};
  // The two copies belong to this pair: a copy that fails ends the pair,
  // and the pair ends only once both copies have.
  runtime::task_group copies(first->stream->get_executor(), [tunnel](std::string_view task, std::string_view what) {
    runtime::log_error(component, "tunnel ", tunnel, ": internal error in the ", task, ": ", what);
  });
  const auto copy_failed = [first, second, st] {
    first->stream->close();
    second->close();
    ++st->finished;
    st->done.notify();
  };
  if (!ec) {
    copies.spawn(
        "copy from " + first->peer,
        [first, second, st]() -> asio::awaitable<void> {
          co_await transport::relay_one_way(*first->stream, *second, st->a_to_b);
          ++st->finished;
          st->done.notify();
        },
        copy_failed);
    copies.spawn(
        "copy from " + second_name,
        [first, second, st]() -> asio::awaitable<void> {
          co_await transport::relay_one_way(*second, *first->stream, st->b_to_a);
          ++st->finished;
          st->done.notify();
        },
        copy_failed);
    while (st->finished == 0) co_await st->done.wait();
    // Ends never half-close a hop (PROTOCOL.md 5): one side's EOF means that
    // end is gone. The other direction gets a short grace for its last bytes
    // (an ERROR, a TLS close_notify), then the pair is torn down even if that
    // side never answers, so the pairing id is free again for a reconnect.
    auto deadline = asio::steady_timer::clock_type::now() + std::chrono::seconds(5);
    while (st->finished < 2) {
      bool woke = co_await st->done.wait_until(deadline);
      if (!woke) break;
    }
  }
  auto a_to_b = st->a_to_b, b_to_a = st->b_to_a;
  first->stream->close();
  second->close();
  co_await copies.join();  // both copies end at once on the closed hops
  table_.unpair(pairing);
  --active_hops_;
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log_info(component, "tunnel ", tunnel, ": pair closed after ", secs, " s; ", a_to_b, " bytes from ", first->peer,
           ", ", b_to_a, " bytes from ", second_name);
}

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

boost::json::object middle_server::status() const {
  boost::json::object o;
  boost::json::array listeners;
  for (auto& acc : acceptors_) {
    boost::system::error_code ec;
    auto ep = acc->local_endpoint(ec);
    if (!ec && acc->is_open()) listeners.push_back(boost::json::string(endpoint_text(ep)));
  }
  o["listeners"] = std::move(listeners);
  o["next_hop"] = cfg_.next_hop ? cfg_.next_hop->to_string() : std::string();
  boost::json::array waiting;
  table_.for_each_waiting([&](const hop_ptr& h) {
    boost::json::object w;
    w["tunnel"] = h->tunnel;
    w["end"] = describe(h->setup);
    w["source"] = h->peer;
    w["credential"] = h->credential;
    w["age_seconds"] = seconds_since(h->arrived);
    w["forwarded"] = h->upstream != nullptr;
    waiting.push_back(std::move(w));
  });
  o["waiting"] = std::move(waiting);
  boost::json::array pairs;
  std::uint64_t live_bytes = 0;
  for (auto& [n, p] : pairs_) {
    boost::json::object j;
    j["tunnel"] = p.tunnel;
    j["first"] = boost::json::object{{"end", p.first_end}, {"source", p.first_source}};
    j["second"] = boost::json::object{{"end", p.second_end}, {"source", p.second_source}};
    j["age_seconds"] = seconds_since(p.started);
    j["bytes_first_to_second"] = p.bytes->a_to_b;
    j["bytes_second_to_first"] = p.bytes->b_to_a;
    j["bytes"] = p.bytes->a_to_b + p.bytes->b_to_a;
    live_bytes += p.bytes->a_to_b + p.bytes->b_to_a;
    pairs.push_back(std::move(j));
  }
  o["pairs"] = std::move(pairs);
  boost::json::object refusals;
  for (auto& [k, v] : refusals_) refusals[k] = v;
  o["refusals"] = std::move(refusals);
  boost::json::array credentials;
  for (auto& g : cfg_.access) {
    auto it = credentials_.find(g.credential.name);
    boost::json::object c;
    c["name"] = g.credential.name;
    c["hops"] = it == credentials_.end() ? 0 : it->second.hops;
    c["pairs"] = it == credentials_.end() ? 0 : it->second.pairs;
    credentials.push_back(std::move(c));
  }
  o["credentials"] = std::move(credentials);
  o["totals"] = boost::json::object{{"hops_accepted", hops_seen_},
                                    {"pairs_made", pairs_made_},
                                    {"hops_open", active_hops_},
                                    {"bytes_relayed", bytes_of_closed_pairs_ + live_bytes}};
  return o;
}

void middle_server::metrics(admin::metrics_text& m) const {
  using admin::metric_type;
  m.family("lstp_middle_pairs", metric_type::gauge, "Pairs of hops this middle relays now.");
  m.sample(static_cast<double>(pairs_.size()));
  m.family("lstp_middle_waiting", metric_type::gauge, "Setups waiting here for their partner.");
  m.sample(static_cast<double>(table_.waiting()));
  m.family("lstp_middle_hops_open", metric_type::gauge, "Hops open now (opening, waiting or paired).");
  m.sample(static_cast<double>(active_hops_));
  m.family("lstp_middle_hops_total", metric_type::counter, "Hops that delivered a setup.");
  m.sample(static_cast<double>(hops_seen_));
  m.family("lstp_middle_pairs_total", metric_type::counter, "Pairs made (here, or through the next hop).");
  m.sample(static_cast<double>(pairs_made_));
  m.family("lstp_middle_refusals_total", metric_type::counter, "Connections and setups refused, by reason.");
  for (auto& [k, v] : refusals_) m.sample({{"reason", k}}, static_cast<double>(v));
  std::uint64_t live = 0;
  for (auto& [n, p] : pairs_) live += p.bytes->a_to_b + p.bytes->b_to_a;
  m.family("lstp_middle_bytes_total", metric_type::counter, "Bytes relayed between the hops of pairs, both ways.");
  m.sample(static_cast<double>(bytes_of_closed_pairs_ + live));
  m.family("lstp_middle_credential_hops_total", metric_type::counter, "Hops that proved each access credential.");
  for (auto& g : cfg_.access) {
    auto it = credentials_.find(g.credential.name);
    m.sample({{"credential", g.credential.name}}, static_cast<double>(it == credentials_.end() ? 0 : it->second.hops));
  }
}

}  // namespace middleproxy
