// The local side of one channel at an end proxy: the app's socket (client
// end) or the destination's socket (server end), joined to the tunnel.
//
// Two loops: the reader takes one chunk from the socket and waits until the
// tunnel's writer has taken it (its turn in the round robin), or until the
// peer resumes a paused channel; the writer drains what the tunnel delivered
// to the socket and reports it consumed, which lets flow control resume.
// Half-close travels inside LSTP: EOF from the socket becomes FIN, FIN from
// the peer becomes shutdown(send) once everything before it was written.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

#include "lstp/asio/tunnel_driver.hpp"
#include "runtime/notifier.hpp"
#include "runtime/task_group.hpp"

namespace endproxy {

class end_tunnel;

// What the admin page shows of a channel besides its counters.
struct channel_facts {
  std::string command = "CONNECT";  // CONNECT or BIND
  std::string destination;          // as asked for ("intranet:80")
};

// One channel as the admin server reports it.
struct channel_status {
  std::uint64_t id = 0;       // process-wide, for POST /api/v1/channels/{id}/close
  std::uint32_t channel = 0;  // the channel's id inside its tunnel
  std::string local_peer;     // the app (client end) or the destination (server end)
  channel_facts facts;
  double age_seconds = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;
  std::size_t credit_window = 0;
  bool paused = false;
};

class end_channel final : public lstp::asio_edge::data_source, public std::enable_shared_from_this<end_channel> {
 public:
  static constexpr std::size_t read_chunk = lstp::max_data_payload;

  end_channel(std::shared_ptr<end_tunnel> owner, std::uint32_t id, boost::asio::ip::tcp::socket socket,
              std::string label, channel_facts facts = {});

  // Starts both loops. `early` holds app bytes that arrived with the SOCKS
  // request (sent first).
  void start(lstp::bytes early = {});

  // Tunnel events.
  void deliver(lstp::byte_view data);
  void peer_fin();
  void set_paused(bool paused);
  // Ends the channel now (the peer freed it, or the tunnel closed): the
  // socket is closed without flushing.
  void abort(std::string_view why);
  // Both ends have sent their FIN: the tunnel is done with this channel,
  // and only the bytes already received may still be on their way to the
  // local socket. A tunnel that closes then lets them go out (and the FIN
  // after them) instead of resetting a stream that ended.
  bool ended_both_ways() const { return fin_sent_ && peer_fin_ && !aborted_; }
  // Its tunnel is gone: what is left must reach the local socket within
  // `limit`, or the channel is reset (an app that stopped reading must not
  // keep it, and the tunnel it refers to, forever).
  void finish_within(std::chrono::steady_clock::duration limit);

  void produce(lstp::tunnel& t) override;

  std::uint32_t id() const { return id_; }
  // Process-wide and never reused: what the admin API names a channel by.
  std::uint64_t admin_id() const { return admin_id_; }
  channel_status status() const;
  // The operator closes it (admin API): freed at the peer, the local
  // connection reset.
  void close_by_operator();
  // Keeps `token` alive as long as this channel (e.g. a connection count).
  void hold(std::shared_ptr<void> token) { token_ = std::move(token); }
  // The opener's handle of this channel: kept as long as the channel, so
  // one that ends here without its protocol end is freed too.
  void own(lstp::channel_handle channel) { channel_ = std::move(channel); }

 private:
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  void local_failure(const std::string& why);
  void maybe_finish();

  std::shared_ptr<end_tunnel> owner_;
  std::uint32_t id_;
  std::uint64_t admin_id_;
  channel_facts facts_;
  boost::asio::ip::tcp::socket socket_;
  std::string label_;  // "tunnel quickstart channel 5 (intranet:80)"
  // socket -> tunnel
  lstp::bytes from_local_;
  std::size_t from_local_at_ = 0;  // start of the unsent bytes in from_local_
  std::size_t from_local_len_ = 0;
  bool local_eof_ = false;
  bool queued_ = false;
  bool paused_ = false;
  bool fin_sent_ = false;
  runtime::notifier reader_wake_;
  // tunnel -> socket
  lstp::bytes to_local_;
  lstp::bytes writing_;
  bool peer_fin_ = false;
  bool writer_done_ = false;
  runtime::notifier writer_wake_;
  bool started_ = false;
  bool finished_ = false;
  bool aborted_ = false;
  std::uint64_t bytes_up_ = 0, bytes_down_ = 0;
  std::size_t window_ = 0;  // the largest credit window this channel's receiving side reached
  std::chrono::steady_clock::time_point opened_;
  std::shared_ptr<void> token_;
  lstp::channel_handle channel_;
  boost::asio::steady_timer* last_flush_ = nullptr;  // finish_within's deadline, while it runs
};

}  // namespace endproxy
