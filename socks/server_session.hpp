// The server side of one SOCKS connection, from its first byte to its
// request (SOCKS5 with RFC 1929 logins, SOCKS4 and 4a), without I/O: bytes
// from the client go into receive(), bytes for the client come out of
// output(), and status() says what to do next. The caller owns the socket,
// the deadline and the logs; this owns the order of the messages and what
// each answer is.
//
//   need_more  write output() (if any), read more, call receive() again
//   request    a request was read: request() and version() say what it
//              asks; unread() holds bytes the client sent after it (early
//              data). Answer with reply_success or reply_failure.
//   failed     write output() (a refusal, where the protocol has one), then
//              close. failure() says why, for the log.
//
// The result does not depend on how the bytes were split when they came.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "socks/socks4.hpp"
#include "socks/socks5.hpp"

namespace socks {

class server_session {
 public:
  struct user {
    std::string username, password;
  };
  // Longer than any valid message: a client that sends this much without
  // completing one is refused.
  static constexpr std::size_t max_message = 2048;

  // `users` empty: no login (method 0); else RFC 1929 logins, compared in
  // constant time, and SOCKS4 (which has no passwords) refused.
  explicit server_session(std::vector<user> users = {});

  enum class status { need_more, request, failed };
  // Where a session is, for a caller naming what a slow client did not
  // finish in time.
  enum class phase { greeting, login, request, done };

  // After the request, bytes received are kept as unread (early data).
  void receive(std::span<const std::uint8_t> bytes);
  status state() const { return status_; }
  phase where() const { return phase_; }
  std::vector<std::uint8_t>& output() { return out_; }

  // Once state() is request:
  int version() const { return version_; }  // 4 (with 4a) or 5
  std::uint8_t command_byte() const { return command_; }
  const address& destination() const { return destination_; }
  // True for CONNECT and BIND, and UDP ASSOCIATE with SOCKS5.
  bool command_supported() const;
  std::span<const std::uint8_t> unread() const { return in_; }
  std::vector<std::uint8_t> take_unread() { return std::move(in_); }

  // Replies in the request's version (SOCKS4 knows only granted/rejected).
  // BIND's second reply is one more reply_success.
  void reply_success(const address& bound);
  void reply_failure(reply_code code);

  // Once state() is failed: the kind ("bad greeting", "bad login", "login
  // refused", ...: a key for throttled logs) and the whole message. No
  // password is ever in either; a refused user's name is.
  const std::string& failure_kind() const { return failure_kind_; }
  const std::string& failure() const { return failure_; }

 private:
  void advance();
  void fail(std::string kind, std::string what);
  void consume(std::size_t n);
  void reply_failure_v4();

  std::vector<user> users_;
  std::vector<std::uint8_t> in_;
  std::vector<std::uint8_t> out_;
  status status_ = status::need_more;
  phase phase_ = phase::greeting;
  int version_ = 0;
  std::uint8_t command_ = 0;
  address destination_;
  std::string failure_kind_, failure_;
};

}  // namespace socks
