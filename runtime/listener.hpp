// Listening sockets for both executables: open one listener per configured
// address, and an accept loop that survives failures (out of descriptors and
// the like: it logs, backs off 100 ms and goes on) and hands each accepted
// socket to a callback.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace runtime {

// Binds host:port (the first address a name resolves to) with SO_REUSEADDR
// and listens. Throws std::system_error naming `what` and the address.
std::unique_ptr<boost::asio::ip::tcp::acceptor> open_listener(boost::asio::io_context& io, const std::string& host,
                                                              std::uint16_t port, std::string_view what);

// Runs until the acceptor is closed.
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, std::string_view component,
                                         std::function<void(boost::asio::ip::tcp::socket)> on_accept);

// Asio keeps the per-socket state of its reactor in a pool that only grows:
// states made during a burst of connections stay, scattered between the
// burst's freed memory, and pin those pages after the burst is gone (about
// 5 KiB of RSS per connection of the burst, measured). Making `count` states
// at start (sockets opened and closed at once) puts them together up front,
// so a burst of up to that many connections leaves nothing behind. Stops
// quietly when descriptors run out.
void prewarm_socket_states(boost::asio::io_context& io, std::size_t count);

// Raises the soft limit on open descriptors to the hard limit, warns when
// `max_connections` may not fit in it, and prewarms
// the reactor for `max_openings` connections at once (above).
void prepare_for_connections(boost::asio::io_context& io, std::size_t max_connections, std::size_t max_openings);

// After a burst of connections has gone, glibc keeps the freed memory in its
// heap (only the top is given back on its own). Every 10 s, when the heap
// holds 256 KiB or more of free bytes, malloc_trim gives their pages back.
void trim_memory_after_bursts(boost::asio::io_context& io);

}  // namespace runtime
