// The middle proxy's side of every carrier on one port: looks at the first
// bytes of an accepted connection and opens the hop they start, so one
// listener (e.g. on 443) serves ends that come as raw LSTP, inside TLS, as
// WebSocket, or as WebSocket inside TLS.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <vector>
#include <cstdint>
#include <memory>
#include <string>

#include "transport/hop_stream.hpp"

namespace transport {

class tls_server_identity;

// What the first byte of a connection says it speaks. LSTP starts with
// COMMON_UNIQUE_INFO (0x01), TLS with a handshake record (0x16), HTTP with
// an upper-case method name.
enum class first_byte_kind { lstp, tls, http, unknown };
first_byte_kind classify_first_byte(std::uint8_t b);

struct acceptor_options {
  std::string websocket_path = "/lstp";
  // Certificate and key for TLS hops; null: TLS hops are refused.
  std::shared_ptr<const tls_server_identity> tls;
  // Takes a connection that carries `http` carrier requests
  // (<websocket_path>/up or /down, PROTOCOL.md 9.1), with the bytes read
  // from it so far; empty: such requests are answered 404.
  std::function<void(boost::asio::ip::tcp::socket, std::vector<std::uint8_t>)> poll_handoff;
};

// Reads the first bytes and the carrier's handshakes, all within `timeout`,
// and returns the hop. Returns null when the connection is not a
// hop, after answering it where that makes sense (a plain web request gets
// "404 Not Found"); `why` then says what it was, for the log. Returns null
// with `why` empty when the connection went to options.poll_handoff.
boost::asio::awaitable<hop_ptr> accept_hop(boost::asio::ip::tcp::socket socket, const acceptor_options& options,
                                           std::chrono::steady_clock::duration timeout, std::string& why);

}  // namespace transport
