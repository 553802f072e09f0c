#include "lstp/tunnel.hpp"

#include <limits>

#include <botan/rng.h>

#include <algorithm>

namespace lstp {

namespace {
constexpr std::string_view software_name = "lstp/0.1";
}

tunnel::tunnel(tunnel_params params, Botan::RandomNumberGenerator& rng, clock::time_point now)
    : params_(std::move(params)),
      rng_(rng),
      anchor_(std::make_shared<tunnel*>(this)),
      setup_deadline_(now + (refresh_first() ? params_.limits.setup_refresh : params_.limits.setup_wait)),
      last_rx_(now),
      last_ping_(now) {
  if (params_.self.software.empty()) params_.self.software = std::string(software_name);
  if (params_.limits.record_layer) params_.self.features |= feature_record_layer;
  if (params_.limits.credit_windows) params_.self.features |= feature_credit_windows;
  if (params_.limits.resumption) params_.self.features |= feature_resumption;
  if (params_.limits.key_updates) params_.self.features |= feature_key_update;
  link_self_ = params_.self;
  our_setup_ = make_setup(link_self_, {hop_kind_of(params_.self.role), params_.self.name, ""});
  out_ = hop_opening(our_setup_, params_.access);
}

tunnel::~tunnel() { *anchor_ = nullptr; }

// Commands end by telling the driver when output or events wait.
struct tunnel::pending_signal {
  tunnel& t;
  std::size_t out_before, events_before;
  explicit pending_signal(tunnel& owner) : t(owner), out_before(owner.out_.size()), events_before(owner.events_.size()) {}
  // Only what this command added: a writer that waits for a new hop must
  // not be woken again and again by output it cannot write yet.
  ~pending_signal() {
    if (t.out_.size() > out_before || t.events_.size() > events_before) t.signal_pending();
  }
  pending_signal(const pending_signal&) = delete;
  pending_signal& operator=(const pending_signal&) = delete;
};

channel_handle& channel_handle::operator=(channel_handle&& o) noexcept {
  if (this != &o) {
    reset();
    anchor_ = std::move(o.anchor_);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

void channel_handle::reset(const error_info& why) {
  const auto id = std::exchange(id_, 0);
  auto anchor = std::exchange(anchor_, {}).lock();
  if (id != 0 && anchor && *anchor) (*anchor)->free_channel(id, why);
}

void tunnel::emit_address(event_type type, std::uint32_t id, address where) {
  tunnel_event e;
  e.type = type;
  e.channel = id;
  e.where = std::move(where);
  events_.push_back(std::move(e));
}

void tunnel::emit_error(event_type type, std::uint32_t id, error_info why) {
  tunnel_event e;
  e.type = type;
  e.channel = id;
  e.error = std::move(why);
  events_.push_back(std::move(e));
}

std::optional<tunnel_event> tunnel::poll_event() {
  const auto out_before = out_.size();
  while (events_.empty() && advance()) {
  }
  if (events_.empty()) {
    if (out_.size() != out_before) signal_pending();  // handling input left output
    return std::nullopt;
  }
  auto e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void dispatch_events(tunnel& t, tunnel_handler& h) {
  while (auto e = t.poll_event()) deliver_event(t, h, *e);
}

void deliver_event(tunnel& t, tunnel_handler& h, const tunnel_event& e) {
  switch (e.type) {
    case event_type::up: return h.on_up(t.info());
    case event_type::channel_request: return h.on_channel_request(e.channel, e.request);
    case event_type::channel_accepted: return h.on_channel_accepted(e.channel, e.where);
    case event_type::bind_peer: return h.on_bind_peer(e.channel, e.where);
    case event_type::channel_rejected: return h.on_channel_rejected(e.channel, e.error);
    case event_type::service_begin: return h.on_service_begin(e.channel);
    case event_type::data: return h.on_data(e.channel, e.data);
    case event_type::peer_fin: return h.on_peer_fin(e.channel);
    case event_type::pause: return h.on_pause(e.channel);
    case event_type::resume: return h.on_resume(e.channel);
    case event_type::channel_freed: return h.on_channel_freed(e.channel, e.error);
    case event_type::hop_lost: return h.on_hop_lost(e.error);
    case event_type::resumed: return h.on_resumed(e.amount);
    case event_type::closed: return h.on_closed(e.error);
  }
}

void tunnel::receive(byte_view bytes, clock::time_point now) {
  pending_signal signal(*this);
  if (state_ == tunnel_state::closed) return;
  last_rx_ = now;
  if (opener_) return opener_->append(bytes);
  if (state_ == tunnel_state::setup) {
    setup_reader_.feed(bytes);
    setup_fed_ = true;
    return;
  }
  if (tls_at_ > 0) {
    tls_in_.erase(tls_in_.begin(), tls_in_.begin() + static_cast<std::ptrdiff_t>(tls_at_));
    tls_at_ = 0;
  }
  tls_in_.insert(tls_in_.end(), bytes.begin(), bytes.end());
}

std::span<std::uint8_t> tunnel::receive_space(std::size_t want) {
  if (space_void_) {
    // No read is under way now: what a lost hop's read wrote into can go.
    retired_opener_.reset();
    retired_in_ = bytes{};
    space_void_ = false;
  }
  space_in_opener_ = opener_ != nullptr;
  if (opener_) {
    in_ = bytes{};  // switched: the record layer reads into its own buffer now
    return opener_->space(want);
  }
  if (in_.size() < want) in_.resize(want);
  return {in_.data(), want};
}

void tunnel::received(std::size_t n, clock::time_point now) {
  if (space_void_) return;  // bytes of the hop lost since receive_space
  if (!space_in_opener_) {
    receive(byte_view(in_.data(), n), now);
    return;
  }
  pending_signal signal(*this);
  if (state_ == tunnel_state::closed) return;
  last_rx_ = now;
  opener_->commit(n);
}

// One unit of input: a frame already decoded, else the next LSTP record,
// else the next TLS record, else the setup. Events it causes wait in events_.
bool tunnel::advance() {
  if (state_ == tunnel_state::closed) return false;
  if (state_ == tunnel_state::setup) {
    if (!setup_fed_) return false;
    setup_fed_ = false;
    handle_setup(last_rx_);
    return true;
  }
  auto r = plain_in_.next();
  if (r.state == frame_decoder::status::invalid) {
    fail(r.error, "bad frame from the peer: " + r.reason);
    return true;
  }
  if (r.state == frame_decoder::status::done) {
    handle_frame(r.frame);
    maybe_end_shutdown();
    return true;
  }
  if (opener_) {
    // The LSTP record layer (PROTOCOL.md 3.5): one record at a time, its
    // frames handled straight from where it was opened. Frames from
    // records that verified are handled even when a later record fails.
    auto rec = opener_->open_next();
    if (rec.state == record_opener::status::need_more) return false;
    if (rec.state == record_opener::status::failed) {
      // A middle that alters bytes costs a new hop, never corrupted data.
      link_failed(rec.error.code, rec.error.reason);
      return true;
    }
    plain_in_.feed_borrowed(rec.plaintext);
    return true;
  }
  return advance_tls();
}

// Until the switch, Botan gets whole TLS records one at a time: the record
// that carries the peer's PROPERTY_EXCHANGE is its last, and the bytes after
// it are LSTP records, which Botan must never see.
bool tunnel::advance_tls() {
  if (!tls_) return false;
  if (records_negotiated_ && state_ == tunnel_state::up) {
    // The peer's last TLS record is handled: the rest are LSTP records.
    if (!switch_to_records_in()) return true;
    opener_->append(byte_view(tls_in_.data() + tls_at_, tls_in_.size() - tls_at_));
    tls_in_ = {};
    tls_at_ = 0;
    return true;
  }
  constexpr std::size_t tls_header = 5;
  constexpr std::size_t tls_max_record = 16384 + 2048;  // TLS 1.2's ciphertext limit
  const auto avail = tls_in_.size() - tls_at_;
  if (avail < tls_header) return false;
  const std::size_t length = static_cast<std::size_t>(tls_in_[tls_at_ + 3]) << 8 | tls_in_[tls_at_ + 4];
  if (length > tls_max_record) {
    fail(wire_error::protocol_error, "TLS record too long");
    return true;
  }
  if (avail < tls_header + length) return false;
  const byte_view record(tls_in_.data() + tls_at_, tls_header + length);
  tls_at_ += tls_header + length;
  if (auto err = tls_->received(record)) {
    // On a resumption hop a failed handshake is that hop's fault (a middle
    // replaying an earlier hop, or altering this one), not the tunnel's: it
    // costs the hop, and the window goes on.
    if (resuming_) link_failed(err->code, "the resumption handshake failed: " + err->reason);
    else fail(err->code, err->reason);
  }
  return true;
}

void tunnel::handle_setup(clock::time_point now) {
  auto r = setup_reader_.next();
  switch (r.state) {
    case setup_reader::status::need_more: return;
    case setup_reader::status::notice:
      // A fresh setup of this tunnel waits at the middle while we resume:
      // the peer started anew (it restarted, or never saw the tunnel up),
      // so this tunnel cannot go on. Only our own secret makes a matching
      // hint, so a stranger's setup never ends a resumption.
      if (resuming_ && params_.is_fresh_peer_setup && params_.is_fresh_peer_setup(setup_reader_.notice_hint()))
        return finish({wire_error::general, "the peer started a new tunnel: this one cannot be resumed"});
      return handle_setup(now);
    case setup_reader::status::invalid: return link_failed(r.error, "bad setup from the middle proxy: " + r.reason);
    case setup_reader::status::peer_error:
      // A fresh setup of this tunnel waits there: the peer started anew (it
      // restarted, or gave up resuming), so this tunnel cannot go on.
      if (resuming_ && r.error == wire_error::auth_failed)
        return finish({wire_error::general, "the peer started a new tunnel: this one cannot be resumed"});
      if (resuming_) return link_failed(r.error, "the middle proxy refused the setup: " + r.reason);
      return finish({r.error, "the middle proxy refused the setup: " + r.reason});
    case setup_reader::status::done: break;
  }
  auto& peer = setup_reader_.setup();
  if (peer.info.pairing != link_self_.pairing || peer.info.tag != link_self_.tag)
    return link_failed(wire_error::setup_mismatch, "the middle proxy paired us with a different tunnel");
  if (peer.info.nonce == link_self_.nonce)
    return link_failed(wire_error::setup_mismatch, "the peer's nonce equals ours: a loop or a replayed setup");
  // Our own setup, met through another of our attempts (or relayed back by a
  // middle): a tunnel with ourselves would carry nothing anywhere.
  if (peer.info.name == link_self_.name || (params_.is_own_nonce && params_.is_own_nonce(peer.info.nonce)))
    return link_failed(wire_error::setup_mismatch, "the middle proxy paired this end with itself (the peer's " +
                                                       std::string(peer.info.name == link_self_.name ? "name" : "nonce") +
                                                       " is this end's own)");
  // Roles are in COMMON_UNIQUE_INFO, which the peer repeats inside TLS
  // (3.4), so a middle cannot change them: a tunnel needs one end that
  // opens connections and one whose apps use them.
  if (!resuming_) {
    const auto opens = [](end_role role) { return role != end_role::client; };
    const auto uses = [](end_role role) { return role != end_role::server; };
    const auto mine = link_self_.role, theirs = peer.info.role;
    if (!((uses(mine) && opens(theirs)) || (uses(theirs) && opens(mine))))
      return fail(wire_error::setup_mismatch,
                  std::string("both ends are ") + (mine == end_role::client ? "client" : "server") +
                      " ends: a tunnel needs a server end (role: server or both) on one side and a client end "
                      "(role: client or both) on the other");
  }
  info_.peer = peer.info;
  info_.master = is_master(link_self_.nonce, peer.info.nonce);
  info_.path = path_view(our_setup_.topology.front(), peer.topology);
  peer_clear_info_frame_ = peer.info_frame;
  if (resuming_) {
    // The same tunnel goes on: the peer must still speak what it spoke.
    const std::uint32_t needed = feature_record_layer | feature_resumption | (windows_negotiated_ ? feature_credit_windows : 0);
    if ((peer.info.features & needed) != needed)
      return fail(wire_error::setup_mismatch, "the peer resumed without the features the tunnel uses");
    state_ = tunnel_state::tls_handshake;
    handshake_deadline_ = std::min(now + params_.limits.handshake_timeout, resume_deadline_);
    tls_in_.assign(setup_reader_.unread().begin(), setup_reader_.unread().end());
    tls_at_ = 0;
    tls_ = std::make_unique<tls_engine>(info_.master, resume_psk(params_.psk, *resumption_), rng_, *this);
    return;
  }
  records_negotiated_ =
      (params_.self.features & feature_record_layer) != 0 && (peer.info.features & feature_record_layer) != 0;
  windows_negotiated_ = (params_.self.features & feature_credit_windows) != 0 &&
                        (peer.info.features & feature_credit_windows) != 0;
  // Replayed frames go into LSTP records: resumption needs the record layer.
  resumption_negotiated_ = records_negotiated_ && (params_.self.features & feature_resumption) != 0 &&
                           (peer.info.features & feature_resumption) != 0;
  key_updates_negotiated_ = records_negotiated_ && (params_.self.features & feature_key_update) != 0 &&
                            (peer.info.features & feature_key_update) != 0;
  ids_master_ = info_.master;
  next_own_id_ = ids_master_ ? 1 : 2;
  state_ = tunnel_state::tls_handshake;
  handshake_deadline_ = now + params_.limits.handshake_timeout;
  // Bytes after the setup are already TLS records from the peer.
  tls_in_.assign(setup_reader_.unread().begin(), setup_reader_.unread().end());
  tls_at_ = 0;
  tls_ = std::make_unique<tls_engine>(info_.master, params_.psk, rng_, *this);
}

bool tunnel::switch_to_records_in() {
  if (!in_keys_) {
    fail(wire_error::protocol_error, "the record layer keys are missing");
    return false;
  }
  opener_ = std::make_unique<record_opener>(*in_keys_);
  in_keys_.reset();
  return true;
}

void tunnel::tls_ciphertext(byte_view data) { out_.insert(out_.end(), data.begin(), data.end()); }

void tunnel::tls_plaintext(byte_view data) { plain_in_.feed(data); }

void tunnel::tls_activated(std::string_view cipher) {
  info_.cipher = std::string(cipher);
  state_ = tunnel_state::verifying;
  bytes b = our_setup_.info_frame;
  encode_topology(b, info_.path);
  encode_properties(b, {{"software", std::string(software_name)},
                        {"max_payload", std::to_string(max_data_payload)},
                        {"high_watermark", std::to_string(params_.limits.high_watermark)},
                        {"pause_slack", std::to_string(params_.limits.pause_slack)}});
  send_link(b);
  if (records_negotiated_ && state_ != tunnel_state::closed) {
    // Our last TLS record is out: from now on we send LSTP records.
    auto exported = tls_->export_keying_material(record_export_label, record_export_size);
    if (!exported || exported->size() != record_export_size)
      return fail(wire_error::protocol_error, "cannot export the record layer keys from TLS");
    auto [out_keys, in_keys] = split_record_keys(*exported, info_.master);
    sealer_ = std::make_unique<record_sealer>(out_keys);
    in_keys_ = in_keys;
    // Each hop starts on fresh keys from its own TLS session.
    if (key_updates_negotiated_) key_update_at_ = last_rx_ + params_.limits.key_update_interval;
  }
  if (resumption_negotiated_ && !resumption_ && state_ != tunnel_state::closed) {
    // The first hop: the session id and resumption key, from this TLS session.
    auto exported = tls_->export_keying_material(resumption_export_label, resumption_export_size);
    if (!exported || exported->size() != resumption_export_size)
      return fail(wire_error::protocol_error, "cannot export the resumption keys from TLS");
    resumption_ = split_resumption_export(*exported);
  }
  if (resuming_ && sealer_ && state_ != tunnel_state::closed) {
    // RESUME goes first on the new hop: what we handled of the peer's frames.
    scratch_.clear();
    write_header(scratch_, {frame_type::resume, 0, 0, 16 + 8});
    wire_writer w(scratch_);
    w.raw(resumption_->session_id);
    w.u64(handled_);
    seal(scratch_);
    acked_sent_ = handled_;
  }
}

void tunnel::seal(byte_view head, byte_view body, bool frame_boundary) {
  sealer_->seal(out_, head, body);
  if (frame_boundary) maybe_update_keys();
}

void tunnel::maybe_update_keys() {
  if (key_updates_negotiated_ && sealer_ && sealer_->sealed_under_key() >= params_.limits.key_update_bytes)
    update_send_keys(last_rx_);
}

void tunnel::update_send_keys(clock::time_point now) {
  // The KEY_UPDATE is the last record under the old keys; the peer moves
  // to the next ones once it has handled it. Only ever between frames: a
  // record that ends inside a frame (a replayed one) is continued by the
  // next, and a KEY_UPDATE there would be read as part of that frame.
  bytes frame;
  write_header(frame, {frame_type::key_update, 0, 0, 0});
  sealer_->seal(out_, frame);
  sealer_->update_keys();
  ++key_updates_sent_;
  key_update_at_ = now + params_.limits.key_update_interval;
}

void tunnel::tls_closed() {
  if (state_ != tunnel_state::closed) finish({wire_error::ok, "the peer closed the TLS session"});
}

void tunnel::send_plain(const bytes& frame) {
  if (state_ == tunnel_state::closed) return;
  if (resumption_negotiated_ && (state_ == tunnel_state::up || resuming_)) {
    keep_reliable(frame);
    // Without a hop, or before the peer's RESUME: reliable frames wait in
    // the replay buffer and go out with it; the rest are dropped.
    if (resuming_) return;
  }
  send_link(frame);
}

void tunnel::send_link(const bytes& frame) {
  if (!tls_ || state_ == tunnel_state::closed) return;
  if (sealer_) {
    byte_view rest(frame);
    while (!rest.empty()) {
      const auto n = std::min(rest.size(), max_record_plaintext);
      seal(rest.first(n), {}, n == rest.size());
      rest = rest.subspan(n);
    }
    return;
  }
  if (!tls_->active()) return;
  if (auto err = tls_->send(frame)) fail(err->code, err->reason);
}

void tunnel::close_tls() {
  // After the switch to LSTP records a TLS alert would be garbage to the
  // peer: the hop's end says it instead.
  if (tls_ && !sealer_) tls_->close();
}

void tunnel::handle_frame(const frame_view& f) {
  if (state_ == tunnel_state::verifying) {
    handle_verifying(f);
  } else if (state_ == tunnel_state::up) {
    handle_up(f);
    if (resumption_negotiated_ && is_reliable(f.header.type) && state_ == tunnel_state::up) note_handled(f);
  } else
    fail(wire_error::unexpected_message, std::string(to_string(f.header.type)) + " before TLS was up");
}

void tunnel::handle_verifying(const frame_view& f) {
  static constexpr frame_type expected[] = {frame_type::common_unique_info, frame_type::topology_exchange,
                                            frame_type::property_exchange};
  if (f.header.type == frame_type::error) {
    error_info e;
    std::string why;
    if (!decode_error_info(f.payload, e, why)) return fail(wire_error::protocol_error, why);
    return finish({e.code, "the peer refused the tunnel: " + e.reason});
  }
  if (f.header.type != expected[secure_step_])
    return fail(wire_error::unexpected_message, std::string("expected ") + std::string(to_string(expected[secure_step_])) +
                                                    " inside TLS, got " + std::string(to_string(f.header.type)));
  std::string why;
  switch (secure_step_) {
    case 0: {
      bytes secure;
      write_frame(secure, f.header.type, f.header.channel, f.payload, f.header.flags);
      if (secure != peer_clear_info_frame_)
        return fail(wire_error::setup_mismatch,
                    "the peer's COMMON_UNIQUE_INFO inside TLS differs from the one a middle delivered in the clear");
      break;
    }
    case 1: {
      topology peer_view;
      if (!decode_topology(f.payload, peer_view, why)) return fail(wire_error::protocol_error, why);
      auto diff = check_peer_view(info_.path, peer_view);
      if (!diff.empty()) return fail(wire_error::setup_mismatch, diff);
      break;
    }
    case 2:
      if (!decode_properties(f.payload, info_.peer_properties, why)) return fail(wire_error::protocol_error, why);
      state_ = tunnel_state::up;
      if (resuming_) {
        // The peer's RESUME comes next, within the handshake's time.
        awaiting_resume_ = true;
        return;
      }
      handshake_deadline_ = clock::time_point::max();
      send_ping(last_rx_);  // the first of rtt_probes round trips: credit windows grow against them
      emit(event_type::up);
      return;
  }
  ++secure_step_;
}

void tunnel::handle_up(const frame_view& f) {
  std::string why;
  if (awaiting_resume_) {
    if (f.header.type == frame_type::resume) return handle_resume(f);
    if (f.header.type == frame_type::error) {
      error_info e;
      if (!decode_error_info(f.payload, e, why)) return fail(wire_error::protocol_error, why);
      return finish({e.code, "the peer refused to resume: " + e.reason});
    }
    return fail(wire_error::unexpected_message,
                std::string("expected RESUME first on a resumed tunnel, got ") + std::string(to_string(f.header.type)));
  }
  switch (f.header.type) {
    case frame_type::ping: {
      std::array<std::uint8_t, 8> token{};
      if (f.payload.size() != token.size()) return fail(wire_error::protocol_error, "PING payload is not 8 bytes");
      std::copy(f.payload.begin(), f.payload.end(), token.begin());
      scratch_.clear();
      encode_ping(scratch_, frame_type::pong, token);
      return send_plain(scratch_);
    }
    case frame_type::pong: {
      // Only ours carry a token we know; the round trip it took is a sample.
      if (f.payload.size() != 8) return;
      std::uint64_t token = 0;
      for (auto b : f.payload) token = token << 8 | b;
      if (token != rtt_ping_token_ || rtt_ping_token_ == 0) return;
      const auto sample = last_rx_ - rtt_ping_sent_;
      if (rtt_samples_ == 0 || sample < min_rtt_) min_rtt_ = sample;
      ++rtt_samples_;
      rtt_ping_token_ = 0;
      // The first round trips after the handshake are slowed by its work:
      // a few more, one after another, find the path's own.
      if (rtt_samples_ < rtt_probes) send_ping(last_rx_);
      return;
    }
    case frame_type::shutdown: {
      std::string reason;
      wire_reader r(f.payload);
      if (!r.str16(reason) || !r.done()) return fail(wire_error::protocol_error, "SHUTDOWN payload malformed");
      peer_shutting_down_ = true;
      if (shutdown_reason_.empty()) shutdown_reason_ = "the peer shut the tunnel down: " + reason;
      return begin_shutdown(last_rx_);
    }
    case frame_type::error: {
      error_info e;
      if (!decode_error_info(f.payload, e, why)) return fail(wire_error::protocol_error, why);
      if (f.header.channel == 0) return finish({e.code, "the peer reported: " + e.reason});
      auto it = channels_.find(f.header.channel);
      if (it == channels_.end()) {
        ++late_frames_;
        return;
      }
      erase_channel(it);
      return emit_error(event_type::channel_freed, f.header.channel, {e.code, "the peer reported: " + e.reason});
    }
    case frame_type::ack:
      if (!resumption_negotiated_) break;
      return handle_ack(f);
    case frame_type::resume:
      return fail(wire_error::unexpected_message, "RESUME on a tunnel that was not resuming");
    case frame_type::connection_request: return handle_connection_request(f);
    case frame_type::connection_ack:
    case frame_type::connection_nack:
    case frame_type::service_begin_request:
    case frame_type::service_begin_ack:
    case frame_type::service_begin_nack:
    case frame_type::connection_peer:
    case frame_type::service_data:
    case frame_type::service_data_pause:
    case frame_type::service_data_resume:
    case frame_type::service_data_credit:
    case frame_type::service_free_request: return handle_channel_frame(f);
    case frame_type::key_update:
      // The record that carried it was the last under the old keys.
      if (!key_updates_negotiated_ || !opener_)
        return fail(wire_error::unexpected_message, "KEY_UPDATE on a tunnel without key updates");
      if (!f.payload.empty()) return fail(wire_error::protocol_error, "KEY_UPDATE with a payload");
      opener_->update_keys();
      ++key_updates_received_;
      return;
    case frame_type::common_unique_info:
    case frame_type::topology_exchange:
    case frame_type::property_exchange:
    case frame_type::access:
    case frame_type::pairing_notice:
      return fail(wire_error::unexpected_message, std::string(to_string(f.header.type)) + " after the tunnel was up");
  }
  if (f.header.type == frame_type::ack)
    return fail(wire_error::unexpected_message, "ACK on a tunnel without resumption");
  fail(wire_error::unknown_type, "unknown frame type");
}

bool tunnel::was_used(std::uint32_t id) const {
  if (id == 0) return false;
  if (is_own_id(id)) return id < next_own_id_;
  return id <= highest_peer_id_;
}

void tunnel::handle_connection_request(const frame_view& f) {
  auto id = f.header.channel;
  if (id == 0 || is_own_id(id) || id <= highest_peer_id_)
    return fail(wire_error::bad_channel, "CONNECTION_REQUEST with channel id " + std::to_string(id) +
                                             " of the wrong parity or already used");
  highest_peer_id_ = id;
  connection_request req;
  std::string why;
  if (!decode_connection_request(f.payload, req, why)) return fail(wire_error::protocol_error, why);
  auto refuse = [&](wire_error code, std::string reason) {
    scratch_.clear();
    encode_error_info(scratch_, frame_type::connection_nack, id, {code, std::move(reason)});
    send_plain(scratch_);
  };
  if (params_.self.role == end_role::client)
    return refuse(wire_error::not_allowed, "this end is a client end and opens no connections");
  if (req.command < 1 || req.command > 3)
    return refuse(wire_error::command_not_supported, "command " + std::to_string(req.command) + " not supported");
  if (channels_.size() >= params_.limits.max_channels)
    return refuse(wire_error::general, "too many channels on this tunnel");
  if (shutting_down()) return refuse(wire_error::shutting_down, "the tunnel is shutting down");
  channel ch = new_channel();
  ch.state = channel_state::accepting;
  ch.command = static_cast<connect_command>(req.command);
  channels_.emplace(id, ch);
  tunnel_event e;
  e.type = event_type::channel_request;
  e.channel = id;
  e.request = std::move(req);
  events_.push_back(std::move(e));
}

void tunnel::handle_channel_frame(const frame_view& f) {
  auto id = f.header.channel;
  auto type = f.header.type;
  auto it = channels_.find(id);
  if (it == channels_.end()) {
    if (was_used(id)) {
      ++late_frames_;  // the channel was freed here while this frame was on its way
      return;
    }
    return fail(wire_error::bad_channel, std::string(to_string(type)) + " for channel " + std::to_string(id) +
                                             " that was never opened");
  }
  auto& ch = it->second;
  auto unexpected = [&] {
    channel_error(id, wire_error::unexpected_message,
                  std::string(to_string(type)) + " not allowed in this state of channel " + std::to_string(id));
  };
  std::string why;
  switch (type) {
    case frame_type::connection_ack: {
      if (!ch.we_opened || ch.state != channel_state::requested) return unexpected();
      address bound;
      if (!decode_address_payload(f.payload, bound, why)) return channel_error(id, wire_error::protocol_error, why);
      ch.state = ch.command == connect_command::bind ? channel_state::listening : channel_state::open;
      return emit_address(event_type::channel_accepted, id, std::move(bound));
    }
    case frame_type::connection_peer: {
      if (!ch.we_opened || ch.state != channel_state::listening) return unexpected();
      address peer;
      if (!decode_address_payload(f.payload, peer, why)) return channel_error(id, wire_error::protocol_error, why);
      ch.state = channel_state::open;
      return emit_address(event_type::bind_peer, id, std::move(peer));
    }
    case frame_type::connection_nack:
    case frame_type::service_begin_nack: {
      if (!ch.we_opened) return unexpected();
      if (type == frame_type::connection_nack && ch.state != channel_state::requested &&
          ch.state != channel_state::listening)
        return unexpected();
      error_info e;
      if (!decode_error_info(f.payload, e, why)) return channel_error(id, wire_error::protocol_error, why);
      erase_channel(it);
      return emit_error(type == frame_type::connection_nack ? event_type::channel_rejected : event_type::channel_freed,
                        id, std::move(e));
    }
    case frame_type::service_begin_request:
      if (ch.we_opened || ch.state != channel_state::open || ch.begun) return unexpected();
      ch.begun = true;
      scratch_.clear();
      encode_empty(scratch_, frame_type::service_begin_ack, id);
      send_plain(scratch_);
      return emit(event_type::service_begin, id);
    case frame_type::service_begin_ack:
      if (!ch.we_opened || !ch.begun) return unexpected();
      return;
    case frame_type::service_data: {
      if (ch.state != channel_state::open || !ch.begun || ch.fin_received) return unexpected();
      const auto ch_command = ch.command;
      if ((f.header.flags & ~flag_fin) != 0) return channel_error(id, wire_error::protocol_error, "unknown SERVICE_DATA flags");
      if (!f.payload.empty()) {
        if (windows_negotiated_) {
          if (f.payload.size() > ch.receive_credit)
            return channel_error(id, wire_error::flow_control_violation,
                                 "channel " + std::to_string(id) + " sent " + std::to_string(f.payload.size()) +
                                     " bytes with only " + std::to_string(ch.receive_credit) + " of credit");
          ch.receive_credit -= f.payload.size();
        }
        ch.buffered += f.payload.size();
        buffered_total_ += f.payload.size();
        if (ch.buffered > params_.limits.high_watermark + params_.limits.pause_slack) {
          return channel_error(id, wire_error::flow_control_violation,
                               "channel " + std::to_string(id) + " sent " + std::to_string(ch.buffered) +
                                   " bytes beyond what was delivered, past the pause limit");
        }
        if (buffered_total_ > params_.limits.max_tunnel_buffered) {
          // Many channels whose apps do not read, each within its window:
          // the one holding the most undelivered bytes goes, the rest stay.
          auto hog = std::max_element(channels_.begin(), channels_.end(), [](const auto& a, const auto& b) {
            return a.second.buffered < b.second.buffered;
          });
          const auto hog_id = hog->first;
          channel_error(hog_id, wire_error::flow_control_violation,
                        "channel " + std::to_string(hog_id) + " holds " + std::to_string(hog->second.buffered) +
                            " undelivered bytes, and the tunnel " + std::to_string(buffered_total_) +
                            ": past its limit of " + std::to_string(params_.limits.max_tunnel_buffered));
          if (hog_id == id) return;
        }
        if (!ch.we_paused && ch.buffered > params_.limits.high_watermark) {
          ch.we_paused = true;
          scratch_.clear();
          encode_empty(scratch_, frame_type::service_data_pause, id);
          send_plain(scratch_);
        }
        tunnel_event e;
        e.type = event_type::data;
        e.channel = id;
        e.data = f.payload;  // in place: valid until the next poll or input
        events_.push_back(std::move(e));
        if (ch_command == connect_command::udp_associate) {
          // A datagram is delivered or dropped at once (5.3): it is taken
          // as it arrives, so its credit flows straight back and a UDP
          // channel never holds buffered bytes.
          consume(id, ch, f.payload.size(), last_rx_);
          return;
        }
      }
      if (f.header.flags & flag_fin) {
        ch.fin_received = true;
        emit(event_type::peer_fin, id);
        maybe_auto_free(id, ch);  // may forget the channel
      }
      return;
    }
    case frame_type::service_data_pause:
      if (ch.paused_by_peer) return;  // a repeated PAUSE is harmless: ignore it
      ch.paused_by_peer = true;
      return update_blocked(id, ch);
    case frame_type::service_data_resume:
      if (!ch.paused_by_peer) return;
      ch.paused_by_peer = false;
      return update_blocked(id, ch);
    case frame_type::service_data_credit: return handle_credit(id, ch, f);
    case frame_type::service_free_request: {
      error_info e;
      if (!decode_error_info(f.payload, e, why)) return channel_error(id, wire_error::protocol_error, why);
      erase_channel(it);
      return emit_error(event_type::channel_freed, id, std::move(e));
    }
    default: return unexpected();
  }
}

void tunnel::channel_error(std::uint32_t id, wire_error code, std::string reason) {
  scratch_.clear();
  encode_error_info(scratch_, frame_type::service_free_request, id, {code, reason});
  send_plain(scratch_);
  if (auto gone = channels_.find(id); gone != channels_.end()) erase_channel(gone);
  emit_error(event_type::channel_freed, id, {code, std::move(reason)});
}

void tunnel::maybe_auto_free(std::uint32_t id, channel& ch) {
  if (!(ch.fin_sent && ch.fin_received)) return;
  scratch_.clear();
  encode_error_info(scratch_, frame_type::service_free_request, id, {wire_error::ok, ""});
  send_plain(scratch_);
  if (auto gone = channels_.find(id); gone != channels_.end()) erase_channel(gone);
}

channel_handle tunnel::open_channel(const connection_request& request) {
  pending_signal signal(*this);
  if (state_ != tunnel_state::up || shutting_down() || channels_.size() >= params_.limits.max_channels) return {};
  if (next_own_id_ > 0xFFFFFFFDu) return {};  // ids exhausted: a new tunnel is needed
  auto id = next_own_id_;
  next_own_id_ += 2;
  channel ch = new_channel();
  ch.we_opened = true;
  ch.state = channel_state::requested;
  ch.command = static_cast<connect_command>(request.command);
  channels_.emplace(id, ch);
  scratch_.clear();
  encode_connection_request(scratch_, id, request);
  send_plain(scratch_);
  return channel_handle(anchor_, id);
}

void tunnel::accept_channel(std::uint32_t id, const address& bound) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end() || it->second.state != channel_state::accepting) return;
  it->second.state = it->second.command == connect_command::bind ? channel_state::listening : channel_state::open;
  scratch_.clear();
  encode_connection_ack(scratch_, id, bound);
  send_plain(scratch_);
}

void tunnel::bind_peer(std::uint32_t id, const address& peer) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end() || it->second.we_opened || it->second.state != channel_state::listening) return;
  it->second.state = channel_state::open;
  scratch_.clear();
  encode_connection_peer(scratch_, id, peer);
  send_plain(scratch_);
}

