// libFuzzer target for the SOCKS5 / RFC 1929 and SOCKS4/4a parsers.
//
// Feeds the input to all three parsers and checks the contract that holds
// for any input: need_more and invalid consume nothing, done consumes at most
// the input, every strict prefix of the input answers need_more or the same
// as the whole (split independence), and a parsed request's address
// round-trips through write_reply (a reply has the request's layout).
// Any violation traps, so the fuzzer reports it as a crash.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I.
//           socks/socks5.cpp tests/fuzz/socks5_fuzz.cpp -o socks5_fuzz
#include "socks/server_session.hpp"
#include "socks/socks4.hpp"
#include "socks/socks5.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

template <class T>
void check_shape(const socks::parsed<T>& r, std::size_t size) {
  switch (r.status) {
    case socks::parse_status::need_more:
      check(r.consumed == 0 && r.error == socks::parse_error::none);
      break;
    case socks::parse_status::invalid:
      check(r.consumed == 0 && r.error != socks::parse_error::none);
      break;
    case socks::parse_status::done:
      check(r.consumed > 0 && r.consumed <= size && r.error == socks::parse_error::none);
      break;
  }
}

template <class T>
bool same(const socks::parsed<T>& a, const socks::parsed<T>& b) {
  return a.status == b.status && a.error == b.error && a.consumed == b.consumed &&
         a.value == b.value;
}

// Whole input, then every strict prefix. Messages are at most 513 bytes, so
// only the first few hundred prefixes can differ; capping keeps runs fast.
template <class Parse>
auto run(Parse parse, std::span<const uint8_t> in) {
  const auto whole = parse(in);
  check_shape(whole, in.size());
  const std::size_t limit = in.size() < 600 ? in.size() : 600;
  for (std::size_t k = 0; k < limit; ++k) {
    const auto p = parse(in.first(k));
    check_shape(p, k);
    check(p.status == socks::parse_status::need_more || same(p, whole));
  }
  return whole;
}

}  // namespace

// The whole server session: fed whole, and fed in two pieces cut at a
// point taken from the input, it ends the same way with the same output
// and the same request, and it never holds more than it may.
struct session_end {
  socks::server_session::status state;
  std::vector<uint8_t> output;
  uint8_t command = 0;
  socks::address destination;
  std::vector<uint8_t> unread;
  bool operator==(const session_end&) const = default;
};

session_end run_session(std::span<const uint8_t> in, std::size_t cut, bool with_users) {
  std::vector<socks::server_session::user> users;
  if (with_users) users.push_back({"alice", "wonderland"});
  socks::server_session s(users);
  session_end e;
  for (auto piece : {in.first(cut), in.subspan(cut)}) {
    if (s.state() == socks::server_session::status::failed) break;
    s.receive(piece);
    e.output.insert(e.output.end(), s.output().begin(), s.output().end());
    s.output().clear();
  }
  e.state = s.state();
  if (e.state == socks::server_session::status::need_more)
    check(s.unread().size() <= socks::server_session::max_message);
  if (e.state == socks::server_session::status::request) {
    e.command = s.command_byte();
    e.destination = s.destination();
    e.unread.assign(s.unread().begin(), s.unread().end());
    s.reply_success(e.destination);
    check(!s.output().empty());
  }
  if (e.state == socks::server_session::status::failed) check(!s.failure().empty() && !s.failure_kind().empty());
  return e;
}

void check_session(std::span<const uint8_t> in) {
  const std::size_t cut = in.empty() ? 0 : in[in.size() / 2] % (in.size() + 1);
  for (bool users : {false, true}) check(run_session(in, 0, users) == run_session(in, cut, users));
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  check_session(in);

  run([](std::span<const uint8_t> s) { return socks::parse_greeting(s); }, in);
  run([](std::span<const uint8_t> s) { return socks::parse_userpass(s); }, in);
  const auto r = run([](std::span<const uint8_t> s) { return socks::parse_request(s); }, in);
  const auto r4 = run([](std::span<const uint8_t> s) { return socks::parse_socks4_request(s); }, in);
  if (r4.status == socks::parse_status::done) {
    (void)r4.value.dst.to_string();
    std::vector<uint8_t> out;
    socks::write_socks4_reply(out, true, r4.value.dst);
    check(out.size() == 8);
  }

  if (r.status == socks::parse_status::done) {
    (void)r.value.dst.to_string();
    (void)socks::to_string(r.error);
    for (uint8_t code = 0; code <= 8; ++code) {
      std::vector<uint8_t> out;
      socks::write_reply(out, static_cast<socks::reply_code>(code), r.value.dst);
      const auto back = socks::parse_request(out);
      check(back.status == socks::parse_status::done);
      check(back.consumed == out.size());
      check(back.value.raw_cmd == code);
      check(back.value.dst == r.value.dst);
    }
  }
  // UDP headers: a datagram is whole, never need_more; a parsed one
  // round-trips through write_udp_header with its data intact.
  const auto u = socks::parse_udp_datagram(in);
  check(u.status != socks::parse_status::need_more);
  if (u.status == socks::parse_status::done) {
    check(u.consumed == size && u.value.data.size() <= size);
    std::vector<uint8_t> out;
    socks::write_udp_header(out, u.value.dst);
    out.insert(out.end(), u.value.data.begin(), u.value.data.end());
    const auto back = socks::parse_udp_datagram(out);
    check(back.status == socks::parse_status::done && back.value.frag == 0 && back.value.dst == u.value.dst);
    check(std::equal(back.value.data.begin(), back.value.data.end(), u.value.data.begin(), u.value.data.end()));
  }
  if (size > 0) {
    // Method choice over arbitrary offers must always be one of three values.
    socks::greeting g{std::vector<uint8_t>(data, data + size)};
    for (bool users : {false, true}) {
      const uint8_t m = socks::choose_method(g, users);
      check(m == socks::method_no_auth || m == socks::method_userpass ||
            m == socks::method_none_acceptable);
    }
  }
  return 0;
}
