// One end of an LSTP tunnel, without I/O (PROTOCOL.md 3, 5, 6).
//
// Bytes from the hop go into `receive` (or `receive_space` and `received`);
// bytes for the hop accumulate in `output()` (the driver swaps them out and
// writes them). Time comes in as arguments, and `next_deadline` tells the
// driver when to call `on_timer`. What happens reaches the application as
// events it polls (`poll_event`, as ngtcp2 and Boost.MySQL do): the tunnel
// never calls out while it works, so the application may issue any channel
// command between two polls. Input is handled as it is polled, one frame at
// a time, so a command issued after an event applies before the next frame
// is read, and a data event's bytes are read in place, never copied.
// `on_pending` (optional) hears when output or events wait, so a driver
// wakes its writer without being told by every caller.
//
// The tunnel owns the protocol state of every channel (which messages are
// allowed when, flow-control accounting); the application owns the sockets.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "lstp/access.hpp"
#include "lstp/frame.hpp"
#include "lstp/messages.hpp"
#include "lstp/record_layer.hpp"
#include "lstp/replay_buffer.hpp"
#include "lstp/secrets.hpp"
#include "lstp/setup.hpp"
#include "lstp/tls_engine.hpp"
#include "lstp/tunnel_limits.hpp"

namespace lstp {


// Every channel's credit in each direction when it opens (PROTOCOL.md 5.4).
inline constexpr std::size_t initial_credit = 256 * 1024;
// PINGs sent one after another once the tunnel is up, to time its round trip.
inline constexpr std::uint64_t rtt_probes = 4;
// More credit than this outstanding is a FLOW_CONTROL_VIOLATION.
inline constexpr std::size_t max_credit = std::size_t{1} << 30;

// COMMON_UNIQUE_INFO `features` bit: this end speaks credit windows.
inline constexpr std::uint32_t feature_credit_windows = 0x2;
// COMMON_UNIQUE_INFO `features` bit: this end resumes tunnels (PROTOCOL.md 3.8).
inline constexpr std::uint32_t feature_resumption = 0x4;
// COMMON_UNIQUE_INFO `features` bit: this end updates record keys (KEY_UPDATE, PROTOCOL.md 3.5).
inline constexpr std::uint32_t feature_key_update = 0x8;
// A receiver acknowledges at the latest this long after an unacknowledged
// reliable frame arrived, and at once when this many bytes of them wait.
inline constexpr clock::duration ack_delay = std::chrono::milliseconds(50);
inline constexpr std::size_t ack_every = 256 * 1024;
// An ACK rides along with a frame going out anyway only once this much is
// unacknowledged: piggybacking on every frame sent a record per credit
// frame (a download's credit grants one way, data the other), which cost
// more than the acknowledgements themselves. Below it, the 50 ms deadline
// acknowledges.
inline constexpr std::size_t ack_piggyback_min = 64 * 1024;

// Why a setup ended that waited into the next pairing epoch (tunnel_limits::
// setup_refresh): its owner sets up again at once, with the new pairing id.
inline constexpr std::string_view epoch_turned_reason = "the pairing epoch turned: setting up again with the new pairing id";

struct tunnel_params {
  common_unique_info self;  // pairing id and a fresh random nonce filled in
  secret_bytes psk;          // 32 bytes
  tunnel_limits limits;
  std::optional<middle_access> access;  // sent as ACCESS before the setup
  // Whether a nonce is one of this end's own live attempts (an end never
  // pairs with itself); absent: only this tunnel's own nonce counts.
  std::function<bool(const nonce&)> is_own_nonce;
  // Whether a PAIRING_NOTICE's hint is that of a fresh setup of this tunnel
  // (its pairing id for this epoch or the ones next to it).
  std::function<bool(const pairing_hint&)> is_fresh_peer_setup;
};

enum class tunnel_state {
  setup,          // our setup is sent; waiting for the peer's, relayed by the middles
  tls_handshake,  // election done; TLS handshake in progress
  verifying,      // TLS up; waiting for the peer's secure setup and properties
  up,             // channels may be opened
  closed,         // finished; only `output()` may still hold bytes to flush
};

struct tunnel_info {
  topology path;  // this end's view: self, middles nearest first, peer
  bool master = false;
  common_unique_info peer;
  properties peer_properties;
  std::string cipher;
};

enum class event_type : std::uint8_t {
  up,                // the tunnel is up: channels may be opened (info())
  channel_request,   // the peer asks us to connect: answer with accept_channel or reject_channel
  channel_accepted,  // CONNECTION_ACK; for a BIND, the first reply (where the far end listens)
  bind_peer,         // BIND: a peer connected to the far end's listener; data may flow now
  channel_rejected,  // CONNECTION_NACK (also a BIND's refused second reply)
  service_begin,     // the opener began the service: the acceptor may now send data
  data,              // channel bytes for the local socket; report delivery with `consumed`
  peer_fin,          // the peer ended its direction of the channel
  pause,             // stop sending on the channel (PAUSE, or its credit is spent)
  resume,            // sending may go on
  channel_freed,     // the peer ended the channel or the protocol aborted it; the tunnel forgot it
  hop_lost,          // resumption: the hop is gone, the tunnel and its channels wait; bring a new hop
  resumed,           // resumption: the tunnel goes on over the new hop; `amount` bytes were replayed
  closed,            // the tunnel is closed; the last event
};

struct tunnel_event {
  event_type type = event_type::closed;
  std::uint32_t channel = 0;
  // data: the bytes, read in place: valid until the next poll_event() or
  // input (receive, receive_space, received, on_timer).
  byte_view data;
  address where;               // channel_accepted: where the far end is bound; bind_peer: the peer
  connection_request request;  // channel_request
  error_info error;            // channel_rejected, channel_freed, hop_lost, closed
  std::uint64_t amount = 0;    // resumed: bytes sent again
};

// Polls every waiting event of `t` and hands each to the matching call, for
// applications that prefer a handler. Called from outside the tunnel (the
// driver, a test), so a handler may issue commands; events they cause are
// handed on in the same call.
class tunnel_handler {
 public:
  virtual ~tunnel_handler() = default;
  virtual void on_up(const tunnel_info& info) = 0;
  virtual void on_channel_request(std::uint32_t id, const connection_request& request) = 0;
  virtual void on_channel_accepted(std::uint32_t id, const address& bound) = 0;
  virtual void on_bind_peer(std::uint32_t id, const address& peer) = 0;
  virtual void on_channel_rejected(std::uint32_t id, const error_info& why) = 0;
  virtual void on_service_begin(std::uint32_t id) = 0;
  // Copy the bytes or write them out now: the span dies on return.
  virtual void on_data(std::uint32_t id, byte_view data) = 0;
  virtual void on_peer_fin(std::uint32_t id) = 0;
  virtual void on_pause(std::uint32_t id) = 0;
  virtual void on_resume(std::uint32_t id) = 0;
  // Not called for channels the application freed nor for the normal end
  // after FIN both ways.
  virtual void on_channel_freed(std::uint32_t id, const error_info& why) = 0;
  // Resumption (PROTOCOL.md 3.8): the hop is gone and the tunnel waits for
  // a new one; then it went on over it, `replayed` bytes sent again.
  virtual void on_hop_lost(const error_info& why) { (void)why; }
  virtual void on_resumed(std::uint64_t replayed) { (void)replayed; }
  virtual void on_closed(const error_info& why) = 0;
};

class tunnel;

// A channel this end opened: frees it (SERVICE_FREE_REQUEST) when dropped
// while the tunnel still has it, so no path forgets one. Does nothing once
// the channel ended or the tunnel is gone.
class channel_handle {
 public:
  channel_handle() = default;
  channel_handle(channel_handle&& o) noexcept : anchor_(std::move(o.anchor_)), id_(std::exchange(o.id_, 0)) {}
  channel_handle& operator=(channel_handle&& o) noexcept;
  channel_handle(const channel_handle&) = delete;
  channel_handle& operator=(const channel_handle&) = delete;
  ~channel_handle() { reset(); }

