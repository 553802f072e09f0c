// LSTP carried as WebSocket binary messages (RFC 6455), for networks that
// let only web traffic out. The message boundaries mean nothing: the hop is
// a byte stream, each write one message.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

#include "transport/hop_stream.hpp"

namespace transport {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;

// A WebSocket hop before its opening handshake. Made first and shaken
// hands with second, so the caller can bound the handshake in time with a
// watchdog on the hop itself.
class websocket_hop_base : public hop_stream {
 public:
  // Client side: `host` goes into the Host header.
  virtual boost::asio::awaitable<void> handshake(std::string host, std::string path,
                                                 boost::system::error_code& ec) = 0;
  // Server side: answers an upgrade request already read from the connection.
  virtual boost::asio::awaitable<void> accept(const http_request& request, boost::system::error_code& ec) = 0;
};

class tls_hop_base;

// Over a connection that already leads to the peer (directly or through
// proxies), or inside a TLS hop after its handshake (wss): WebSocket then
// runs on the TLS session itself, and the TLS hop is used no more.
std::unique_ptr<websocket_hop_base> make_websocket_hop(boost::asio::ip::tcp::socket socket);
std::unique_ptr<websocket_hop_base> make_websocket_hop(std::unique_ptr<tls_hop_base> tls);

}  // namespace transport
