#include "socks/server_session.hpp"

#include <botan/mem_ops.h>

namespace socks {

namespace {
// Constant time over the configured value; the length leaks, the content not.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return Botan::constant_time_compare(reinterpret_cast<const std::uint8_t*>(a.data()),
                                      reinterpret_cast<const std::uint8_t*>(b.data()), a.size());
}
}  // namespace

server_session::server_session(std::vector<user> users) : users_(std::move(users)) {}

bool server_session::command_supported() const {
  return command_ == static_cast<std::uint8_t>(command::connect) ||
         command_ == static_cast<std::uint8_t>(command::bind) ||
         (version_ == 5 && command_ == static_cast<std::uint8_t>(command::udp_associate));
}

void server_session::receive(std::span<const std::uint8_t> bytes) {
  in_.insert(in_.end(), bytes.begin(), bytes.end());
  advance();
}

void server_session::consume(std::size_t n) { in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(n)); }

void server_session::fail(std::string kind, std::string what) {
  status_ = status::failed;
  failure_kind_ = std::move(kind);
  failure_ = std::move(what);
}

void server_session::advance() {
  while (status_ == status::need_more && !in_.empty()) {
    switch (phase_) {
      case phase::greeting: {
        // The first byte tells SOCKS4 from SOCKS5.
        if (in_[0] == socks4_version) {
          auto r = parse_socks4_request(in_);
          if (r.status == parse_status::invalid) {
            reply_failure_v4();
            return fail("bad request", "bad SOCKS4 request: " + std::string(to_string(r.error)));
          }
          if (r.status == parse_status::need_more) break;
          version_ = 4;
          consume(r.consumed);
          if (!users_.empty()) {
            fail("socks4 with users", "SOCKS4 request refused: users are configured, and SOCKS4 has no passwords");
            reply_failure_v4();
            return;
          }
          command_ = r.value.cmd;
          destination_ = r.value.dst;
          phase_ = phase::done;
          status_ = status::request;
          return;
        }
        auto r = parse_greeting(in_);
        if (r.status == parse_status::invalid) return fail("bad greeting", "bad greeting: " + std::string(to_string(r.error)));
        if (r.status == parse_status::need_more) break;
        version_ = 5;
        consume(r.consumed);
        const auto method = choose_method(r.value, !users_.empty());
        write_method_choice(out_, method);
        if (method == method_none_acceptable) return fail("no method", "no acceptable authentication method offered");
        phase_ = method == method_userpass ? phase::login : phase::request;
        continue;
      }
      case phase::login: {
        auto r = parse_userpass(in_);
        if (r.status == parse_status::invalid) {
          write_userpass_status(out_, false);
          return fail("bad login", "bad login message: " + std::string(to_string(r.error)));
        }
        if (r.status == parse_status::need_more) break;
        consume(r.consumed);
        // Every user is compared, name and password both, whatever matched:
        // the time taken does not tell which part was wrong.
        bool ok = false;
        for (auto& u : users_) {
          const bool name_ok = same_secret(u.username, r.value.username);
          const bool password_ok = same_secret(u.password, r.value.password);
          ok = (name_ok && password_ok) || ok;
        }
        write_userpass_status(out_, ok);
        if (!ok) return fail("login refused", "login refused for user \"" + r.value.username + "\"");
        phase_ = phase::request;
        continue;
      }
      case phase::request: {
        auto r = parse_request(in_);
        if (r.status == parse_status::invalid) {
          reply_failure(r.error == parse_error::bad_address_type ? reply_code::address_type_not_supported
                                                                 : reply_code::general_failure);
          return fail("bad request", "bad request: " + std::string(to_string(r.error)));
        }
        if (r.status == parse_status::need_more) break;
        consume(r.consumed);
        command_ = r.value.raw_cmd;
        destination_ = r.value.dst;
        phase_ = phase::done;
        status_ = status::request;
        return;
      }
      case phase::done: return;
    }
    // need_more: bounded, so a client cannot make us hold any amount.
    if (in_.size() > max_message) {
      if (phase_ == phase::login) write_userpass_status(out_, false);
      if (phase_ == phase::request) reply_failure(reply_code::general_failure);
      fail("too long", "a SOCKS message longer than any valid one");
    }
    return;
  }
}

void server_session::reply_success(const address& bound) {
  if (version_ == 4)
    write_socks4_reply(out_, true, bound);
  else
    write_reply(out_, reply_code::succeeded, bound);
}

void server_session::reply_failure(reply_code code) {
  if (version_ == 4) return reply_failure_v4();
  write_reply(out_, code, address{});
}

void server_session::reply_failure_v4() { write_socks4_reply(out_, false, address{}); }

}  // namespace socks
