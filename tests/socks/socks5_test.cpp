#include "socks/socks5.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace socks;

namespace {

using bytes = std::vector<uint8_t>;

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

bytes str(std::string_view s) { return bytes(s.begin(), s.end()); }

template <class T>
void require_same(const parsed<T>& a, const parsed<T>& b) {
  REQUIRE(a.status == b.status);
  REQUIRE(a.error == b.error);
  REQUIRE(a.consumed == b.consumed);
  REQUIRE(a.value == b.value);
}

// Acts like a connection reader: bytes arrive in chunks ending at `cuts`
// (then the rest), are appended to a buffer, and the parser runs after each
// chunk until it stops asking for more. Returns that first answer (or the
// final need_more). Every need_more on the way must consume nothing.
template <class Parse>
auto feed(Parse parse, const bytes& msg, const std::vector<std::size_t>& cuts) {
  bytes buf;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(msg.size());
  decltype(parse(std::span<const uint8_t>{})) r{parse_status::need_more, {}};
  for (std::size_t end : ends) {
    buf.insert(buf.end(), msg.begin() + static_cast<std::ptrdiff_t>(from),
               msg.begin() + static_cast<std::ptrdiff_t>(end));
    from = end;
    r = parse(std::span<const uint8_t>(buf));
    if (r.status != parse_status::need_more) return r;
    REQUIRE(r.consumed == 0);
    REQUIRE(r.error == parse_error::none);
  }
  return r;
}

// The whole-buffer answer must equal the answer under byte-at-a-time
// arrival and under a two-chunk split at every offset. Returns it.
template <class Parse>
auto check_splits(Parse parse, const bytes& msg) {
  const auto whole = parse(std::span<const uint8_t>(msg));

  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < msg.size(); ++i) every.push_back(i);
  {
    INFO("byte at a time");
    require_same(feed(parse, msg, every), whole);
  }
  for (std::size_t k = 0; k <= msg.size(); ++k) {
    INFO("split at " << k);
    require_same(feed(parse, msg, {k}), whole);
  }
  // Every strict prefix is either need_more or already the final answer.
  for (std::size_t k = 0; k < msg.size(); ++k) {
    INFO("prefix " << k);
    auto r = parse(std::span<const uint8_t>(msg.data(), k));
    if (r.status == parse_status::need_more) {
      REQUIRE(r.consumed == 0);
    } else {
      require_same(r, whole);
    }
  }
  return whole;
}

const auto greet = [](std::span<const uint8_t> s) { return parse_greeting(s); };
const auto auth = [](std::span<const uint8_t> s) { return parse_userpass(s); };
const auto req = [](std::span<const uint8_t> s) { return parse_request(s); };

// A valid message, followed by pipelined bytes: `done` must be reported
// exactly at the end of the message whatever the split, and the trailing
// bytes must stay unconsumed.
template <class Parse>
auto check_valid(Parse parse, const bytes& msg) {
  auto r = check_splits(parse, msg);
  REQUIRE(r.status == parse_status::done);
  REQUIRE(r.error == parse_error::none);
  REQUIRE(r.consumed == msg.size());
  // Byte at a time: no strict prefix is done or invalid.
  for (std::size_t k = 0; k < msg.size(); ++k)
    REQUIRE(parse(std::span<const uint8_t>(msg.data(), k)).status == parse_status::need_more);

  const bytes trailing = cat({msg, str("GET / HTTP/1.1\r\n"), bytes{5, 1, 0}});
  auto t = check_splits(parse, trailing);
  require_same(t, r);
  return r;
}

template <class Parse>
void check_invalid(Parse parse, const bytes& msg, parse_error e) {
  auto r = check_splits(parse, msg);
  REQUIRE(r.status == parse_status::invalid);
  REQUIRE(r.error == e);
  REQUIRE(r.consumed == 0);
  // Trailing bytes do not change the verdict either.
  require_same(check_splits(parse, cat({msg, bytes{0, 1, 2, 3}})), r);
}

}  // namespace

// ---------------------------------------------------------------- greeting

TEST_CASE("greeting: parses whole, byte at a time and at every split", "[socks]") {
  auto r = check_valid(greet, {5, 2, 0x00, 0x02});
  REQUIRE(r.value.methods == bytes{0x00, 0x02});
}

