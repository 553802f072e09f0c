// The tunnel keeper: one tunnel of an end proxy process, kept going through the middle
// proxies (reconnects, chooses the way out) and opens channels on it. The
// SOCKS front and the forwards (endproxy/client/front.hpp) use one or several of
// these.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <botan/auto_rng.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "lstp/secrets.hpp"
#include "endproxy/shared/end_tunnel.hpp"
#include "endproxy/shared/tunnel_stats.hpp"
#include "lstp/tunnel.hpp"
#include "runtime/task_group.hpp"
#include "transport/hop_stream.hpp"
#include "uplink/pac.hpp"
#include "uplink/way_plan.hpp"

namespace endproxy {

class end_tunnel;

class tunnel_keeper : public std::enable_shared_from_this<tunnel_keeper> {
 public:
  // Keeps tunnel number `tunnel` of the end's config `cfg` (shared by the
  // end's keepers and held as long as any of them lives).
  tunnel_keeper(boost::asio::io_context& io, std::shared_ptr<const config::end_config> cfg, std::size_t tunnel);
  ~tunnel_keeper();
  // Starts connecting to the middle proxies.
  void start();
  // Stops reconnecting and tells the peer of every tunnel (SHUTDOWN).
  void stop();
  // After stop(), once the grace is over: closes every tunnel (ERROR to the
  // peer); the apps of channels still open see their connections reset.
  void reset();
  // The keeper, its attachments and dials still running.
  const runtime::task_group& tasks() const { return tasks_; }
  // Opens a hop to a candidate's middle, or returns null with `why` set.
  using dial_function =
      std::function<boost::asio::awaitable<transport::hop_ptr>(const uplink::candidate&, std::string& why)>;
  // Test seam, before start(): hops come from `dial` instead of the network
  // (tests run them in memory).
  void set_dialer(dial_function dial) { dialer_ = std::move(dial); }
  // The tunnel that is up now, if any.
  std::shared_ptr<end_tunnel> current_tunnel() const { return tunnel_ && tunnel_->is_up() ? tunnel_ : nullptr; }

  // The current tunnel once it is up, waiting until `deadline` for it.
  boost::asio::awaitable<std::shared_ptr<end_tunnel>> wait_for_tunnel(std::chrono::steady_clock::time_point deadline);
  const config::end_config& cfg() const { return cfg_; }
  const config::tunnel_config& tunnel() const { return tun_; }

  // For the admin server.
  const tunnel_stats& stats() const { return *stats_; }
  // The live tunnel, or the newest attempt still waiting or in its handshake.
  std::shared_ptr<end_tunnel> newest_attempt() const;
  // The way the live tunnel uses ("tcp to 1.2.3.4:443"), if any.
  std::string way_in_use() const { return current_ ? current_->to_string() : std::string(); }
  // What the last attempt failed with (empty after a tunnel came up).
  const std::string& last_failure() const { return last_failure_; }
  bool connected_to_a_middle() const { return !attempts_.empty(); }
  // Drops the live tunnel and every attempt (the operator asked): channels
  // are reset, and the keeper connects again. False when there was none.
  bool drop(const std::string& why);
  // Called after the tunnel came up or went down (the process's readiness).
  void on_change(std::function<void()> f) { on_change_ = std::move(f); }

  struct opened_channel {
    std::shared_ptr<end_tunnel> tunnel;  // null when the channel could not be opened
    open_result result;
  };
  // Waits for the tunnel (up to socks.timeout) and asks the far end to
  // connect to (or bind for, or relay UDP to) `dest`; logs a failure.
  boost::asio::awaitable<opened_channel> open_channel(const lstp::address& dest, const std::string& who,
                                                      std::string_view log_component,
                                                      lstp::connect_command command = lstp::connect_command::tcp_connect);

 private:
  struct race_result;
  struct round_state;
  struct attempt {
    std::shared_ptr<end_tunnel> tunnel;
    uplink::candidate how;
    std::vector<std::string> failed_first;  // the cheaper ways that failed before this one
  };
  boost::asio::awaitable<void> keep_tunnel();
  boost::asio::awaitable<void> attach(std::vector<uplink::candidate> cands, std::shared_ptr<round_state> rs);
  void on_tunnel_change();
  void log_closed(end_tunnel& t);
  // Dials candidates from `next` on, two at a time once the first is slow,
  // and returns the first hop that opens (next: the first not yet tried).
  boost::asio::awaitable<std::optional<race_result>> race(const std::vector<uplink::candidate>& cands,
                                                          std::size_t& next, std::vector<std::string>& failures,
                                                          const std::function<bool()>& give_up);
  boost::asio::awaitable<transport::hop_ptr> dial(const uplink::candidate& c, std::string& why);
  boost::asio::awaitable<void> reprobe_loop();
  // Resumption (PROTOCOL.md 3.8): brings `t`, which lost its hop, a new one
  // through any middle and way, again after each hop it loses, until it
  // resumed or closed.
  boost::asio::awaitable<void> resume(std::shared_ptr<end_tunnel> t);
  std::vector<uplink::candidate> plan() const;
  // Proxy discovery (tunnel.proxy: pac+... or auto): fetches and evaluates
  // the PAC file off the I/O thread, when first needed, every
  // reprobe_interval, and (force) after a round where every way failed.
  boost::asio::awaitable<void> refresh_pac(bool force);
  void remember(const uplink::candidate& c);
  std::chrono::milliseconds backoff(unsigned failed_rounds);
  lstp::tunnel_params make_params();

  boost::asio::io_context& io_;
  std::shared_ptr<const config::end_config> end_;
  const config::end_config& cfg_;     // the end's settings
  const config::tunnel_config& tun_;  // this tunnel's
  lstp::tunnel_keys keys_;
  lstp::secret_bytes access_key_;  // HMAC key of tun_.access, if any
  Botan::AutoSeeded_RNG rng_;
  std::shared_ptr<end_tunnel> tunnel_;
  boost::asio::steady_timer tunnel_changed_;  // cancelled whenever the tunnel comes up or goes down
  boost::asio::steady_timer retry_timer_;
  uplink::way_memory memory_;
  // What the PAC file says per middle and kind of URL ("https://m:443/"):
  // the routes in its order. Empty: no PAC file (yet); the environment.
  std::map<std::string, std::vector<uplink::pac_route>> pac_routes_;
  std::optional<std::chrono::steady_clock::time_point> pac_checked_;
  std::vector<attempt> attempts_;                // this round's attachments (waiting or up)
  std::weak_ptr<round_state> round_;
  std::map<std::string, std::string> last_middle_failure_;  // per middle, what was last logged
  std::optional<uplink::candidate> current_;     // the way the live tunnel uses
  bool move_when_idle_ = false;                  // a cheaper way works: move once no channel is open
  boost::asio::steady_timer reprobe_timer_;
  bool stopping_ = false;
  bool resume_running_ = false;  // resume() is bringing the tunnel a new hop
  // What the last attempt failed with, so a refusal repeated at every retry
  // is logged once ("cannot reach..." when no middle could be reached).
  std::string last_failure_;
  dial_function dialer_;  // empty: uplink::dial
  std::function<void()> on_change_;
  std::shared_ptr<tunnel_stats> stats_ = std::make_shared<tunnel_stats>();
  runtime::task_group tasks_;
};

}  // namespace endproxy
