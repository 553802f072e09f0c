// The client end's front door: the SOCKS listeners (SOCKS5 with RFC 1929,
// SOCKS4/4a on one port) and the fixed forwards, shared by every tunnel of
// the process. Each request is routed (routing/route_table.hpp) to one
// tunnel, or connected directly, or refused.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "endproxy/shared/tunnel_keeper.hpp"
#include "routing/route_table.hpp"
#include "runtime/handshake_slots.hpp"
#include "runtime/log_throttle.hpp"
#include "runtime/task_group.hpp"

namespace endproxy {

class front : public std::enable_shared_from_this<front> {
 public:
  // `tunnels`: one per configured tunnel, in config order.
  front(boost::asio::io_context& io, const config::end_config& cfg, std::vector<std::shared_ptr<tunnel_keeper>> tunnels);
  // Opens the listeners; throws naming the address on failure.
  void start();
  // Stops accepting.
  void stop();
  // Ends the app connections that have no channel yet (greeting, request,
  // waiting for a tunnel) and the direct routes' copies.
  void reset();
  // The accept loops and SOCKS sessions still running.
  const runtime::task_group& tasks() const { return tasks_; }

 private:
  struct routed {
    tunnel_keeper::opened_channel channel;                    // through a tunnel
    std::optional<boost::asio::ip::tcp::socket> direct;   // or connected here (route "direct")
    lstp::wire_error refusal = lstp::wire_error::general; // else: why not (its SOCKS reply)
  };
  // Routes `dest` and opens the channel (or the direct connection).
  boost::asio::awaitable<routed> open(lstp::address dest, const std::string& who, std::string_view component,
                                      lstp::connect_command command);
  boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> connect_direct(const lstp::address& dest,
                                                                                     const std::string& who,
                                                                                     std::string_view component,
                                                                                     lstp::wire_error& error);
  void on_socks_client(boost::asio::ip::tcp::socket sock);
  boost::asio::awaitable<void> socks_session(boost::asio::ip::tcp::socket socket);
  void open_forwards();
  boost::asio::awaitable<void> forward_session(boost::asio::ip::tcp::socket sock, const config::forward& fw);

  boost::asio::io_context& io_;
  const config::end_config& cfg_;
  std::vector<std::shared_ptr<tunnel_keeper>> tunnels_;
  routing::route_table routes_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::size_t active_clients_ = 0;
  runtime::handshake_slots openings_;  // SOCKS clients still in their greeting or request
  runtime::log_throttle quiet_;        // lines a flood would repeat
  // The accept loops, and each app connection until it has its channel
  // (which then belongs to its tunnel) or a direct route's copy.
  runtime::task_group tasks_;
};

// Copies bytes both ways between two sockets until both directions ended,
// passing half-closes on (a direct route's connection).
// Both directions run as tasks of `tasks`.
boost::asio::awaitable<void> splice(boost::asio::ip::tcp::socket a, boost::asio::ip::tcp::socket b, std::string label);

}  // namespace endproxy
