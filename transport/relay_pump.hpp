// Moves bytes one way between two hops, for whoever passes a connection
// through unchanged: a middle proxy between the hops of a pair, a client
// end between an app and a destination on a direct route. One buffer per
// direction, read then written, so a slow receiver stops the reads and the
// pressure reaches the sender; between two plain TCP hops the kernel moves
// the bytes (splice), the same semantics without the copies.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>

#include "transport/hop_stream.hpp"

namespace transport {

// Until `from` ends. A clean end (eof) is passed on as a half-close of `to`
// and the other direction goes on. An error reading `from` ends both hops;
// those on a plain TCP connection are reset (SO_LINGER 0), so that their
// peer never takes the failure for an end of stream. An error writing to
// `to` ends this direction only and touches neither hop: `to` is gone, but
// what it sent before it went may still be on its way the other way (an
// end's last ERROR or SHUTDOWN, which tells the peer the tunnel ended
// rather than its hop), and that direction, reading `to`, then ends both.
// The caller must run both directions and close both hops when they have
// ended. `count` grows by the bytes delivered.
boost::asio::awaitable<void> relay_one_way(hop_stream& from, hop_stream& to, std::uint64_t& count);

// Ends a hop with a reset where it is a plain TCP connection, else closes it.
void reset_hop(hop_stream& h);

}  // namespace transport
