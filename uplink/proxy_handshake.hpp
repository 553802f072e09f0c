// The client side of the proxies an uplink may have to go through to get
// out of a network: SOCKS5 (RFC 1928, with RFC 1929 username/password),
// SOCKS4a, and HTTP CONNECT (RFC 9110 9.3.6, with the logins of
// proxy_login.hpp). Sans-I/O: take_output() gives the bytes to send, feed()
// takes what the proxy answered, until the status is done (the connection
// now leads to the target) or failed (error() says why, in words an
// operator can act on). On the way an HTTP login may ask for compute()
// (a Kerberos step that may block: run it off the I/O thread) or for a
// new connection to the same proxy (reconnect: open it, call
// reconnected(), go on).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "uplink/proxy_login.hpp"
#include "uplink/ways.hpp"

namespace uplink {

using bytes = std::vector<std::uint8_t>;

class proxy_handshake {
 public:
  enum class status { need_more, done, failed, compute, reconnect };

  // A handshake asking `proxy` to connect to host:port. The host is passed
  // on as a name (the proxy resolves it) unless it is an IP address.
  // `hooks`: what an HTTP proxy login needs from outside (tests replace
  // them).
  static std::unique_ptr<proxy_handshake> make(const uplink::proxy& proxy, const std::string& host,
                                               std::uint16_t port, login_hooks hooks = default_login_hooks());
  virtual ~proxy_handshake() = default;

  bytes take_output() { return std::exchange(output_, {}); }
  // Answers longer than this are refused: a proxy has no reason to send
  // more before the connection is established.
  static constexpr std::size_t max_answer = 16 * 1024;
  status feed(std::span<const std::uint8_t> data);
  status state() const { return state_; }
  // The proxy closed the connection (end of stream).
  virtual void eof() { fail("the proxy closed the connection"); }
  // After status::compute.
  virtual void compute() {}
  // After status::reconnect, on the new connection.
  virtual void reconnected() {}
  const std::string& error() const { return error_; }
  // Bytes that came after the end of the handshake: the first bytes from the
  // target, to be read before anything else.
  bytes& leftover() { return leftover_; }

 protected:
  // Consumes from in_ as far as it can; sets state_ (and error_ or output_).
  virtual void step() = 0;
  void fail(std::string why) {
    state_ = status::failed;
    error_ = std::move(why);
  }
  void finish(std::size_t consumed) {
    leftover_.assign(in_.begin() + static_cast<std::ptrdiff_t>(consumed), in_.end());
    in_.clear();
    state_ = status::done;
  }
  void set_state(status s) { state_ = s; }
  void consume(std::size_t n) { in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(n)); }

  bytes in_;
  bytes output_;

 private:
  status state_ = status::need_more;
  std::string error_;
  bytes leftover_;
};

}  // namespace uplink