  explicit operator bool() const { return id_ != 0; }
  std::uint32_t operator*() const { return id_; }
  std::uint32_t id() const { return id_; }
  // Frees the channel now with `why` (if the tunnel still has it).
  void reset(const error_info& why = {wire_error::general, "the channel was abandoned"});

 private:
  friend class tunnel;
  channel_handle(std::weak_ptr<tunnel*> anchor, std::uint32_t id) : anchor_(std::move(anchor)), id_(id) {}
  std::weak_ptr<tunnel*> anchor_;
  std::uint32_t id_ = 0;
};

class tunnel final : public tls_sink {
 public:
  tunnel(tunnel_params params, Botan::RandomNumberGenerator& rng, clock::time_point now);
  ~tunnel() override;
  tunnel(const tunnel&) = delete;
  tunnel& operator=(const tunnel&) = delete;

  // The next event, handling input as far as it takes to find one; nullopt
  // when nothing more can happen until new input, time or a command.
  std::optional<tunnel_event> poll_event();
  // Called when output or events wait after a command, an input or a poll,
  // e.g. to wake a driver's writer. It must not call into the tunnel.
  void on_pending(std::function<void()> signal) { on_pending_ = std::move(signal); }

  // --- hop side ---
  // The hop ended or failed. With resumption, a tunnel that was up keeps
  // its channels, reports hop_lost, and its output() now holds the setup
  // for a new hop (PROTOCOL.md 3.8); otherwise it closes with `why`.
  void hop_lost(std::string why, clock::time_point now);
  // Waiting for a new hop, or on one whose resumption is not complete.
  bool resuming() const { return resuming_; }
  std::uint64_t resumptions() const { return resumptions_; }
  // Input is kept and handled as events are polled.
  void receive(byte_view bytes, clock::time_point now);
  // The same without a copy: read at most `want` bytes from the hop into
  // receive_space(want), then call received() with how many came.
  // A hop lost meanwhile (hop_lost, or a link failure) voids the space:
  // its buffer stays allocated until the next receive_space, so a read still
  // under way into it writes into memory that is ours, and received() then
  // takes nothing (those bytes belonged to the lost hop).
  std::span<std::uint8_t> receive_space(std::size_t want);
  void received(std::size_t n, clock::time_point now);
  bytes& output() { return out_; }
  clock::time_point next_deadline() const;
  void on_timer(clock::time_point now);

