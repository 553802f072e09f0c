// One attempt of an end proxy's tunnel: a hop to the middle, the LSTP tunnel
// on it (through tunnel_driver) and the channels it carries. It is the
// tunnel's event handler: it opens channels for SOCKS sessions (client role)
// and connects to destinations for the peer (server role). When it closes,
// every channel it carried is closed too.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <map>
#include <memory>

#include "config/config.hpp"
#include "endproxy/shared/end_channel.hpp"
#include "lstp/asio/tunnel_driver.hpp"
#include "runtime/notifier.hpp"
#include "runtime/task_group.hpp"

namespace endproxy {

class end_channel;
struct tunnel_stats;

// A channel that carries datagrams (UDP associate, PROTOCOL.md 5.3) rather
// than a byte stream: the SOCKS side at the client end, the relay socket at
// the server end.
class datagram_channel {
 public:
  virtual ~datagram_channel() = default;
  // One SERVICE_DATA payload: address and datagram.
  virtual void deliver(lstp::byte_view payload) = 0;
  virtual void set_paused(bool paused) = 0;
  // The channel ended (the peer freed it, or the tunnel closed).
  virtual void abort(std::string_view why) = 0;
};

struct open_result {
  std::uint32_t id = 0;
  // The channel, while someone holds it: dropping it frees the channel.
  lstp::channel_handle channel;
  bool accepted = false;
  lstp::address bound;
  lstp::error_info error;
};

class end_tunnel final : public lstp::tunnel_handler, public std::enable_shared_from_this<end_tunnel> {
 public:
  // `cfg` and `tunnel` belong to the tunnel keeper, which outlives this.
  end_tunnel(const config::end_config& cfg, const config::tunnel_config& tunnel, transport::hop_ptr hop,
             lstp::tunnel_params params,
             Botan::RandomNumberGenerator& rng, std::function<void()> on_state_change);
  ~end_tunnel() override;

  boost::asio::awaitable<void> run();
  bool is_up() const { return up_; }
  // Resumption (PROTOCOL.md 3.8): the hop is lost and the tunnel, with its
  // channels, waits for a new one (the keeper brings it).
  bool resuming() const { return resuming_; }
  std::uint64_t hops_lost() const { return hops_lost_; }
  // Notified when the tunnel loses a hop, resumes, or closes.
  runtime::notifier& resume_step() { return resume_step_; }
  // For the log line of a resumption: the way the new hop took.
  void resuming_via(std::string way) { resuming_via_ = std::move(way); }
  bool was_up() const { return was_up_; }
  // Waiting at the middle for the other end (not paired yet).
  bool waiting_for_partner() { return !closed_ && driver_->proto().state() == lstp::tunnel_state::setup; }
  // The same text at both ends of one tunnel: the names along its path, read
  // in whichever direction sorts first. Lets both ends agree which of two
  // tunnels that came up at once (at two middles) to keep.
  const std::string& path_key() const { return path_key_; }
  const lstp::error_info& close_reason() const { return close_reason_; }

  // Client side: asks the peer to connect; completes when it answered, or
  // the tunnel closed.
  boost::asio::awaitable<open_result> open(const lstp::connection_request& request);
  // Client side, after the SOCKS success reply: the channel takes the socket.
  // `slot` is held until the channel ends (the caller's connection count).
  void attach(lstp::channel_handle channel, boost::asio::ip::tcp::socket socket, std::string label, lstp::bytes early,
              std::shared_ptr<void> slot = {}, channel_facts facts = {});

  // Client side, BIND: after the first reply, waits for the second (the
  // peer that connected at the far end), or the far end's refusal, or
  // `app` closing meanwhile. The caller still holds the channel: a failed
  // wait leaves it to be dropped.
  boost::asio::awaitable<open_result> wait_bind_peer(std::uint32_t id, boost::asio::ip::tcp::socket& app);
  // The app is gone before wait_bind_peer: forget the second reply.
  void drop_second_reply(std::uint32_t id) { second_replies_.erase(id); }
  // A datagram channel takes channel `id` (the opener's side also begins
  // the service). `channel` is the opener's handle (empty at the acceptor).
  void attach_datagrams(std::uint32_t id, std::shared_ptr<datagram_channel> ch, lstp::channel_handle channel = {});
  // The datagram channel's owner is done with it: freed if still open.
  void forget_datagrams(std::uint32_t id, const lstp::error_info& why = {lstp::wire_error::ok, ""});
  // Sends one datagram on a UDP channel; false when it was dropped (channel
  // gone or paused, or the hop is behind: datagrams are never queued).
  bool send_datagram(std::uint32_t id, const lstp::address& far, lstp::byte_view data);
  // The server role's policy, for addresses (and the name asked for, if any).
  policy::verdict permits(const boost::asio::ip::address& a, std::uint16_t port,
                          std::optional<std::string_view> name = std::nullopt) const;
  const policy::access_policy& policy() const { return policy_; }
  const config::end_config& cfg() const { return cfg_; }
  const std::string& tunnel_name() const { return tun_.name; }
  std::string label(std::uint32_t id, const std::string& what) const {
    return "tunnel " + tun_.name + " channel " + std::to_string(id) + " (" + what + ")";
  }