void tunnel::reject_channel(std::uint32_t id, const error_info& why) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end() || it->second.we_opened ||
      (it->second.state != channel_state::accepting && it->second.state != channel_state::listening))
    return;
  erase_channel(it);
  scratch_.clear();
  encode_error_info(scratch_, frame_type::connection_nack, id, why);
  send_plain(scratch_);
  maybe_end_shutdown();
}

void tunnel::begin_service(std::uint32_t id) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end() || !it->second.we_opened || it->second.state != channel_state::open || it->second.begun)
    return;
  it->second.begun = true;
  scratch_.clear();
  encode_empty(scratch_, frame_type::service_begin_request, id);
  send_plain(scratch_);
}

std::size_t tunnel::send_data(std::uint32_t id, byte_view data, bool fin) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end()) return 0;
  std::size_t allowed = data.size();
  {
    auto& ch = it->second;
    if (ch.state != channel_state::open || !ch.begun || ch.fin_sent) return 0;
    if (windows_negotiated_) allowed = std::min(allowed, ch.send_credit);
    if (resumption_negotiated_) {
      // What is sent is kept until acknowledged, each frame's header too.
      const auto room = replay_room();
      const auto frames = std::max<std::size_t>(1, (allowed + max_data_payload - 1) / max_data_payload);
      allowed = std::min(allowed, room > frames * header_size ? room - frames * header_size : 0);
    }
  }
  if (allowed == 0 && !(fin && data.empty())) return 0;
  if (allowed < data.size()) fin = false;  // FIN goes with the last byte only
  std::size_t sent = 0;
  do {
    auto n = std::min(allowed - sent, max_data_payload);
    const bool last = sent + n == allowed;
    const frame_header h{frame_type::service_data, static_cast<std::uint8_t>(last && fin ? flag_fin : 0), id,
                         static_cast<std::uint32_t>(n)};
    if (sealer_ && !resuming_ && state_ != tunnel_state::closed) {
      // Header and payload go straight into the record: no frame is built.
      const auto head = header_bytes(h);
      if (resumption_negotiated_ && state_ == tunnel_state::up) {
        if (unacked_bytes_ >= ack_piggyback_min) send_ack();  // piggybacked
        replay_.push(head, data.subspan(sent, n));
        ++sent_reliable_;
      }
      seal(head, data.subspan(sent, n));
    } else {
      scratch_.clear();
      write_header(scratch_, h);
      scratch_.insert(scratch_.end(), data.begin() + static_cast<std::ptrdiff_t>(sent),
                      data.begin() + static_cast<std::ptrdiff_t>(sent + n));
      send_plain(scratch_);
    }
    // A failed send closes the tunnel and drops every channel.
    if (state_ == tunnel_state::closed) return 0;
    sent += n;
  } while (sent < allowed);
  auto& ch = channels_.at(id);
  if (windows_negotiated_) ch.send_credit -= sent;
  if (fin) {
    ch.fin_sent = true;
    maybe_auto_free(id, ch);  // may forget the channel
    maybe_end_shutdown();
  }
  // Last, and found again: a FIN both ways forgets the channel.
  if (windows_negotiated_)
    if (auto again = channels_.find(id); again != channels_.end()) update_blocked(id, again->second);
  if (resumption_negotiated_) update_replay_full();
  return sent;
}

