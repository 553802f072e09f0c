#include "uplink/proxy_handshake.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <botan/base64.h>

#include "uplink/ip_literal.hpp"
#include "uplink/proxy_login.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

namespace uplink {

namespace http = boost::beast::http;

proxy_handshake::status proxy_handshake::feed(std::span<const std::uint8_t> data) {
  if (state_ != status::need_more) {
    // After the end, bytes are the target's: keep them in order.
    if (state_ == status::done) leftover_.insert(leftover_.end(), data.begin(), data.end());
    return state_;
  }
  in_.insert(in_.end(), data.begin(), data.end());
  step();
  if (state_ == status::need_more && in_.size() > max_answer)
    fail("the proxy sent more than " + std::to_string(max_answer) + " bytes without finishing its answer");
  return state_;
}

namespace {

void put_u16(bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

std::string target_text(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const char* socks5_reply_text(std::uint8_t code) {
  switch (code) {
    case 1: return "general SOCKS server failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown error";
  }
}

class socks5_handshake final : public proxy_handshake {
 public:
  socks5_handshake(const uplink::proxy& p, const std::string& host, std::uint16_t port)
      : user_(p.username), password_(p.password), host_(host), port_(port) {
    if (user_.empty())
      output_ = {0x05, 0x01, 0x00};
    else
      output_ = {0x05, 0x02, 0x00, 0x02};
  }

 private:
  enum class phase { method, auth, reply };

  void step() override {
    if (phase_ == phase::method) {
      if (in_.size() < 2) return;
      if (in_[0] != 0x05) return fail("the proxy does not speak SOCKS5 (its answer starts with " + hex(in_[0]) + ")");
      const auto method = in_[1];
      consume(2);
      if (method == 0x00) {
        send_request();
      } else if (method == 0x02 && !user_.empty()) {
        output_.push_back(0x01);
        output_.push_back(static_cast<std::uint8_t>(user_.size()));
        output_.insert(output_.end(), user_.begin(), user_.end());
        output_.push_back(static_cast<std::uint8_t>(password_.size()));
        output_.insert(output_.end(), password_.begin(), password_.end());
        phase_ = phase::auth;
      } else if (method == 0x02) {
        return fail("the SOCKS5 proxy wants a username and password; give them in the proxy URL");
      } else {
        return fail(user_.empty() ? "the SOCKS5 proxy accepts no connection without authentication"
                                  : "the SOCKS5 proxy accepts neither no authentication nor username/password");
      }
    }
    if (phase_ == phase::auth) {
      if (in_.size() < 2) return;
      if (in_[1] != 0x00) return fail("the SOCKS5 proxy refused the username or password");
      consume(2);
      send_request();
    }
    if (phase_ == phase::reply) {
      if (in_.size() < 5) return;
      if (in_[0] != 0x05) return fail("the proxy broke the SOCKS5 protocol (reply version " + hex(in_[0]) + ")");
      if (in_[1] != 0x00)
        return fail(std::string("the SOCKS5 proxy could not connect to ") + target_text(host_, port_) + ": " +
                    socks5_reply_text(in_[1]));
      std::size_t addr = 0;
      switch (in_[3]) {
        case 0x01: addr = 4; break;
        case 0x04: addr = 16; break;
        case 0x03: addr = 1 + std::size_t{in_[4]}; break;
        default: return fail("the proxy broke the SOCKS5 protocol (address type " + hex(in_[3]) + ")");
      }
      const std::size_t total = 4 + addr + 2;
      if (in_.size() < total) return;
      finish(total);
    }
  }

  void send_request() {
    output_.insert(output_.end(), {0x05, 0x01, 0x00});
    if (auto ip = parse_ip_literal(host_)) {
      output_.push_back(ip->v6 ? 0x04 : 0x01);
      output_.insert(output_.end(), ip->bytes.begin(), ip->bytes.end());
    } else {
      output_.push_back(0x03);
      output_.push_back(static_cast<std::uint8_t>(host_.size()));
      output_.insert(output_.end(), host_.begin(), host_.end());
    }
    put_u16(output_, port_);
    phase_ = phase::reply;
  }

  static std::string hex(std::uint8_t b) {
    static constexpr char digits[] = "0123456789abcdef";
    return std::string("0x") + digits[b >> 4] + digits[b & 0xf];
  }

  std::string user_, password_, host_;
  std::uint16_t port_;
  phase phase_ = phase::method;
};

class socks4a_handshake final : public proxy_handshake {
 public:
  socks4a_handshake(const uplink::proxy& p, const std::string& host, std::uint16_t port) {
    output_ = {0x04, 0x01};
    put_u16(output_, port);
    const auto ip = parse_ip_literal(host);
    if (ip && ip->v6) {
      ipv6_ = true;
      return;
    }
    const bool literal = ip.has_value();
    if (literal) {
      output_.insert(output_.end(), ip->bytes.begin(), ip->bytes.end());
    } else {
      output_.insert(output_.end(), {0, 0, 0, 1});  // SOCKS4a: the name follows
    }
    output_.insert(output_.end(), p.username.begin(), p.username.end());
    output_.push_back(0);
    if (!literal) {
      output_.insert(output_.end(), host.begin(), host.end());
      output_.push_back(0);
    }
  }

  // Known before anything is sent; make() turns it into a failed handshake.
  bool ipv6_ = false;

 private:
  void step() override {
    if (in_.size() < 8) return;
    if (in_[0] != 0x00) return fail("the proxy does not speak SOCKS4");
    switch (in_[1]) {
      case 0x5a: return finish(8);
      case 0x5b: return fail("the SOCKS4 proxy rejected the connection (or could not make it)");
      case 0x5c:
      case 0x5d: return fail("the SOCKS4 proxy could not confirm the user id with identd");
      default: return fail("the proxy broke the SOCKS4 protocol");
    }
  }
};

// CONNECT, and the login the proxy asks for (proxy_login): each 407 is
// read whole (its body too, so the connection can carry the next request)
// and answered with the strongest scheme offered. No credential is sent
// before the proxy asks for one: a password never crosses in Basic to a
// proxy that would have taken Digest, NTLM or Kerberos.
class http_connect_handshake final : public proxy_handshake {
 public:
  http_connect_handshake(const uplink::proxy& p, const std::string& host, std::uint16_t port, login_hooks hooks)
      : target_(target_text(host, port)), login_(p, target_, std::move(hooks)) {
    send_request({});
  }

  void compute() override {
    if (state() != status::compute) return;
    login_.compute();
    if (login_.failed()) return fail(refused_text() + login_.why());
    set_state(status::need_more);
    after_answer();
  }

  void reconnected() override {
    if (state() != status::reconnect) return;
    set_state(status::need_more);
    in_.clear();
    send_request(login_.header());
  }

  void eof() override {
    // A proxy that closes the connection in the middle of its 407's body:
    // the login goes on over a new one.
    if (phase_ == phase::body && state() == status::need_more) {
      keep_alive_ = false;
      in_.clear();
      return challenge();
    }
    fail("the proxy closed the connection");
  }

 private:
  enum class phase { header, body };

  void send_request(const std::string& authorization) {
    std::string req = "CONNECT " + target_ + " HTTP/1.1\r\nHost: " + target_ + "\r\n";
    if (!authorization.empty()) req += "Proxy-Authorization: " + authorization + "\r\n";
    req += "\r\n";
    output_.insert(output_.end(), req.begin(), req.end());
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(max_answer));
    challenges_.clear();
    body_left_ = 0;
    phase_ = phase::header;
  }

  std::string refused_text() const { return "the HTTP proxy answered " + status_line_ + ": "; }

  void step() override {
    if (phase_ == phase::header) {
      // The parser gets the header only once it is complete, all at once:
      // what it says then cannot depend on how the bytes were split.
      // Something else answering (an SSH or SMTP server, a TLS alert) is
      // told apart by its first five bytes, without waiting for more.
      static constexpr std::string_view http_prefix = "HTTP/";
      const auto head = std::min(in_.size(), http_prefix.size());
      if (!std::equal(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(head), http_prefix.begin()))
        return fail("the HTTP proxy's answer is not HTTP (it starts with something else)");
      static constexpr std::string_view end_of_header = "\r\n\r\n";
      auto it = std::search(in_.begin(), in_.end(), end_of_header.begin(), end_of_header.end());
      if (it == in_.end()) return;
      const auto used = static_cast<std::size_t>(it - in_.begin()) + end_of_header.size();
      std::size_t taken = 0;
      while (!parser_->is_header_done() && taken < used) {
        boost::system::error_code ec;
        auto n = parser_->put(boost::asio::buffer(in_.data() + taken, used - taken), ec);
        if (ec) return fail("the HTTP proxy's answer is not HTTP: " + ec.message());
        if (n == 0) break;
        taken += n;
      }
      if (!parser_->is_header_done()) return fail("the HTTP proxy's answer is not HTTP");
      const auto& res = parser_->get();
      const auto code = res.result_int();
      // A 2xx to CONNECT has no body: the bytes after the header are the
      // target's.
      if (code >= 200 && code < 300) return finish(used);
      status_line_ = std::to_string(code) + " " + std::string(res.reason());
      // 407 is the standard answer; some proxies (tinyproxy) send 401.
      if (code != 407 && code != 401) {
        std::string why = "the HTTP proxy answered " + status_line_;
        if (code == 403) why += " (it does not allow CONNECT to this host or port)";
        return fail(why);
      }
      for (const auto& field : res) {
        if (field.name() != http::field::proxy_authenticate && field.name() != http::field::www_authenticate) continue;
        if (!parse_challenges(std::string_view(field.value().data(), field.value().size()), challenges_))
          return fail(refused_text() + "its Proxy-Authenticate does not parse");
      }
      consume(used);
      // The 407's body (an error page) is skipped by its Content-Length, so
      // the connection can carry the next request. A body of another kind
      // (chunked, or to the end of the connection), or a large one, is not
      // read at all: the login goes on over a new connection.
      keep_alive_ = parser_->keep_alive();
      const auto length = parser_->content_length();
      if (parser_->chunked() || !length || *length > max_body) {
        keep_alive_ = false;
        in_.clear();
        return challenge();
      }
      body_left_ = static_cast<std::size_t>(*length);
      phase_ = phase::body;
    }
    const auto n = std::min(body_left_, in_.size());
    consume(n);
    body_left_ -= n;
    if (body_left_ > 0) return;
    challenge();
  }

  void challenge() {
    if (!in_.empty()) return fail(refused_text() + "and sent more than its answer");
    switch (login_.answer(challenges_)) {
      case proxy_login::next::give_up: return fail(refused_text() + login_.why());
      case proxy_login::next::compute: return set_state(status::compute);
      case proxy_login::next::send: return after_answer();
    }
  }

  void after_answer() {
    if (keep_alive_) return send_request(login_.header());
    if (login_.needs_same_connection())
      return fail(refused_text() + "and closed the connection in the middle of the " + login_.scheme() +
                  " login (it logs in per connection)");
    set_state(status::reconnect);
  }

  std::string target_;
  proxy_login login_;
  // An error page longer than this is not read through: a new connection
  // is cheaper.
  static constexpr std::uint64_t max_body = 64 * 1024;
  std::optional<http::response_parser<http::empty_body>> parser_;
  std::size_t body_left_ = 0;
  std::vector<auth_challenge> challenges_;
  std::string status_line_;
  phase phase_ = phase::header;
  bool keep_alive_ = true;
};

class failed_handshake final : public proxy_handshake {
 public:
  explicit failed_handshake(std::string why) { fail(std::move(why)); }

 private:
  void step() override {}
};

}  // namespace

std::unique_ptr<proxy_handshake> proxy_handshake::make(const uplink::proxy& proxy, const std::string& host,
                                                       std::uint16_t port, login_hooks hooks) {
  switch (proxy.kind) {
    case uplink::proxy_kind::socks5:
      if (host.size() > 255) return std::make_unique<failed_handshake>("a host name longer than 255 bytes");
      return std::make_unique<socks5_handshake>(proxy, host, port);
    case uplink::proxy_kind::socks4a: {
      auto h = std::make_unique<socks4a_handshake>(proxy, host, port);
      if (h->ipv6_) return std::make_unique<failed_handshake>("a SOCKS4a proxy cannot reach an IPv6 address");
      return h;
    }
    case uplink::proxy_kind::http:
      return std::make_unique<http_connect_handshake>(proxy, host, port, std::move(hooks));
  }
  return std::make_unique<failed_handshake>("unknown proxy kind");
}

}  // namespace uplink