TEST_CASE("greeting: one method, all 255 methods, duplicates kept", "[socks]") {
  REQUIRE(check_valid(greet, {5, 1, 0x02}).value.methods == bytes{0x02});
  REQUIRE(check_valid(greet, {5, 3, 0x02, 0x02, 0x80}).value.methods == bytes{0x02, 0x02, 0x80});

  bytes all{5, 255};
  for (int i = 0; i < 255; ++i) all.push_back(static_cast<uint8_t>(i));
  auto r = check_valid(greet, all);
  REQUIRE(r.value.methods.size() == 255);
  REQUIRE(r.consumed == 257);
}

TEST_CASE("greeting: bad version and zero methods are invalid", "[socks]") {
  check_invalid(greet, {4, 1, 0x00}, parse_error::bad_version);
  check_invalid(greet, {0, 1, 0x00}, parse_error::bad_version);
  check_invalid(greet, {1, 1, 0x00}, parse_error::bad_version);  // an RFC 1929 message
  check_invalid(greet, {5, 0}, parse_error::no_methods);
  // Reported as soon as the offending byte is there.
  REQUIRE(parse_greeting(bytes{4}).status == parse_status::invalid);
  REQUIRE(parse_greeting(bytes{5, 0}).error == parse_error::no_methods);
}

TEST_CASE("greeting: empty input needs more", "[socks]") {
  auto r = parse_greeting({});
  REQUIRE(r.status == parse_status::need_more);
  REQUIRE(r.consumed == 0);
  REQUIRE(parse_greeting(bytes{5}).status == parse_status::need_more);
  REQUIRE(parse_greeting(bytes{5, 3, 0, 2}).status == parse_status::need_more);
}

// ---------------------------------------------------------------- RFC 1929

TEST_CASE("userpass: parses whole, byte at a time and at every split", "[socks]") {
  auto r = check_valid(auth, cat({{1, 5}, str("alice"), {6}, str("s3cret")}));
  REQUIRE(r.value.username == "alice");
  REQUIRE(r.value.password == "s3cret");
}

TEST_CASE("userpass: empty password accepted, bytes kept as-is", "[socks]") {
  auto r = check_valid(auth, cat({{1, 3}, str("bob"), {0}}));
  REQUIRE(r.value.username == "bob");
  REQUIRE(r.value.password.empty());

  const bytes odd{0x00, 0xFF, 0x80};
  auto o = check_valid(auth, cat({{1, 3}, odd, {3}, odd}));
  REQUIRE(o.value.username == std::string("\0\xff\x80", 3));
  REQUIRE(o.value.password == std::string("\0\xff\x80", 3));
}

TEST_CASE("userpass: 255-byte username and password", "[socks]") {
  const std::string u(255, 'u'), p(255, 'p');
  auto r = check_valid(auth, cat({{1, 255}, str(u), {255}, str(p)}));
  REQUIRE(r.value.username == u);
  REQUIRE(r.value.password == p);
  REQUIRE(r.consumed == 513);
}

TEST_CASE("userpass: bad version and empty username are invalid", "[socks]") {
  check_invalid(auth, cat({{5, 5}, str("alice"), {1}, str("x")}), parse_error::bad_auth_version);
  check_invalid(auth, cat({{0, 5}, str("alice"), {1}, str("x")}), parse_error::bad_auth_version);
  check_invalid(auth, cat({{1, 0}, {1}, str("x")}), parse_error::empty_username);
  check_invalid(auth, {1, 0}, parse_error::empty_username);
}

// ---------------------------------------------------------------- request

TEST_CASE("request: IPv4 connect", "[socks]") {
  auto r = check_valid(req, {5, 1, 0, 1, 10, 0, 0, 1, 0x01, 0xBB});
  REQUIRE(r.value.cmd == command::connect);
  REQUIRE(r.value.raw_cmd == 1);
  REQUIRE(r.value.dst == address::from_ipv4({10, 0, 0, 1}, 443));
  REQUIRE(r.value.dst.type == address::kind::ipv4);
  REQUIRE(r.value.dst.port == 443);
}