tunnel::datagram_verdict tunnel::send_datagram(std::uint32_t id, const address& far, byte_view data) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end()) return datagram_verdict::not_open;
  auto& ch = it->second;
  if (ch.command != connect_command::udp_associate || ch.state != channel_state::open || !ch.begun)
    return datagram_verdict::not_open;
  if (data.size() > max_datagram(far)) return datagram_verdict::too_large;
  if (ch.paused_by_peer) return datagram_verdict::paused;
  const auto size = encoded_size(far) + data.size();
  if (windows_negotiated_ && ch.send_credit < size) return datagram_verdict::no_credit;
  datagram_.clear();  // reused: no allocation per datagram
  encode_datagram(datagram_, far, data);
  // Exactly one frame: send_data frames at most max_data_payload at once.
  const auto sent = send_data(id, datagram_);
  return sent == size ? datagram_verdict::sent : datagram_verdict::not_open;
}

std::size_t tunnel::send_allowance(std::uint32_t id) const {
  auto it = channels_.find(id);
  if (it == channels_.end()) return 0;
  auto allowance = windows_negotiated_ ? it->second.send_credit : std::numeric_limits<std::size_t>::max();
  if (resumption_negotiated_) {
    const auto room = replay_room();
    allowance = std::min(allowance, room > header_size ? room - header_size : 0);
  }
  return allowance;
}

