#include "transport/upgrade_sniffer.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <cstring>

namespace transport {

namespace http = boost::beast::http;

upgrade_sniffer::upgrade_sniffer(std::string websocket_path) : path_(std::move(websocket_path)) {
  parser_.header_limit(header_limit);
  parser_.body_limit(body_limit);
  parser_.eager(true);
}

upgrade_sniffer::verdict upgrade_sniffer::feed(std::span<const std::uint8_t> bytes) {
  if (verdict_ != verdict::need_more) return verdict_;
  // Never more than a request's worth held: the parser refuses what is
  // over its limits before the buffer could pass them by much.
  if (buffer_.size() + bytes.size() > header_limit + body_limit + 4096) {
    why_ = "not a valid HTTP request (too large)";
    return verdict_ = verdict::bad_request;
  }
  if (!bytes.empty()) {
    auto space = buffer_.prepare(bytes.size());
    std::memcpy(space.data(), bytes.data(), bytes.size());
    buffer_.commit(bytes.size());
  }
  while (!parser_.is_done()) {
    boost::system::error_code ec;
    const auto used = parser_.put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) {
      if (used == 0) return verdict::need_more;
      continue;
    }
    if (ec) {
      why_ = "not a valid HTTP request (" + ec.message() + ")";
      return verdict_ = verdict::bad_request;
    }
    if (used == 0 && !parser_.is_done()) return verdict::need_more;
  }
  return verdict_ = decide();
}

namespace {
// The path of a request target: origin-form as it is, absolute-form
// ("http://host:port/path", as a proxy that passes WebSocket upgrades may
// forward it) without its scheme and authority.
std::string_view path_of(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() && target.substr(0, scheme.size()) == scheme) {
      const auto slash = target.find('/', scheme.size());
      return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  return target;
}
}  // namespace

upgrade_sniffer::verdict upgrade_sniffer::decide() {
  const auto& req = parser_.get();
  version_ = req.version();
  if (!boost::beast::websocket::is_upgrade(req) ||
      path_of(std::string_view(req.target().data(), req.target().size())) != path_) {
    why_ = "a web request (" + std::string(req.method_string()) + " " + std::string(req.target().substr(0, 100)) +
           "), answered 404";
    return verdict::web_request;
  }
  if (buffer_.size() > 0) {
    // A WebSocket client waits for 101 before it sends: bytes already here
    // break the protocol.
    why_ = "WebSocket upgrade followed by early data";
    return verdict::early_data;
  }
  return verdict::upgrade;
}

http::request<http::string_body> upgrade_sniffer::take_request() { return parser_.release(); }

}  // namespace transport
