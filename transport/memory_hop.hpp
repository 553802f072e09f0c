// Two hop_streams joined in memory: what one writes, the other reads. For
// tests of everything above the hop (the tunnel driver, an end's channels,
// the middle's pairing and copies) without sockets, and with failures put
// exactly where a test wants them (transport/failing_hop.hpp).
//
// It behaves as a TCP connection does where the layers above can tell:
// reads return what is there (at least one byte), writes wait while the
// reader's side holds `capacity` bytes (back pressure), shutdown_send() is
// a half-close the peer reads as eof after the data, close() ends the hop
// (its own pending operations abort, the peer reads eof after what was
// already sent and fails its writes), and cancel() aborts pending
// operations only. Every operation completes through the executor, never
// inline, as a socket's do.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <string>
#include <utility>

#include "transport/hop_stream.hpp"

namespace transport {

struct memory_hop_options {
  // Bytes a direction holds before its writer waits (a socket's buffers).
  std::size_t capacity = 256 * 1024;
  // What kind() says, for logs.
  std::string kind = "memory";
};

// The two ends of one connection.
std::pair<hop_ptr, hop_ptr> make_memory_hop_pair(const boost::asio::any_io_executor& ex,
                                                 memory_hop_options options = {});

}  // namespace transport