std::size_t tunnel::receive_window(std::uint32_t id) const {
  auto it = channels_.find(id);
  return it == channels_.end() ? 0 : it->second.window;
}

void tunnel::erase_channel(std::map<std::uint32_t, channel>::iterator it) {
  buffered_total_ -= std::min(it->second.buffered, buffered_total_);
  if (it->second.window > initial_credit) grown_windows_ -= std::min(it->second.window - initial_credit, grown_windows_);
  channels_.erase(it);
}

void tunnel::consumed(std::uint32_t id, std::size_t n, clock::time_point now) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  consume(id, it->second, n, now);
}

void tunnel::consume(std::uint32_t id, channel& ch, std::size_t n, clock::time_point now) {
  const auto taken = std::min(n, ch.buffered);
  ch.buffered -= taken;
  buffered_total_ -= std::min(taken, buffered_total_);
  if (ch.we_paused && ch.buffered <= params_.limits.low_watermark) {
    ch.we_paused = false;
    scratch_.clear();
    encode_empty(scratch_, frame_type::service_data_resume, id);
    send_plain(scratch_);
  }
  // Credit comes back for bytes really delivered and taken, never for
  // more: a count that overstates would let the peer overrun the window.
  if (!windows_negotiated_ || taken == 0) return;
  ch.ungranted += taken;
  ch.epoch_consumed += taken;
  std::size_t extra = 0;
  if (ch.epoch_consumed >= ch.window) {
    // The app took a whole window. In less than two round trips, the window
    // (not the path or the app) is what limits this channel: double it. A
    // window of two round trips' worth keeps the path full and no more, so
    // bulk bytes never crowd the hops in front of other channels' frames.
    if (rtt_samples_ > 0 && now - ch.epoch_start < 4 * min_rtt_ && ch.window < params_.limits.max_window) {
      extra = std::min(ch.window, params_.limits.max_window - ch.window);
      // Grown windows together stay within the tunnel's buffer limit, so a
      // peer that keeps to its credit never reaches it by growth alone.
      if (grown_windows_ + extra > params_.limits.max_tunnel_buffered / 2) extra = 0;
      ch.window += extra;
      grown_windows_ += extra;
    }
    ch.epoch_start = now;
    ch.epoch_consumed = 0;
  }
  // Credit goes back in quarters of the window: few frames, and the sender
  // never waits for a whole window to drain.
  if (extra == 0 && ch.ungranted < std::max<std::size_t>(ch.window / 4, 1)) return;
  const auto grant = ch.ungranted + extra;
  ch.ungranted = 0;
  ch.receive_credit += grant;
  scratch_.clear();
  write_header(scratch_, {frame_type::service_data_credit, 0, id, 4});
  wire_writer(scratch_).u32(static_cast<std::uint32_t>(grant));
  send_plain(scratch_);
}