  tunnel_state state() const { return state_; }
  const tunnel_info& info() const { return info_; }

  // --- channel commands (state up; ignored otherwise) ---
  // Opens a channel; an empty handle when the tunnel is not up or at its
  // limit. Dropping the handle frees the channel.
  channel_handle open_channel(const connection_request& request);
  // Acceptor: CONNECTION_ACK. For a BIND channel, `bound` is where we
  // listen, and the channel waits for bind_peer.
  void accept_channel(std::uint32_t id, const address& bound);
  // Acceptor of a BIND channel: the expected peer connected (CONNECTION_PEER).
  void bind_peer(std::uint32_t id, const address& peer);
  // Acceptor: CONNECTION_NACK, also while a BIND channel listens.
  void reject_channel(std::uint32_t id, const error_info& why);
  // Opener: the app has been told; data may flow both ways now.
  void begin_service(std::uint32_t id);
  // Sends data (at most max_data_payload per call is framed at once; larger
  // spans are split). `fin` half-closes our direction after the data.
  // Returns how many bytes were taken: with credit windows, at most
  // send_allowance(id); `fin` goes only with the last byte.
  std::size_t send_data(std::uint32_t id, byte_view data, bool fin = false);
  // How many bytes send_data takes now (unbounded without credit windows).
  std::size_t send_allowance(std::uint32_t id) const;
  // UDP channels (PROTOCOL.md 5.3): one datagram is one SERVICE_DATA frame,
  // `far` then the bytes, sent whole or dropped, never split nor queued.
  enum class datagram_verdict {
    sent,
    too_large,  // address and bytes exceed one frame (max_datagram)
    no_credit,  // the channel's credit does not cover it now
    paused,     // the peer paused the channel
    not_open,   // no such UDP channel, or not begun
  };
  datagram_verdict send_datagram(std::uint32_t id, const address& far, byte_view data);
  // The largest datagram that fits one frame with `far` as its address.
  static std::size_t max_datagram(const address& far) { return max_data_payload - encoded_size(far); }
  // The application wrote `n` bytes of this channel to its local socket.
  void consumed(std::uint32_t id, std::size_t n, clock::time_point now);
  // Ends the channel now; code ok after a normal end, else an abort.
  void free_channel(std::uint32_t id, const error_info& why);
  // Graceful end (PROTOCOL.md 6): no new channels either way; the tunnel
  // closes once the open channels have ended, or after shutdown_grace.
  void shutdown(std::string_view reason, clock::time_point now);
  bool shutting_down() const { return shutting_down_ || peer_shutting_down_; }
  // Aborts the tunnel: ERROR to the peer if possible, then closed.
  void close(const error_info& why);