TEST_CASE("request: IPv6 bind", "[socks]") {
  const bytes ip{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  auto r = check_valid(req, cat({{5, 2, 0, 4}, ip, {0x1F, 0x90}}));
  REQUIRE(r.value.cmd == command::bind);
  REQUIRE(r.value.raw_cmd == 2);
  std::array<uint8_t, 16> a{};
  std::copy(ip.begin(), ip.end(), a.begin());
  REQUIRE(r.value.dst == address::from_ipv6(a, 8080));
  REQUIRE(r.value.dst.to_string() == "[2001:db8::1]:8080");
}

TEST_CASE("request: domain UDP associate", "[socks]") {
  auto r = check_valid(req, cat({{5, 3, 0, 3, 11}, str("example.com"), {0x00, 0x35}}));
  REQUIRE(r.value.cmd == command::udp_associate);
  REQUIRE(r.value.raw_cmd == 3);
  REQUIRE(r.value.dst == address::from_domain("example.com", 53));
  REQUIRE(r.value.dst.host == "example.com");
  REQUIRE(r.value.dst.port == 53);
}

TEST_CASE("request: 1- and 255-byte domains, non-ASCII bytes kept", "[socks]") {
  REQUIRE(check_valid(req, {5, 1, 0, 3, 1, 'a', 0, 80}).value.dst ==
          address::from_domain("a", 80));
  const std::string big(255, 'x');
  auto r = check_valid(req, cat({{5, 1, 0, 3, 255}, str(big), {0xFF, 0xFF}}));
  REQUIRE(r.value.dst == address::from_domain(big, 65535));
  REQUIRE(r.consumed == 4 + 1 + 255 + 2);
  auto u = check_valid(req, cat({{5, 1, 0, 3, 4}, {0xC3, 0xA9, 0x0A, 0xFF}, {0, 1}}));
  REQUIRE(u.value.dst.host == "\xC3\xA9\n\xFF");
}

TEST_CASE("request: unknown command still parses, with raw_cmd", "[socks]") {
  for (uint8_t c : {uint8_t{0}, uint8_t{4}, uint8_t{0x7F}, uint8_t{0xFF}}) {
    INFO("cmd " << int{c});
    auto r = check_valid(req, {5, c, 0, 1, 127, 0, 0, 1, 0, 80});
    REQUIRE(r.value.raw_cmd == c);
    REQUIRE(static_cast<uint8_t>(r.value.cmd) == c);
    REQUIRE_FALSE(is_known(r.value.cmd));
    REQUIRE(r.value.dst == address::from_ipv4({127, 0, 0, 1}, 80));
  }
  REQUIRE(is_known(command::connect));
  REQUIRE(is_known(command::bind));
  REQUIRE(is_known(command::udp_associate));
}

TEST_CASE("request: bad version, reserved and address type are invalid", "[socks]") {
  check_invalid(req, {4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, parse_error::bad_version);
  check_invalid(req, {5, 1, 1, 1, 1, 2, 3, 4, 0, 80}, parse_error::bad_reserved);
  check_invalid(req, {5, 1, 0xFF, 1, 1, 2, 3, 4, 0, 80}, parse_error::bad_reserved);
  for (uint8_t atyp : {uint8_t{0}, uint8_t{2}, uint8_t{5}, uint8_t{0xFF}}) {
    INFO("atyp " << int{atyp});
    check_invalid(req, {5, 1, 0, atyp, 1, 2, 3, 4, 0, 80}, parse_error::bad_address_type);
  }
  // Bad address type is known from the first four bytes, so the server can
  // answer 0x08 without waiting for an address of unknown length.
  REQUIRE(parse_request(bytes{5, 1, 0, 2}).error == parse_error::bad_address_type);
  // The earliest fault on the wire wins.
  check_invalid(req, {4, 1, 1, 9}, parse_error::bad_version);
  check_invalid(req, {5, 9, 1, 9}, parse_error::bad_reserved);
}

TEST_CASE("request: empty domain and NUL in domain are invalid", "[socks]") {
  check_invalid(req, {5, 1, 0, 3, 0, 0, 80}, parse_error::empty_domain);
  check_invalid(req, {5, 1, 0, 3, 0}, parse_error::empty_domain);
  check_invalid(req, cat({{5, 1, 0, 3, 5}, {'a', 'b', 0, 'c', 'd'}, {0, 80}}),
                parse_error::nul_in_domain);
  check_invalid(req, {5, 1, 0, 3, 1, 0, 0, 80}, parse_error::nul_in_domain);
}

TEST_CASE("request: truncated messages need more", "[socks]") {
  REQUIRE(parse_request(bytes{5, 1, 0, 1, 1, 2, 3, 4, 0}).status == parse_status::need_more);
  REQUIRE(parse_request(bytes{5, 1, 0, 4, 1, 2, 3, 4, 0, 80}).status == parse_status::need_more);
  REQUIRE(parse_request(bytes{5, 1, 0, 3, 3, 'a', 'b', 'c', 0}).status ==
          parse_status::need_more);
}

TEST_CASE("pipelined messages parse one after another", "[socks]") {
  const bytes stream = cat({{5, 1, 2}, {1, 1}, str("u"), {1}, str("p"),
                            {5, 1, 0, 1, 1, 2, 3, 4, 0, 80}, str("payload")});
  std::span<const uint8_t> s(stream);
  auto g = parse_greeting(s);
  REQUIRE(g.status == parse_status::done);
  s = s.subspan(g.consumed);
  auto a = parse_userpass(s);
  REQUIRE(a.status == parse_status::done);
  REQUIRE(a.value == userpass{"u", "p"});
  s = s.subspan(a.consumed);
  auto r = parse_request(s);
  REQUIRE(r.status == parse_status::done);
  s = s.subspan(r.consumed);
  REQUIRE(bytes(s.begin(), s.end()) == str("payload"));
}

TEST_CASE("random input: prefixes agree with the whole and nothing overreads", "[socks]") {
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 3000; ++iter) {
    const std::size_t n = rng() % 24;
    bytes msg(n);
    for (auto& b : msg) {
      // Small values make valid-looking headers and short lengths likely.
      b = static_cast<uint8_t>(rng() % 4 == 0 ? rng() : rng() % 7);
    }
    if (n > 0 && rng() % 2) msg[0] = (iter % 3 == 1) ? 1 : 5;
    if (n > 2 && rng() % 2) msg[2] = 0;
    INFO("iteration " << iter);
    if (auto g = check_splits(greet, msg); g.status == parse_status::done)
      REQUIRE(g.consumed <= n);
    if (auto a = check_splits(auth, msg); a.status == parse_status::done)
      REQUIRE(a.consumed <= n);
    auto r = check_splits(req, msg);
    if (r.status == parse_status::done) {
      REQUIRE(r.consumed <= n);
      bytes out;
      write_reply(out, reply_code::succeeded, r.value.dst);
      auto back = parse_request(out);
      REQUIRE(back.status == parse_status::done);
      REQUIRE(back.consumed == out.size());
      REQUIRE(back.value.dst == r.value.dst);
    }
  }
}

// ---------------------------------------------------------------- replies

TEST_CASE("replies: method choice and RFC 1929 status are byte-exact", "[socks]") {
  bytes out;
  write_method_choice(out, method_no_auth);
  REQUIRE(out == bytes{5, 0x00});
  write_method_choice(out, method_userpass);
  REQUIRE(out == bytes{5, 0x00, 5, 0x02});  // appends
  out.clear();
  write_method_choice(out, method_none_acceptable);
  REQUIRE(out == bytes{5, 0xFF});

  out.clear();
  write_userpass_status(out, true);
  REQUIRE(out == bytes{1, 0x00});
  out.clear();
  write_userpass_status(out, false);
  REQUIRE(out == bytes{1, 0x01});
}

TEST_CASE("replies: IPv4 bound address is byte-exact", "[socks]") {
  bytes out{0xAA};
  write_reply(out, reply_code::succeeded, address::from_ipv4({192, 168, 1, 2}, 1080));
  REQUIRE(out == bytes{0xAA, 5, 0, 0, 1, 192, 168, 1, 2, 0x04, 0x38});
}

TEST_CASE("replies: IPv6 bound address is byte-exact", "[socks]") {
  std::array<uint8_t, 16> ip{};
  ip[15] = 1;
  bytes out;
  write_reply(out, reply_code::host_unreachable, address::from_ipv6(ip, 0xABCD));
  REQUIRE(out == cat({{5, 4, 0, 4}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {0xAB, 0xCD}}));
}

TEST_CASE("replies: domain bound address is byte-exact", "[socks]") {
  bytes out;
  write_reply(out, reply_code::connection_refused, address::from_domain("proxy.lan", 443));
  REQUIRE(out == cat({{5, 5, 0, 3, 9}, str("proxy.lan"), {0x01, 0xBB}}));

  out.clear();
  const std::string big(255, 'd');
  write_reply(out, reply_code::succeeded, address::from_domain(big, 1));
  REQUIRE(out == cat({{5, 0, 0, 3, 255}, str(big), {0, 1}}));
}

TEST_CASE("replies: every reply code, and failure replies with 0.0.0.0:0", "[socks]") {
  const reply_code codes[] = {
      reply_code::succeeded,           reply_code::general_failure,
      reply_code::not_allowed,         reply_code::network_unreachable,
      reply_code::host_unreachable,    reply_code::connection_refused,
      reply_code::ttl_expired,         reply_code::command_not_supported,
      reply_code::address_type_not_supported};
  for (uint8_t i = 0; i < 9; ++i) {
    bytes out;
    write_reply(out, codes[i], address{});
    REQUIRE(out == bytes{5, i, 0, 1, 0, 0, 0, 0, 0, 0});
  }
}

TEST_CASE("replies: unencodable domains fall back to 0.0.0.0 with the port", "[socks]") {
  bytes out;
  write_reply(out, reply_code::succeeded, address::from_domain("", 80));
  REQUIRE(out == bytes{5, 0, 0, 1, 0, 0, 0, 0, 0, 80});
  out.clear();
  write_reply(out, reply_code::succeeded, address::from_domain(std::string(256, 'x'), 80));
  REQUIRE(out == bytes{5, 0, 0, 1, 0, 0, 0, 0, 0, 80});
  out.clear();
  address bogus = address::from_ipv4({1, 2, 3, 4}, 80);
  bogus.type = static_cast<address::kind>(2);
  write_reply(out, reply_code::succeeded, bogus);
  REQUIRE(out == bytes{5, 0, 0, 1, 0, 0, 0, 0, 0, 80});
}

TEST_CASE("replies: round-trip through the request parser", "[socks]") {
  std::array<uint8_t, 16> ip6{0xfe, 0x80};
  ip6[15] = 7;
  for (const auto& a : {address::from_ipv4({8, 8, 4, 4}, 53), address::from_ipv6(ip6, 22),
                        address::from_domain("a.example", 65535)}) {
    bytes out;
    write_reply(out, reply_code::succeeded, a);
    auto r = check_valid(req, out);  // same layout, REP in place of CMD
    REQUIRE(r.value.dst == a);
    REQUIRE(r.value.raw_cmd == 0);
  }
}

// ---------------------------------------------------------------- method choice

TEST_CASE("choose_method", "[socks]") {
  const greeting none_only{{method_no_auth}};
  const greeting up_only{{method_userpass}};
  const greeting both{{method_userpass, method_no_auth}};
  const greeting gssapi{{0x01}};
  const greeting ff{{0xFF}};

  SECTION("no users configured") {
    REQUIRE(choose_method(none_only, false) == method_no_auth);
    REQUIRE(choose_method(both, false) == method_no_auth);
    REQUIRE(choose_method(up_only, false) == method_none_acceptable);
    REQUIRE(choose_method(gssapi, false) == method_none_acceptable);
    REQUIRE(choose_method(ff, false) == method_none_acceptable);
    REQUIRE(choose_method(greeting{}, false) == method_none_acceptable);
  }
  SECTION("users configured") {
    REQUIRE(choose_method(up_only, true) == method_userpass);
    REQUIRE(choose_method(both, true) == method_userpass);
    REQUIRE(choose_method(none_only, true) == method_none_acceptable);
    REQUIRE(choose_method(gssapi, true) == method_none_acceptable);
    REQUIRE(choose_method(greeting{}, true) == method_none_acceptable);
  }
}

// ---------------------------------------------------------------- to_string

TEST_CASE("address::to_string: IPv4 and domain", "[socks]") {
  REQUIRE(address::from_ipv4({1, 2, 3, 4}, 80).to_string() == "1.2.3.4:80");
  REQUIRE(address::from_ipv4({0, 0, 0, 0}, 0).to_string() == "0.0.0.0:0");
  REQUIRE(address::from_ipv4({255, 255, 255, 255}, 65535).to_string() ==
          "255.255.255.255:65535");
  REQUIRE(address{}.to_string() == "0.0.0.0:0");
  REQUIRE(address::from_domain("example.com", 443).to_string() == "example.com:443");
  // Untrusted names cannot put control bytes into log lines.
  REQUIRE(address::from_domain("evil\r\nINFO ok", 1).to_string() == "evil\\x0d\\x0aINFO ok:1");
  REQUIRE(address::from_domain("a\\b\xff", 2).to_string() == "a\\x5cb\\xff:2");
}

TEST_CASE("address::to_string: IPv6 in RFC 5952 form", "[socks]") {
  auto v6 = [](std::initializer_list<uint16_t> words, uint16_t port) {
    std::array<uint8_t, 16> ip{};
    std::size_t i = 0;
    for (uint16_t w : words) {
      ip[i++] = static_cast<uint8_t>(w >> 8);
      ip[i++] = static_cast<uint8_t>(w & 0xFF);
    }
    return address::from_ipv6(ip, port).to_string();
  };
  REQUIRE(v6({0, 0, 0, 0, 0, 0, 0, 1}, 80) == "[::1]:80");
  REQUIRE(v6({0, 0, 0, 0, 0, 0, 0, 0}, 0) == "[::]:0");
  REQUIRE(v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}, 443) == "[2001:db8::1]:443");
  REQUIRE(v6({0xfe80, 0, 0, 0, 0, 0, 0, 0}, 1) == "[fe80::]:1");
  // Longest run wins; on a tie the first; a lone zero stays.
  REQUIRE(v6({0x2001, 0, 0, 1, 0, 0, 0, 1}, 1) == "[2001:0:0:1::1]:1");
  REQUIRE(v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}, 1) == "[2001:db8::1:0:0:1]:1");
  REQUIRE(v6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}, 1) == "[2001:db8:0:1:1:1:1:1]:1");
  REQUIRE(v6({1, 0, 0, 0, 0, 0, 0, 0}, 1) == "[1::]:1");
  REQUIRE(v6({0, 0, 0, 1, 0, 0, 0, 0}, 1) == "[0:0:0:1::]:1");
  REQUIRE(v6({0xABCD, 0xEF01, 0x2345, 0x6789, 0xABCD, 0xEF01, 0x2345, 0x6789}, 9) ==
          "[abcd:ef01:2345:6789:abcd:ef01:2345:6789]:9");
  REQUIRE(v6({0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304}, 80) == "[::ffff:1.2.3.4]:80");
}