void tunnel::handle_credit(std::uint32_t id, channel& ch, const frame_view& f) {
  if (!windows_negotiated_ || ch.state != channel_state::open)
    return channel_error(id, wire_error::unexpected_message,
                         "SERVICE_DATA_CREDIT not allowed in this state of channel " + std::to_string(id));
  std::uint32_t n = 0;
  wire_reader r(f.payload);
  if (!r.u32(n) || !r.done() || n == 0)
    return channel_error(id, wire_error::protocol_error, "SERVICE_DATA_CREDIT payload malformed");
  if (ch.send_credit + n > max_credit)
    return channel_error(id, wire_error::flow_control_violation,
                         "channel " + std::to_string(id) + " was granted more than 1 GiB of credit");
  ch.send_credit += n;
  update_blocked(id, ch);
}

tunnel::channel tunnel::new_channel() const {
  channel ch;
  if (windows_negotiated_) {
    ch.send_credit = ch.receive_credit = ch.window = initial_credit;
    ch.epoch_start = last_rx_;
  }
  return ch;
}

// The handler hears one PAUSE-like stop while the peer paused us or our
// credit is spent, and one resume when neither holds any more.
void tunnel::update_blocked(std::uint32_t id, channel& ch) {
  const bool blocked = ch.paused_by_peer || (windows_negotiated_ && ch.send_credit == 0) || replay_full_;
  if (blocked == ch.blocked) return;
  ch.blocked = blocked;
  emit(blocked ? event_type::pause : event_type::resume, id);
}

