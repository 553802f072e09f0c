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
  // raw_ keeps every byte fed (for the http carrier's handoff): bounded
  // the same, whatever the parser consumed (chunk extensions are parsed
  // away without limit).
  if (buffer_.size() + bytes.size() > header_limit + body_limit + 4096 ||
      raw_.size() + bytes.size() > header_limit + body_limit + 4096) {
    why_ = "not a valid HTTP request (too large)";
    return verdict_ = verdict::bad_request;
  }
  raw_.insert(raw_.end(), bytes.begin(), bytes.end());
  if (!bytes.empty()) {
    auto space = buffer_.prepare(bytes.size());
    std::memcpy(space.data(), bytes.data(), bytes.size());
    buffer_.commit(bytes.size());
  }
  while (!parser_.is_done()) {
    boost::system::error_code ec;
    const auto used = parser_.put(buffer_.data(), ec);
    buffer_.consume(used);
    // An `http` carrier request is decided on its head: its body may be
    // larger than a web request's here (the parser refuses its length once
    // the head is read), and its server reads it again.
    const bool head_read = ((!ec || ec == http::error::need_more) && parser_.is_header_done()) ||
                           ec == http::error::body_limit;
    if (head_read && is_poll_target()) {
      version_ = parser_.get().version();
      why_ = "an http carrier request";
      return verdict_ = verdict::poll_request;
    }
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

bool upgrade_sniffer::is_poll_target() const {
  const auto target = parser_.get().target();
  auto path = path_of(std::string_view(target.data(), target.size()));
  path = path.substr(0, path.find('?'));
  return path.size() > path_.size() && path.substr(0, path_.size()) == path_ &&
         (path.substr(path_.size()) == "/up" || path.substr(path_.size()) == "/down");
}

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