  // Test seam: sends whole frames inside TLS as they are, bypassing every
  // channel rule, to play a misbehaving peer.
  void send_raw_frames(const bytes& frames) {
    send_plain(frames);
    signal_pending();
  }

  // Both directions run on the LSTP record layer (PROTOCOL.md 3.5).
  bool record_layer_active() const { return sealer_ && opener_; }
  // Both ends bound each channel's bytes in flight (PROTOCOL.md 5.4).
  bool credit_windows_active() const { return windows_negotiated_; }
  // Both ends count, acknowledge and keep reliable frames (PROTOCOL.md 3.8).
  bool resumption_active() const { return resumption_negotiated_; }
  bool key_updates_active() const { return key_updates_negotiated_; }
  std::uint64_t key_updates_sent() const { return key_updates_sent_; }
  std::uint64_t key_updates_received() const { return key_updates_received_; }
  // Reliable frames: sent, acknowledged by the peer, and the peer's handled here.
  std::uint64_t reliable_sent() const { return sent_reliable_; }
  std::uint64_t reliable_acked() const { return peer_acked_; }
  std::uint64_t reliable_handled() const { return handled_; }
  // Bytes of reliable frames kept until the peer acknowledges them.
  std::size_t replay_bytes() const { return replay_.bytes_kept(); }
  // The shortest PING round trip seen; zero until the first PONG.
  clock::duration min_rtt() const { return min_rtt_; }
  std::size_t receive_window(std::uint32_t id) const;
  bool channel_exists(std::uint32_t id) const { return channels_.count(id) != 0; }
  std::size_t channel_count() const { return channels_.size(); }
  bool paused_by_peer(std::uint32_t id) const;
  // Frames for channels already freed: normal, dropped and counted.
  std::uint64_t late_frames() const { return late_frames_; }
  std::size_t buffered(std::uint32_t id) const;

 private:
  enum class channel_state {
    requested,  // we sent CONNECTION_REQUEST; waiting for ACK/NACK; no data either way
    accepting,  // the peer asked; our side is connecting; no data either way
    listening,  // BIND: ACK sent or received; waiting for CONNECTION_PEER; no data either way
    open,       // ACK sent or received; data after BEGIN (see `begun`)
  };
  struct channel {
    channel_state state = channel_state::requested;
    bool we_opened = false;
    connect_command command = connect_command::tcp_connect;
    bool begun = false;         // SERVICE_BEGIN_REQUEST sent (opener) or received (acceptor)
    bool fin_sent = false;
    bool fin_received = false;
    bool paused_by_peer = false;
    bool we_paused = false;
    std::size_t buffered = 0;   // delivered to the app, not yet consumed
    // Credit windows (PROTOCOL.md 5.4).
    std::size_t send_credit = 0;     // bytes we may still send
    std::size_t receive_credit = 0;  // bytes the peer may still send us
    std::size_t window = 0;          // what we let the peer have in flight
    std::size_t ungranted = 0;       // consumed, not yet given back as credit
    std::size_t epoch_consumed = 0;  // consumed since epoch_start
    clock::time_point epoch_start{};
    bool blocked = false;  // told the handler to stop (PAUSE or no credit)
  };

