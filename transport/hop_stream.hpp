// A hop is the connection between an end proxy and a middle proxy, or between
// two middles. It may be plain TCP, or LSTP carried inside TLS, WebSocket or
// both (to cross firewalls that let only web traffic out). Everything above
// it (the tunnel driver, the middle's pump) sees only this interface: bytes in
// order, both ways, and a way to end it.
//
// Single-threaded: use it from the executor it was made on. At most one
// read_some and one write may be pending at a time.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace transport {

class hop_stream {
 public:
  virtual ~hop_stream() = default;

  // Reads at least one byte; `ec` is set (eof at a clean end) otherwise.
  virtual boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer buf,
                                                        boost::system::error_code& ec) = 0;
  // Writes all of `buf` or sets `ec`.
  virtual boost::asio::awaitable<void> write(boost::asio::const_buffer buf, boost::system::error_code& ec) = 0;
  // Says no more bytes will be written, where the carrier can (TCP
  // half-close); a no-op where it cannot.
  virtual void shutdown_send() = 0;
  // Ends the hop at once: pending operations complete with an error.
  virtual void close() = 0;
  // How the hop is carried, for logs: "tcp", "websocket", "tls+websocket".
  virtual std::string kind() const = 0;

  // The executor the hop's operations run on.
  virtual boost::asio::any_io_executor get_executor() = 0;
  // For runtime::watchdog and for giving up: makes pending operations
  // complete with operation_aborted, through every layer (a TLS layer also
  // stops reading; a WebSocket layer is unusable afterwards). Writes may
  // still go out, so a middle can tell a peer why it gives up.
  virtual void cancel(boost::system::error_code& ec) = 0;
  // Completes when the hop has something to read, has ended or failed
  // (`ec` set, operation_aborted when cancelled). Reads nothing. A middle
  // uses it to notice that a waiting end went away.
  virtual boost::asio::awaitable<void> wait_readable(boost::system::error_code& ec) = 0;

  // --- optional capabilities of hops that run on a TCP connection ---
  // Sets the options a hop's TCP connection wants (transport/hop_socket.hpp);
  // layered hops pass it down, hops without a socket ignore it.
  virtual void tune_socket() {}
  // The TCP socket itself when the hop's bytes are its bytes as they are: no
  // carrier layer, nothing read ahead and held. A middle may then move them
  // between two such hops with splice(2), never copying them to user space.
  // Null otherwise.
  virtual boost::asio::ip::tcp::socket* plain_socket() { return nullptr; }
};

using hop_ptr = std::unique_ptr<hop_stream>;

// Plain TCP. `already_read` holds bytes taken from the socket before (e.g.
// while sniffing what protocol a hop speaks); they are read first.
hop_ptr make_tcp_hop(boost::asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read = {});

// Any hop with bytes already taken from it put back in front.
hop_ptr with_prefix(hop_ptr inner, std::vector<std::uint8_t> already_read);

}  // namespace transport
