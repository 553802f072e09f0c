// Moves bytes from one TCP socket to another with splice(2) through a pipe:
// the kernel hands pages from one socket to the other and the bytes never
// enter user space. A middle proxy uses it between two plain TCP hops
// (issue 5: the middle only passes ciphertext through; copying it costs
// CPU for nothing).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>

namespace transport {

// Until `from` reaches EOF (ec = eof, every byte before it delivered) or
// an error (ec set; bytes may be lost, as with a failed write; `writing`
// says the error was writing to `to`, not reading from `from`). `count`
// grows by the bytes delivered. Back-pressure is kept: while `to` cannot
// take more, nothing more is read from `from` (at most one pipe's worth,
// 1 MiB, is in flight here). Sets both sockets non-blocking. The process
// must ignore SIGPIPE (runtime::hold_stop_signals does): splice(2) to a
// closed connection raises it, as it has no MSG_NOSIGNAL.
boost::asio::awaitable<void> splice_one_way(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to,
                                            std::uint64_t& count, boost::system::error_code& ec, bool& writing);

}  // namespace transport
