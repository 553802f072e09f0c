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

}  // namespace runtime