void tunnel::free_channel(std::uint32_t id, const error_info& why) {
  pending_signal signal(*this);
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  erase_channel(it);
  scratch_.clear();
  encode_error_info(scratch_, frame_type::service_free_request, id, why);
  send_plain(scratch_);
  maybe_end_shutdown();
}

bool tunnel::paused_by_peer(std::uint32_t id) const {
  auto it = channels_.find(id);
  return it != channels_.end() && it->second.paused_by_peer;
}

std::size_t tunnel::buffered(std::uint32_t id) const {
  auto it = channels_.find(id);
  return it == channels_.end() ? 0 : it->second.buffered;
}

void tunnel::shutdown(std::string_view reason, clock::time_point now) {
  pending_signal signal(*this);
  if (state_ == tunnel_state::closed || shutting_down_) return;
  if (state_ != tunnel_state::up) {
    // Nothing to drain yet: end now.
    close_tls();
    return finish({wire_error::shutting_down, std::string(reason)});
  }
  shutting_down_ = true;
  if (shutdown_reason_.empty()) shutdown_reason_ = std::string(reason);
  scratch_.clear();
  encode_shutdown(scratch_, reason);
  send_plain(scratch_);
  begin_shutdown(now);
}

void tunnel::begin_shutdown(clock::time_point now) {
  shutdown_deadline_ = std::min(shutdown_deadline_, now + params_.limits.shutdown_grace);
  // Requests still waiting for our answer will not be served now.
  maybe_end_shutdown();
}

