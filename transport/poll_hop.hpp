// The `http` carrier's Asio edges (PROTOCOL.md 9.1): a hop carried by
// ordinary HTTP requests, for networks whose proxy forwards plain requests
// only. The client hop keeps a few keep-alive connections (lanes) and
// drives poll::client_session over them; the middle's poll_server reads
// the requests on any connection, finds their session, and gives each new
// session to the middle as a hop like any other. What is sent when, and
// what a lost or repeated request means, is poll_session's (sans-I/O).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/hop_stream.hpp"

namespace transport {

struct poll_client_options {
  std::string host;            // the Host header: the middle's "host:port"
  std::string path = "/lstp";  // the middle's websocket_path
  // "" to ask the middle itself (origin-form); "http://host:port" through a
  // plain HTTP proxy (absolute-form targets).
  std::string target_prefix;
  // Opens one connection on which requests go (to the middle or to the
  // proxy); nullopt and why when it cannot.
  std::function<boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>>(std::string& why)> connect;
  std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(10);
  // A down request waits this long for data at the middle (plus
  // request_timeout for the way).
  std::chrono::steady_clock::duration heartbeat = std::chrono::seconds(25);
  // Connections kept, each with at most one request on it.
  unsigned lanes = 4;
  // Through a proxy that wants a login (uplink::request_login), one login
  // per lane (a Digest nonce counts its uses, and a proxy refuses a count
  // that arrives out of order, as parallel lanes would make it): the value
  // of a request's Proxy-Authorization (empty: none) ...
  std::function<std::string(unsigned lane, std::string_view method, std::string_view target)> authorization;
  // ... and what a 407's Proxy-Authenticate values make of it: true, the
  // request goes again; false, `why` says why the login cannot go on.
  std::function<bool(unsigned lane, const std::vector<std::string>& proxy_authenticate, std::string& why)> challenged;
};

// Opens a carrier session (its first POST answered 204) within `timeout`:
// the hop, or null and why.
boost::asio::awaitable<hop_ptr> open_poll_hop(boost::asio::any_io_executor ex, poll_client_options options,
                                              std::chrono::steady_clock::duration timeout, std::string& why);

class poll_server : public std::enable_shared_from_this<poll_server> {
 public:
  struct options {
    std::string path = "/lstp";
    std::chrono::steady_clock::duration heartbeat = std::chrono::seconds(25);
    std::chrono::steady_clock::duration session_idle = std::chrono::seconds(60);
    std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(10);
    // Between requests on a connection (a held down request counts as one).
    std::chrono::steady_clock::duration connection_idle = std::chrono::seconds(30);
    std::size_t max_sessions = 1024;
    std::size_t max_sessions_per_source = 256;
  };
  // A new session's hop, and where its first request came from, for the
  // middle to serve like any other hop.
  using hop_handler = std::function<void(hop_ptr hop, const boost::asio::ip::tcp::endpoint& from,
                                         const boost::asio::ip::tcp::endpoint& local)>;

  static std::shared_ptr<poll_server> make(boost::asio::any_io_executor ex, options o, hop_handler on_hop);
  virtual ~poll_server() = default;
  // Serves the requests of one connection until it closes, idles or sends
  // something that is not a carrier request. `first`: bytes already read
  // from it (at least the head of a request).
  virtual boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket, std::vector<std::uint8_t> first) = 0;
  // Sessions known (open, or ended and still delivering their last chunks).
  virtual std::size_t sessions() const = 0;
  // Ends every session (their hops see an error) and stops the sweeper.
  virtual void close_all() = 0;
};

}  // namespace transport
