// The middle proxy (PROTOCOL.md 3.1): accepts hops, reads each hop's setup,
// pairs hops that carry the same pairing id (or hands an unmatched setup to
// the next middle), then copies bytes blindly both ways. It never holds a
// secret and never parses a byte after the setup.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "admin/prometheus.hpp"
#include "config/config.hpp"

#include <boost/json/object.hpp>
#include "lstp/setup.hpp"
#include "middleproxy/access_gate.hpp"
#include "runtime/handshake_slots.hpp"
#include "runtime/log_throttle.hpp"
#include "runtime/task_group.hpp"
#include "middleproxy/pairing_table.hpp"
#include "transport/hop_acceptor.hpp"
#include "transport/hop_stream.hpp"
#include "transport/poll_hop.hpp"

namespace middleproxy {

class middle_server : public std::enable_shared_from_this<middle_server> {
 public:
  middle_server(boost::asio::io_context& io, config::middle_config cfg);
  // Opens every listener (throws std::system_error naming the address on
  // failure) and starts accepting.
  void start();
  // Stops accepting; hops in their opening or waiting and pairs go on.
  void stop();
  // After stop(), once the grace is over: ends every hop and pair (their
  // ends see the hop close and reconnect elsewhere).
  void reset();
  // The accept loops and hops still running.
  const runtime::task_group& tasks() const { return tasks_; }
  // Setups waiting for their partner here.
  std::size_t waiting() const { return table_.waiting(); }
  // Serves a hop that did not come from a listener (tests run hops in
  // memory) as if it had arrived from `peer` ("ip:port", counted under
  // `source`) on `local`: its setup is read, and it is paired or refused.
  void serve(transport::hop_ptr stream, std::string peer, std::string source, std::string local);

  // For the admin server: listeners, waiting setups, pairs, refusals and
  // the use of each access credential; and the same as metrics.
  boost::json::object status() const;
  void metrics(admin::metrics_text& out) const;
  bool listening() const { return !acceptors_.empty() && acceptors_.front()->is_open(); }
  const config::middle_config& cfg() const { return cfg_; }

 private:
  struct hop;
  using hop_ptr = std::shared_ptr<hop>;

  void load_tls_identity();
  void start_http_carrier();
  boost::asio::awaitable<void> serve_http_carrier(boost::asio::ip::tcp::socket sock, std::vector<std::uint8_t> first);
  void on_accept(boost::asio::ip::tcp::socket sock);
  boost::asio::awaitable<void> handle_connection(boost::asio::ip::tcp::socket sock);
  boost::asio::awaitable<void> handle_served(hop_ptr h);
  boost::asio::awaitable<void> handle_hop(hop_ptr h, runtime::handshake_slots::ticket opening);
  boost::asio::awaitable<void> send_notices(hop_ptr h, std::vector<lstp::pairing_hint> hints);
  boost::asio::awaitable<void> wait_for_notices(const hop_ptr& h);
  // `relay_notices_to`: where PAIRING_NOTICE frames read are passed on (the
  // hop a setup was forwarded for); null: none are expected.
  boost::asio::awaitable<bool> read_setup(transport::hop_stream& s, lstp::setup_reader& reader, std::string& why,
                                          lstp::wire_error& code, bool& peer_error, hop_ptr relay_notices_to = {});
  boost::asio::awaitable<void> wait_for_partner(hop_ptr h);
  boost::asio::awaitable<void> forward_to_next_hop(hop_ptr h);
  boost::asio::awaitable<void> send_to_next_hop(hop_ptr h, boost::system::error_code& ec, std::string& why);
  boost::asio::awaitable<void> end_wait(hop_ptr h);
  // `second_name`: where the second hop comes from (its peer, or "next hop
  // ..."); `second_end`: the end its setup names.
  boost::asio::awaitable<void> join(hop_ptr first, lstp::bytes to_first, std::shared_ptr<transport::hop_stream> second,
                                    lstp::bytes to_second, std::string second_name, std::string second_end,
                                    std::string tunnel);
  void count_refusal(std::string_view reason);
  // `detail`, if any, goes to the log only (e.g. which access check failed).
  boost::asio::awaitable<void> refuse(hop_ptr h, lstp::wire_error code, std::string reason, std::string detail = {});
  boost::asio::awaitable<void> watch_while_waiting(hop_ptr h);
  void start_watch(const hop_ptr& h);
  void take_over(const hop_ptr& waiting);
  lstp::topology_entry self_entry(const hop_ptr& h) const;

  boost::asio::io_context& io_;
  config::middle_config cfg_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  transport::acceptor_options acceptor_options_;
  std::shared_ptr<transport::poll_server> poll_;  // the http carrier's sessions
  pairing_table<hop_ptr> table_;
  access_gate access_;
  lstp::secret_bytes next_hop_key_;  // HMAC key of cfg_.next_hop_access
  runtime::handshake_slots openings_;  // hops not yet through their setup
  runtime::log_throttle quiet_;        // lines a flood would repeat
  runtime::log_throttle repeated_refusals_{std::chrono::minutes(1), 4096};  // per tunnel and reason
  std::size_t active_hops_ = 0;
  // What the admin server shows.
  struct pair_counters {
    std::uint64_t a_to_b = 0, b_to_a = 0;
  };
  struct pair_info {
    std::string tunnel;
    std::string first_end, first_source, second_end, second_source;
    std::chrono::steady_clock::time_point started;
    std::shared_ptr<const pair_counters> bytes;
  };
  struct credential_use {
    std::uint64_t hops = 0, pairs = 0;
  };
  std::map<std::uint64_t, pair_info> pairs_;  // live pairs, by a number of their own
  std::uint64_t next_pair_ = 1;
  std::uint64_t hops_seen_ = 0;     // hops that delivered a setup
  std::uint64_t pairs_made_ = 0;
  std::uint64_t bytes_of_closed_pairs_ = 0;
  std::map<std::string, std::uint64_t> refusals_;  // by reason (a metric label word)
  std::map<std::string, credential_use> credentials_;
  // Every hop: its opening, its wait, its pair and the pair's two copies.
  runtime::task_group tasks_;
};

}  // namespace middleproxy