void tunnel::maybe_end_shutdown() {
  if (state_ != tunnel_state::up || !shutting_down() || !channels_.empty()) return;
  // Said in an ERROR, not only by closing the hop: with resumption a hop
  // that just ends is a lost hop, and the peer would wait to resume a
  // tunnel that is gone (PROTOCOL.md 3.8).
  fail(wire_error::shutting_down, shutdown_reason_);
}

void tunnel::close(const error_info& why) {
  pending_signal signal(*this);
  fail(why.code, why.reason);
}

void tunnel::fail(wire_error code, std::string reason) {
  if (state_ == tunnel_state::closed) return;
  scratch_.clear();
  encode_error_info(scratch_, frame_type::error, 0, {code, reason});
  if (state_ == tunnel_state::setup) {
    out_.insert(out_.end(), scratch_.begin(), scratch_.end());  // still in the clear
  } else if (sealer_ || (tls_ && tls_->active())) {
    send_link(scratch_);
    close_tls();
  }
  finish({code, std::move(reason)});
}

void tunnel::finish(const error_info& why) {
  state_ = tunnel_state::closed;
  handshake_deadline_ = clock::time_point::max();
  if (closed_notified_) return;
  closed_notified_ = true;
  channels_.clear();
  buffered_total_ = 0;
  grown_windows_ = 0;
  emit_error(event_type::closed, 0, why);
}

clock::time_point tunnel::next_deadline() const {
  const auto per_state = [&] {
    switch (state_) {
      case tunnel_state::setup: return setup_deadline_;
      case tunnel_state::closed: return clock::time_point::max();
      case tunnel_state::tls_handshake:
      case tunnel_state::verifying: return handshake_deadline_;
      case tunnel_state::up:
        if (awaiting_resume_) return handshake_deadline_;
        return std::min({std::max(last_rx_, last_ping_) + params_.limits.keepalive,
                         last_rx_ + params_.limits.dead_after, shutdown_deadline_, ack_deadline_,
                         resuming_ ? clock::time_point::max() : key_update_at_});
    }
    return clock::time_point::max();
  }();
  return resuming_ ? std::min(per_state, resume_deadline_) : per_state;
}

void tunnel::on_timer(clock::time_point now) {
  pending_signal signal(*this);
  if (resuming_ && now >= resume_deadline_) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(params_.limits.resume_window).count();
    fail(wire_error::timeout, "the tunnel could not be resumed within " + std::to_string(secs) + " s");
    return;
  }
  if (state_ == tunnel_state::setup) {
    if (now >= setup_deadline_) {
      // A resumption hop whose middle the peer did not reach: try another.
      if (resuming_) return void(lose_hop("the peer did not come to this middle proxy in time", now));
      // Not a failure: the owner sets up again at once with the new pairing id.
      if (refresh_first()) return finish({wire_error::setup_timeout, std::string(epoch_turned_reason)});
      fail(wire_error::setup_timeout, "no peer setup arrived through the middle proxy in time");
    }
    return;
  }
  if (state_ == tunnel_state::tls_handshake || state_ == tunnel_state::verifying || awaiting_resume_) {
    if (now >= handshake_deadline_) {
      if (resuming_) return void(lose_hop("the resumption handshake did not finish in time", now));
      fail(wire_error::setup_timeout, "the TLS handshake with the peer did not finish in time");
    }
    return;
  }
  if (state_ != tunnel_state::up) return;
  if (now >= shutdown_deadline_) {
    fail(wire_error::shutting_down, "channels did not end within the shutdown grace time");
    return;
  }
  if (now >= last_rx_ + params_.limits.dead_after) {
    // With resumption a silent hop is a lost hop: another may reach the peer.
    if (lose_hop("nothing heard from the peer for too long", now)) return;
    fail(wire_error::timeout, "nothing heard from the peer for too long: the tunnel is dead");
    return;
  }
  if (now >= std::max(last_rx_, last_ping_) + params_.limits.keepalive) send_ping(now);
  if (now >= key_update_at_ && sealer_ && !resuming_) update_send_keys(now);
  if (now >= ack_deadline_) {
    ack_deadline_ = clock::time_point::max();
    if (handled_ > acked_sent_) send_ack();
  }
}

void tunnel::hop_lost(std::string why, clock::time_point now) {
  pending_signal signal(*this);
  if (state_ == tunnel_state::closed) return;
  if (!lose_hop(why, now)) fail(wire_error::general, std::move(why));
}

void tunnel::link_failed(wire_error code, std::string reason) {
  if (lose_hop(reason, last_rx_)) return;
  fail(code, std::move(reason));
}

bool tunnel::lose_hop(std::string why, clock::time_point now) {
  if (!can_resume() || state_ == tunnel_state::closed) return false;
  if (!resuming_) {
    resuming_ = true;
    lost_at_ = now;
    resume_deadline_ = now + params_.limits.resume_window;
  }
  start_link(now);
  emit_error(event_type::hop_lost, 0, {wire_error::general, std::move(why)});
  return true;
}