  lstp::asio_edge::tunnel_driver& driver() { return *driver_; }
  const lstp::asio_edge::tunnel_driver& driver() const { return *driver_; }
  // For the admin server: the byte-stream channels it carries now, the
  // path it came up on (empty before), how often it resumed, and closing
  // one channel by its process-wide id.
  std::vector<channel_status> channel_statuses() const;
  bool close_channel(std::uint64_t admin_id);
  const lstp::topology& path() const { return path_; }
  std::uint64_t resumptions() const { return resumptions_; }
  std::chrono::system_clock::time_point up_since() const { return up_since_; }
  // The keeper's counters, where channel opens at the server side are counted.
  void count_into(std::shared_ptr<tunnel_stats> stats) { stats_ = std::move(stats); }
  tunnel_stats* stats() const { return stats_.get(); }
  std::chrono::steady_clock::time_point started() const { return started_; }
  const std::array<std::uint8_t, 16>& own_nonce() const { return own_nonce_; }
  lstp::tunnel& proto() { return driver_->proto(); }
  void forget(std::uint32_t id);
  // A pool of channel read buffers (end_channel::read_chunk bytes each), so
  // only channels with data in flight hold one.
  lstp::bytes take_buffer();
  void release_buffer(lstp::bytes buffer);
  void close(const lstp::error_info& why) { driver_->close(why); }
  runtime::task_group& channel_tasks() { return channel_tasks_; }

  // lstp::tunnel_handler
  void on_up(const lstp::tunnel_info& info) override;
  void on_channel_request(std::uint32_t id, const lstp::connection_request& request) override;
  void on_channel_accepted(std::uint32_t id, const lstp::address& bound) override;
  void on_bind_peer(std::uint32_t id, const lstp::address& peer) override;
  void on_channel_rejected(std::uint32_t id, const lstp::error_info& why) override;
  void on_service_begin(std::uint32_t id) override;
  void on_data(std::uint32_t id, lstp::byte_view data) override;
  void on_peer_fin(std::uint32_t id) override;
  void on_pause(std::uint32_t id) override;
  void on_resume(std::uint32_t id) override;
  void on_channel_freed(std::uint32_t id, const lstp::error_info& why) override;
  void on_hop_lost(const lstp::error_info& why) override;
  void on_resumed(std::uint64_t replayed) override;
  void on_closed(const lstp::error_info& why) override;

 private:
  struct pending_open;
  boost::asio::awaitable<void> connect_destination(std::uint32_t id, lstp::connection_request request);
  boost::asio::awaitable<void> listen_for_peer(std::uint32_t id, lstp::connection_request request);
  void open_udp_relay(std::uint32_t id, const lstp::connection_request& request);
  void refuse(std::uint32_t id, const std::string& label, const std::string& what, const std::string& why);
  std::shared_ptr<end_channel> find(std::uint32_t id);

  const config::end_config& cfg_;
  const config::tunnel_config& tun_;
  policy::access_policy policy_;  // what the peer may reach through us
  std::shared_ptr<lstp::asio_edge::tunnel_driver> driver_;
  std::function<void()> on_state_change_;
  std::map<std::uint32_t, std::shared_ptr<pending_open>> pending_;
  // BIND channels past their first reply: the second (CONNECTION_PEER or a
  // NACK) may arrive in the same record as the first, before anyone waits,
  // so it is kept here until wait_bind_peer takes it.
  std::map<std::uint32_t, std::shared_ptr<pending_open>> second_replies_;
  std::map<std::uint32_t, std::shared_ptr<end_channel>> channels_;
  std::map<std::uint32_t, std::shared_ptr<datagram_channel>> datagrams_;
  // The opener's handles of datagram channels (freed when forgotten).
  std::map<std::uint32_t, lstp::channel_handle> datagram_handles_;
  // BIND channels still waiting for their peer: closed when the channel ends.
  std::map<std::uint32_t, std::shared_ptr<boost::asio::ip::tcp::acceptor>> listening_;
  std::vector<lstp::bytes> spare_buffers_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool up_ = false;
  bool was_up_ = false;
  bool resuming_ = false;
  std::uint64_t hops_lost_ = 0;
  std::chrono::steady_clock::time_point lost_at_{};
  std::string resuming_via_;
  lstp::error_info close_reason_;
  std::string path_key_;
  lstp::topology path_;  // readable, from this end to the peer, once up
  std::chrono::system_clock::time_point up_since_{};
  std::uint64_t resumptions_ = 0;
  std::shared_ptr<tunnel_stats> stats_;
  std::array<std::uint8_t, 16> own_nonce_{};
  runtime::notifier resume_step_;
  bool closed_ = false;
  // The server side's connects and BIND listeners, one task per channel.
  runtime::task_group tasks_;
  // Every channel's reader and writer (end_channel).
  runtime::task_group channel_tasks_;
};

}  // namespace endproxy