  // Handles one unit of waiting input (a frame, a record, a TLS record or
  // the setup); false when none is ready.
  bool advance();
  bool advance_tls();
  void emit(event_type type, std::uint32_t id = 0) { events_.push_back(tunnel_event{type, id, {}, {}, {}, {}}); }
  void emit_error(event_type type, std::uint32_t id, error_info why);
  void emit_address(event_type type, std::uint32_t id, address where);
  void signal_pending() {
    if (on_pending_ && (!out_.empty() || !events_.empty())) on_pending_();
  }
  struct pending_signal;  // signals at the end of a command

  // tls_sink
  void tls_ciphertext(byte_view data) override;
  void tls_plaintext(byte_view data) override;
  void tls_activated(std::string_view cipher) override;
  void tls_closed() override;

  void handle_setup(clock::time_point now);
  // Resumption: the hop is lost; the tunnel waits for a new one, on which
  // start_link has put a fresh setup. False when it cannot resume (then
  // the caller fails as before).
  bool lose_hop(std::string why, clock::time_point now);
  void start_link(clock::time_point now);
  bool can_resume() const { return resumption_negotiated_ && resumption_ && (resuming_ || state_ == tunnel_state::up); }
  // A failure of the hop or its handshake: a lost hop if it can resume, else the end.
  void link_failed(wire_error code, std::string reason);
  void handle_resume(const frame_view& f);
  // Frames for the hop as they are: TLS or LSTP records (no counting).
  void send_link(const bytes& frames);
  bool switch_to_records_in();
  void handle_frame(const frame_view& f);
  void handle_verifying(const frame_view& f);
  void handle_up(const frame_view& f);
  void handle_channel_frame(const frame_view& f);
  void handle_connection_request(const frame_view& f);
  void send_plain(const bytes& frame);  // encrypts one or more whole frames
  void close_tls();
  void fail(wire_error code, std::string reason);
  void finish(const error_info& why);
  void channel_error(std::uint32_t id, wire_error code, std::string reason);
  void maybe_auto_free(std::uint32_t id, channel& ch);
  // Forgets a channel, and its share of the tunnel's totals.
  void erase_channel(std::map<std::uint32_t, channel>::iterator it);
  channel new_channel() const;
  void update_blocked(std::uint32_t id, channel& ch);
  // Counts `n` delivered bytes of `ch` taken: resume and credit follow.
  void consume(std::uint32_t id, channel& ch, std::size_t n, clock::time_point now);
  void handle_credit(std::uint32_t id, channel& ch, const frame_view& f);
  void send_ping(clock::time_point now);
  // Resumption: keeps and counts the reliable frames among `frames` (whole
  // frames, as sent while up), acknowledges what we handled, and bounds
  // what is kept.
  void keep_reliable(byte_view frames);
  void note_handled(const frame_view& f);
  void send_ack();
  void handle_ack(const frame_view& f);
  std::size_t replay_room() const;
  bool replay_is_full() const;
  void update_replay_full();
  void begin_shutdown(clock::time_point now);
  void maybe_end_shutdown();
  // Channel ids keep the parity of the first election, whatever later
  // hops of a resumed tunnel elect.
  bool is_own_id(std::uint32_t id) const { return (id % 2 == 1) == ids_master_; }
  bool was_used(std::uint32_t id) const;