// A fresh hop for the same tunnel: a new setup whose pairing id comes from
// the resumption key (a middle cannot link it to the first), a fresh nonce,
// and everything of the old hop's byte stream forgotten.
void tunnel::start_link(clock::time_point now) {
  tls_.reset();
  sealer_.reset();
  // A read into the opener's (or in_'s) buffer may still be under way on
  // the lost hop: kept until the next receive_space.
  space_void_ = true;
  if (opener_) retired_opener_ = std::move(opener_);
  retired_in_ = std::move(in_);
  in_ = bytes{};
  in_keys_.reset();
  tls_in_.clear();
  tls_at_ = 0;
  plain_in_ = frame_decoder{};
  space_in_opener_ = false;
  setup_reader_ = setup_reader{};
  setup_fed_ = false;
  secure_step_ = 0;
  peer_clear_info_frame_.clear();
  awaiting_resume_ = false;
  unacked_bytes_ = 0;
  ack_deadline_ = clock::time_point::max();
  out_.clear();  // what was meant for the lost hop; reliable frames are in the replay buffer
  state_ = tunnel_state::setup;
  link_self_ = params_.self;
  link_self_.pairing = resume_pairing_id(*resumption_);
  rng_.randomize(link_self_.nonce.data(), link_self_.nonce.size());
  our_setup_ = make_setup(link_self_, {hop_kind_of(params_.self.role), params_.self.name, ""});
  out_ = hop_opening(our_setup_, params_.access);
  last_rx_ = now;
  // Each hop gets a handshake's time to meet the peer at its middle: both
  // ends try the middles in the same order, so they meet at the first one
  // both reach.
  setup_deadline_ = std::min(now + params_.limits.handshake_timeout, resume_deadline_);
  handshake_deadline_ = clock::time_point::max();
}

void tunnel::handle_resume(const frame_view& f) {
  std::array<std::uint8_t, 16> session{};
  std::uint64_t handled = 0;
  wire_reader r(f.payload);
  if (!r.fixed(session) || !r.u64(handled) || !r.done()) return fail(wire_error::protocol_error, "RESUME payload malformed");
  if (session != resumption_->session_id) return fail(wire_error::setup_mismatch, "RESUME names another session");
  if (handled < peer_acked_ || handled > sent_reliable_)
    return fail(wire_error::protocol_error, "the peer resumed having handled " + std::to_string(handled) +
                                                " frames, but " + std::to_string(peer_acked_) + " were acknowledged and " +
                                                std::to_string(sent_reliable_) + " sent: the counts disagree");
  replay_.drop(handled - peer_acked_);
  peer_acked_ = handled;
  awaiting_resume_ = false;
  resuming_ = false;
  handshake_deadline_ = clock::time_point::max();
  resume_deadline_ = clock::time_point::max();
  // What the peer lacks, in order, then whatever comes next.
  // Records here end wherever the replay buffer's chunks do, inside frames:
  // a key update waits until the last replayed frame is whole.
  replay_.for_each_span([this](byte_view again) {
    for (std::size_t at = 0; at < again.size(); at += max_record_plaintext)
      seal(again.subspan(at, std::min(max_record_plaintext, again.size() - at)), {}, false);
  });
  maybe_update_keys();
  ++resumptions_;
  tunnel_event e;
  e.type = event_type::resumed;
  e.amount = replay_.bytes_kept();
  events_.push_back(std::move(e));
  last_ping_ = last_rx_;
  update_replay_full();
}

void tunnel::keep_reliable(byte_view frames) {
  // Whole frames we built ourselves: their headers are trusted.
  bool reliable = false;
  while (frames.size() >= header_size) {
    const auto type = static_cast<frame_type>(frames[0]);
    const std::size_t length = static_cast<std::size_t>(frames[8]) << 24 | static_cast<std::size_t>(frames[9]) << 16 |
                               static_cast<std::size_t>(frames[10]) << 8 | frames[11];
    const auto frame = frames.first(std::min(frames.size(), header_size + length));
    if (is_reliable(type)) {
      if (!reliable && unacked_bytes_ >= ack_piggyback_min) send_ack();  // piggybacked, ahead of them
      reliable = true;
      replay_.push(frame);
      ++sent_reliable_;
    }
    frames = frames.subspan(frame.size());
  }
  if (reliable) update_replay_full();
}

void tunnel::note_handled(const frame_view& f) {
  ++handled_;
  unacked_bytes_ += header_size + f.payload.size();
  if (unacked_bytes_ >= ack_every)
    send_ack();
  else if (ack_deadline_ == clock::time_point::max())
    ack_deadline_ = last_rx_ + ack_delay;
}

void tunnel::send_ack() {
  if (!sealer_ || resuming_ || state_ == tunnel_state::closed) return;
  scratch_ack_.clear();
  write_header(scratch_ack_, {frame_type::ack, 0, 0, 8});
  wire_writer(scratch_ack_).u64(handled_);
  // Straight into a record: an ACK is not itself reliable.
  seal(scratch_ack_);
  acked_sent_ = handled_;
  unacked_bytes_ = 0;
  // The 50 ms deadline stays: when it comes, it acknowledges what came
  // since, if anything (early, never late). Moving it with every ACK made
  // the driver re-arm its timer for every 256 KiB of a bulk transfer.
}

void tunnel::handle_ack(const frame_view& f) {
  std::uint64_t n = 0;
  wire_reader r(f.payload);
  if (!r.u64(n) || !r.done()) return fail(wire_error::protocol_error, "ACK payload malformed");
  if (n < peer_acked_ || n > sent_reliable_)
    return fail(wire_error::protocol_error, "ACK of " + std::to_string(n) + " frames, but " +
                                                std::to_string(peer_acked_) + " were acknowledged and " +
                                                std::to_string(sent_reliable_) + " sent");
  replay_.drop(n - peer_acked_);
  peer_acked_ = n;
  update_replay_full();
}

std::size_t tunnel::replay_room() const {
  const auto kept = replay_.bytes_kept();
  return kept >= params_.limits.replay_buffer ? 0 : params_.limits.replay_buffer - kept;
}

// Full: not even one more frame header fits (send_allowance is then 0).
bool tunnel::replay_is_full() const { return replay_room() <= header_size; }

// Every channel hears one pause when the replay buffer fills and one resume
// when ACKs free room (on top of its own PAUSE and credit).
void tunnel::update_replay_full() {
  const bool full = replay_is_full();
  if (full == replay_full_) return;
  replay_full_ = full;
  for (auto& [id, ch] : channels_) update_blocked(id, ch);
}

void tunnel::send_ping(clock::time_point now) {
  last_ping_ = now;
  std::array<std::uint8_t, 8> token{};
  auto c = ++ping_counter_;
  // The latest PING is the one timed; an older one's PONG is not a sample.
  rtt_ping_token_ = c;
  rtt_ping_sent_ = now;
  for (int i = 7; i >= 0; --i, c >>= 8) token[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(c);
  scratch_.clear();
  encode_ping(scratch_, frame_type::ping, token);
  send_plain(scratch_);
}

}  // namespace lstp