TEST_CASE("to_string(parse_error) names each fault distinctly", "[socks]") {
  const parse_error all[] = {parse_error::none,           parse_error::bad_version,
                             parse_error::no_methods,     parse_error::bad_reserved,
                             parse_error::bad_address_type, parse_error::empty_domain,
                             parse_error::nul_in_domain,  parse_error::bad_auth_version,
                             parse_error::empty_username, parse_error::unknown_command,
                             parse_error::too_long,       parse_error::truncated};
  std::set<std::string_view> names;
  for (auto e : all) {
    REQUIRE_FALSE(to_string(e).empty());
    REQUIRE(to_string(e) != "unknown");
    names.insert(to_string(e));
  }
  REQUIRE(names.size() == std::size(all));
  REQUIRE(to_string(parse_error::bad_version) == "bad_version");
  REQUIRE(to_string(parse_error::none) == "none");
}

TEST_CASE("UDP header: parsed with its address and data, written back the same", "[socks][udp]") {
  const bytes dgram = cat({{0, 0, 0, 1, 10, 0, 0, 53, 0, 53}, str("query")});
  auto r = parse_udp_datagram(dgram);
  REQUIRE(r.status == parse_status::done);
  CHECK(r.value.frag == 0);
  CHECK(r.value.dst.to_string() == "10.0.0.53:53");
  CHECK(bytes(r.value.data.begin(), r.value.data.end()) == str("query"));
  bytes out;
  write_udp_header(out, address::from_domain("dns.corp", 53));
  CHECK(out == cat({{0, 0, 0, 3, 8}, str("dns.corp"), {0, 53}}));
  auto named = parse_udp_datagram(out);
  REQUIRE(named.status == parse_status::done);
  CHECK(named.value.dst == address::from_domain("dns.corp", 53));
  CHECK(named.value.data.empty());
}

TEST_CASE("UDP header: fragments are reported, malformed headers refused", "[socks][udp]") {
  auto frag = parse_udp_datagram(bytes{0, 0, 1, 1, 10, 0, 0, 53, 0, 53, 'x'});
  REQUIRE(frag.status == parse_status::done);
  CHECK(frag.value.frag == 1);  // the caller drops it
  CHECK(parse_udp_datagram(bytes{0, 0}).error == parse_error::truncated);
  CHECK(parse_udp_datagram(bytes{0, 0, 0, 1, 10, 0}).error == parse_error::truncated);
  CHECK(parse_udp_datagram(bytes{0, 1, 0, 1, 10, 0, 0, 53, 0, 53}).error == parse_error::bad_reserved);
  CHECK(parse_udp_datagram(bytes{0, 0, 0, 7, 10, 0, 0, 53, 0, 53}).error == parse_error::bad_address_type);
  CHECK(parse_udp_datagram(bytes{0, 0, 0, 3, 0, 0, 53}).error == parse_error::empty_domain);
}