  tunnel_params params_;
  Botan::RandomNumberGenerator& rng_;
  std::deque<tunnel_event> events_;
  std::function<void()> on_pending_;
  // What channel_handles see: this tunnel while it lives.
  std::shared_ptr<tunnel*> anchor_;
  tunnel_state state_ = tunnel_state::setup;
  tunnel_info info_;
  setup_message our_setup_;
  setup_reader setup_reader_;
  std::unique_ptr<tls_engine> tls_;
  // The LSTP record layer, once negotiated (both COMMON_UNIQUE_INFO carry
  // the feature) and switched to: out after our PROPERTY_EXCHANGE, in after
  // the TLS record that carried the peer's.
  bool records_negotiated_ = false;
  bool windows_negotiated_ = false;
  // Resumption (PROTOCOL.md 3.8).
  bool resumption_negotiated_ = false;
  bool key_updates_negotiated_ = false;
  clock::time_point key_update_at_ = clock::time_point::max();  // the time-based KEY_UPDATE
  std::uint64_t key_updates_sent_ = 0, key_updates_received_ = 0;
  // Seals into a record and, with key updates, sends KEY_UPDATE and moves to
  // the next keys once key_update_bytes went under the current ones.
  // `frame_boundary`: the record ends where a frame does (only there may a
  // KEY_UPDATE follow).
  void seal(byte_view head, byte_view body = {}, bool frame_boundary = true);
  void maybe_update_keys();
  void update_send_keys(clock::time_point now);
  std::uint64_t sent_reliable_ = 0;  // reliable frames we sent
  std::uint64_t peer_acked_ = 0;     // of those, what the peer acknowledged
  std::uint64_t handled_ = 0;        // the peer's reliable frames we handled
  std::uint64_t acked_sent_ = 0;     // what our last ACK said
  std::size_t unacked_bytes_ = 0;    // handled since our last ACK
  clock::time_point ack_deadline_ = clock::time_point::max();
  replay_buffer replay_;
  bytes scratch_ack_;  // send_ack's frame: others may be in scratch_ meanwhile
  std::optional<resumption_keys> resumption_;  // exported at the first up
  common_unique_info link_self_;               // our setup's info on the current hop
  bool ids_master_ = false;
  bool resuming_ = false;         // from a lost hop until the peer's RESUME
  bool awaiting_resume_ = false;  // the new hop is verified; its first frame must be RESUME
  clock::time_point resume_deadline_ = clock::time_point::max();
  clock::time_point lost_at_{};
  std::uint64_t resumptions_ = 0;
  bool replay_full_ = false;  // channels are held until ACKs free room
  clock::duration min_rtt_{0};
  clock::time_point rtt_ping_sent_{};  // when the PING with rtt_ping_token_ left
  std::uint64_t rtt_ping_token_ = 0;
  std::uint64_t rtt_samples_ = 0;
  std::unique_ptr<record_sealer> sealer_;
  std::unique_ptr<record_opener> opener_;
  std::optional<record_keys> in_keys_;
  bytes in_;                  // receive_space() before the record layer
  bool space_in_opener_ = false;  // receive_space() handed out the opener's buffer
  bool space_void_ = false;       // the hop was lost since receive_space()
  std::unique_ptr<record_opener> retired_opener_;  // the lost hop's, while a read may still write into it
  bytes retired_in_;
  bool setup_fed_ = false;        // the setup reader has bytes not yet looked at
  // TLS records from the peer, fed to Botan one at a time until the switch
  // to LSTP records; [tls_at_, end) is not fed yet.
  bytes tls_in_;
  std::size_t tls_at_ = 0;
  frame_decoder plain_in_;
  bytes out_;
  bytes scratch_;
  bytes datagram_;  // send_datagram's encoding
  // verifying phase
  int secure_step_ = 0;
  bytes peer_clear_info_frame_;
  // channels
  std::map<std::uint32_t, channel> channels_;
  std::size_t buffered_total_ = 0;  // sum of the channels' `buffered`
  std::size_t grown_windows_ = 0;   // sum of what the channels' windows grew past initial_credit
  std::uint32_t next_own_id_ = 0;
  std::uint32_t highest_peer_id_ = 0;
  std::uint64_t late_frames_ = 0;
  // time
  clock::time_point handshake_deadline_ = clock::time_point::max();
  clock::time_point setup_deadline_;
  bool refresh_first() const {
    return params_.limits.setup_refresh > clock::duration::zero() && params_.limits.setup_refresh < params_.limits.setup_wait;
  }
  clock::time_point shutdown_deadline_ = clock::time_point::max();
  std::string shutdown_reason_;
  bool shutting_down_ = false;       // we sent SHUTDOWN
  bool peer_shutting_down_ = false;  // the peer sent SHUTDOWN
  clock::time_point last_rx_;
  clock::time_point last_ping_;
  std::uint64_t ping_counter_ = 0;
  bool closed_notified_ = false;
};

// Hands every waiting event of `t` to `h` (see tunnel_handler).
void dispatch_events(tunnel& t, tunnel_handler& h);
// Hands one polled event to `h`.
void deliver_event(tunnel& t, tunnel_handler& h, const tunnel_event& e);

}  // namespace lstp
