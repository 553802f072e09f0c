// The HTTP side of a middle's one port, sans-I/O: fed the bytes a
// connection sent, it says whether they are a WebSocket upgrade on our path
// (a hop), a web request to answer like any web server would, or not a
// valid request at all. The acceptor does the reading and the answering.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace transport {

class upgrade_sniffer {
 public:
  enum class verdict {
    need_more,    // the request is not complete yet
    upgrade,      // a WebSocket upgrade on our path: take_request()
    web_request,  // a complete request that is not ours: answer 404
    bad_request,  // not HTTP, or over the limits: answer 400
    early_data,   // an upgrade with bytes after it (a client waits for 101): answer 400
    poll_request, // the head of an `http` carrier request (<path>/up or /down,
                  // PROTOCOL.md 9.1): take_raw() and serve the connection
  };
  // Limits on what a stranger may make us hold.
  static constexpr std::size_t header_limit = 8 * 1024;
  static constexpr std::size_t body_limit = 64 * 1024;

  explicit upgrade_sniffer(std::string websocket_path);
  // Takes the next bytes of the connection. After a verdict other than
  // need_more, further bytes are not looked at.
  verdict feed(std::span<const std::uint8_t> bytes);
  // After `upgrade`: the request, for the WebSocket handshake.
  boost::beast::http::request<boost::beast::http::string_body> take_request();
  // After `poll_request`: every byte fed, the request's head and whatever
  // followed it, to be parsed again by the carrier's server.
  std::vector<std::uint8_t> take_raw() { return std::move(raw_); }
  // The request's HTTP version (11 until a request line was read), for the answer.
  unsigned version() const { return version_; }
  // What it was, for the log.
  const std::string& why() const { return why_; }

 private:
  verdict decide();
  bool is_poll_target() const;

  std::string path_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request_parser<boost::beast::http::string_body> parser_;
  verdict verdict_ = verdict::need_more;
  unsigned version_ = 11;
  std::string why_;
  std::vector<std::uint8_t> raw_;
};

}  // namespace transport
