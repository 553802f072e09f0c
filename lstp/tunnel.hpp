// One end of an LSTP tunnel, without I/O (PROTOCOL.md 3, 5, 6).
//
// Bytes from the hop go into `receive`; bytes for the hop accumulate in
// `output()` (the driver swaps them out and writes them). Time comes in as
// arguments, and `next_deadline` tells the driver when to call `on_timer`.
// Events reach the application through `tunnel_handler`, synchronously, from
// inside `receive` and `on_timer`; the handler may call the tunnel's channel
// commands from a callback.
//
// The tunnel owns the protocol state of every channel (which messages are
// allowed when, flow-control accounting); the application owns the sockets.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "lstp/access.hpp"
#include "lstp/frame.hpp"
#include "lstp/messages.hpp"
#include "lstp/record_layer.hpp"
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

struct tunnel_params {
  common_unique_info self;  // pairing id and a fresh random nonce filled in
  std::array<std::uint8_t, 32> psk{};
  tunnel_limits limits;
  std::optional<middle_access> access;  // sent as ACCESS before the setup
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

class tunnel_handler {
 public:
  virtual ~tunnel_handler() = default;
  virtual void on_up(const tunnel_info& info) = 0;
  // The peer asks us to connect somewhere: answer later with
  // accept_channel or reject_channel.
  virtual void on_channel_request(std::uint32_t id, const connection_request& request) = 0;
  // CONNECTION_ACK. For a BIND channel this is the first reply (where the
  // far end listens); the second comes through on_bind_peer.
  virtual void on_channel_accepted(std::uint32_t id, const address& bound) = 0;
  // BIND: a peer connected to the far end's listener; data may flow now.
  virtual void on_bind_peer(std::uint32_t id, const address& peer) = 0;
  virtual void on_channel_rejected(std::uint32_t id, const error_info& why) = 0;
  // The opener began the service: the acceptor may now send data.
  virtual void on_service_begin(std::uint32_t id) = 0;
  // Channel data for the local socket. Copy it: the span dies on return.
  // Report its delivery with `consumed` so flow control can resume.
  virtual void on_data(std::uint32_t id, byte_view data) = 0;
  virtual void on_peer_fin(std::uint32_t id) = 0;
  virtual void on_pause(std::uint32_t id) = 0;
  virtual void on_resume(std::uint32_t id) = 0;
  // The channel was ended by the peer or aborted by the protocol; the
  // tunnel has forgotten it. Not called for channels the application freed
  // nor for the normal end after FIN both ways.
  virtual void on_channel_freed(std::uint32_t id, const error_info& why) = 0;
  // The tunnel is closed (error, shutdown, TLS failure, dead peer). Called once.
  virtual void on_closed(const error_info& why) = 0;
};

class tunnel final : public tls_sink {
 public:
  tunnel(tunnel_params params, Botan::RandomNumberGenerator& rng, tunnel_handler& handler, clock::time_point now);
  ~tunnel() override;

  // --- hop side ---
  void receive(byte_view bytes, clock::time_point now);
  // The same without a copy: read at most `want` bytes from the hop into
  // receive_space(want), then call received() with how many came.
  std::span<std::uint8_t> receive_space(std::size_t want);
  void received(std::size_t n, clock::time_point now);
  bytes& output() { return out_; }
  clock::time_point next_deadline() const;
  void on_timer(clock::time_point now);

  tunnel_state state() const { return state_; }
  const tunnel_info& info() const { return info_; }

  // --- channel commands (state up; ignored otherwise) ---
  // Opens a channel; nullopt when the tunnel is not up or at its limit.
  std::optional<std::uint32_t> open_channel(const connection_request& request);
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
  void send_raw_frames(const bytes& frames) { send_plain(frames); }

  // Both directions run on the LSTP record layer (PROTOCOL.md 3.5).
  bool record_layer_active() const { return sealer_ && opener_; }
  // Both ends bound each channel's bytes in flight (PROTOCOL.md 5.4).
  bool credit_windows_active() const { return windows_negotiated_; }
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

  // tls_sink
  void tls_ciphertext(byte_view data) override;
  void tls_plaintext(byte_view data) override;
  void tls_activated(std::string_view cipher) override;
  void tls_closed() override;

  void handle_setup(clock::time_point now);
  void feed_tls(byte_view ciphertext);
  void feed_tls_records(byte_view ciphertext);
  bool on_record(byte_view plaintext);
  bool switch_to_records_in();
  void dispatch_frames();
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
  void handle_credit(std::uint32_t id, channel& ch, const frame_view& f);
  void send_ping(clock::time_point now);
  void begin_shutdown(clock::time_point now);
  void maybe_end_shutdown();
  bool is_own_id(std::uint32_t id) const { return (id % 2 == 1) == info_.master; }
  bool was_used(std::uint32_t id) const;

  tunnel_params params_;
  Botan::RandomNumberGenerator& rng_;
  tunnel_handler& handler_;
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
  clock::duration min_rtt_{0};
  clock::time_point rtt_ping_sent_{};  // when the PING with rtt_ping_token_ left
  std::uint64_t rtt_ping_token_ = 0;
  std::uint64_t rtt_samples_ = 0;
  std::unique_ptr<record_sealer> sealer_;
  std::unique_ptr<record_opener> opener_;
  std::optional<record_keys> in_keys_;
  bytes in_;                  // receive_space() before the record layer
  bool space_in_opener_ = false;  // receive_space() handed out the opener's buffer
  bytes tls_in_;  // whole TLS records are fed to Botan one by one until the switch
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
  clock::time_point shutdown_deadline_ = clock::time_point::max();
  std::string shutdown_reason_;
  bool shutting_down_ = false;       // we sent SHUTDOWN
  bool peer_shutting_down_ = false;  // the peer sent SHUTDOWN
  clock::time_point last_rx_;
  clock::time_point last_ping_;
  std::uint64_t ping_counter_ = 0;
  bool closed_notified_ = false;
};

}  // namespace lstp
