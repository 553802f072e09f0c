// An end proxy process: keeps its tunnel to the middle proxy going and, in
// the client role, serves SOCKS5 to local apps over it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <botan/auto_rng.h>

#include <memory>
#include <vector>

#include "config/config.hpp"
#include "lstp/secrets.hpp"
#include "lstp/tunnel.hpp"

namespace endproxy {

class end_tunnel;

class end_proxy {
 public:
  end_proxy(boost::asio::io_context& io, config::end_config cfg);
  ~end_proxy();
  // Opens the SOCKS listeners (throws naming the address on failure) and
  // starts connecting to the middle proxy.
  void start();
  void stop();

  // The current tunnel once it is up, waiting until `deadline` for it.
  boost::asio::awaitable<std::shared_ptr<end_tunnel>> wait_for_tunnel(std::chrono::steady_clock::time_point deadline);
  const config::end_config& cfg() const { return cfg_; }

 private:
  boost::asio::awaitable<void> keep_tunnel();
  void on_socks_client(boost::asio::ip::tcp::socket sock);
  boost::asio::awaitable<void> socks_session(boost::asio::ip::tcp::socket socket);
  lstp::tunnel_params make_params();

  boost::asio::io_context& io_;
  config::end_config cfg_;
  lstp::tunnel_keys keys_;
  Botan::AutoSeeded_RNG rng_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::shared_ptr<end_tunnel> tunnel_;
  boost::asio::steady_timer tunnel_changed_;  // cancelled whenever the tunnel comes up or goes down
  boost::asio::steady_timer retry_timer_;
  std::size_t active_clients_ = 0;
  bool stopping_ = false;
};

}  // namespace endproxy
