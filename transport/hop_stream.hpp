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

  // The TCP connection underneath, for addresses, readiness waits and
  // cancellation. Cancelling it makes pending operations fail (and may leave
  // a WebSocket or TLS layer unusable): only cancel to give up on the hop.
  virtual boost::asio::ip::tcp::socket& tcp() = 0;

  // True when the hop's bytes are its TCP socket's bytes as they are: no
  // carrier layer, nothing read ahead and held. A middle may then move them
  // between two such hops with splice(2), never copying them to user space.
  virtual bool plain_tcp() const { return false; }

  boost::asio::any_io_executor get_executor() { return tcp().get_executor(); }
  // For runtime::watchdog: makes pending operations complete with
  // operation_aborted, through every layer (a TLS layer also stops reading;
  // a WebSocket layer is unusable afterwards). Writes may still go out, so a
  // middle can tell a peer why it gives up.
  virtual void cancel(boost::system::error_code& ec) { tcp().cancel(ec); }
};

using hop_ptr = std::unique_ptr<hop_stream>;

// Plain TCP. `already_read` holds bytes taken from the socket before (e.g.
// while sniffing what protocol a hop speaks); they are read first.
hop_ptr make_tcp_hop(boost::asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read = {});

// Any hop with bytes already taken from it put back in front.
hop_ptr with_prefix(hop_ptr inner, std::vector<std::uint8_t> already_read);

}  // namespace transport
