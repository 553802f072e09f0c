// libFuzzer target for the proxy handshakes an uplink reads (SOCKS5 with and
// without authentication, SOCKS4a, HTTP CONNECT), the logins an HTTP proxy
// may ask for (Proxy-Authenticate parsing, Digest, NTLM through libntlm,
// Negotiate with a stand-in for GSSAPI), the way planner's state file
// parser, and proxy discovery's parsers (PAC answers, PAC URLs, resolv.conf
// for WPAD).
//
// The first input byte picks the proxy kind and the split points; the rest
// is what the proxy "answers", fed in pieces. Whatever the bytes, the
// handshake ends in need_more, done or failed; a failure has a reason; a
// finished handshake never grows past its input; and the same bytes fed
// whole or in pieces reach the same state (split independence).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <optional>
#include <vector>

#include "uplink/proxy_handshake.hpp"
#include "uplink/pac.hpp"
#include "uplink/proxy_login.hpp"
#include "uplink/way_plan.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// No KDC in a fuzzer: Negotiate gets a fixed token.
uplink::login_hooks fuzz_hooks() {
  uplink::login_hooks h;
  h.cnonce = [] { return std::string("fuzz-cnonce"); };
  h.negotiate = [](const std::string&, const std::string& server_token, std::string& why) -> std::optional<std::string> {
    if (server_token.size() > 8) {
      why = "refused";
      return std::nullopt;
    }
    return std::string("dG9rZW4=");
  };
  return h;
}

// An HTTP proxy's answers to a login: the input is cut into answers at each
// "\n.\n"; after each, the handshake's request (or Kerberos step, or new
// connection) is taken as a real dialer would. Whatever the answers, no
// password reaches an error (unless the proxy itself sent it back) or a
// request in the clear, and the conversation ends within a few rounds.
void conversation(std::span<const std::uint8_t> input, std::uint8_t sel) {
  uplink::proxy p;
  p.kind = uplink::proxy_kind::http;
  p.at = {"proxy", 3128};
  p.username = (sel & 0x10) ? "DOM\\user" : "user";
  p.password = "s3cret-pass";
  auto h = uplink::proxy_handshake::make(p, "middle.example", 443, fuzz_hooks());
  std::string_view rest(reinterpret_cast<const char*>(input.data()), input.size());
  // Only the proxy's own words (a nonce, a reason phrase) can bring the
  // password's text anywhere.
  const bool echoed = rest.find("s3cret-pass") != std::string_view::npos;
  int rounds = 0;
  for (;;) {
    using st = uplink::proxy_handshake::status;
    if (h->state() == st::compute) h->compute();
    if (h->state() == st::reconnect) h->reconnected();
    auto out = h->take_output();
    const std::string request(out.begin(), out.end());
    check(echoed || request.find("s3cret-pass") == std::string::npos);
    // A login ends in a few requests, whatever the proxy keeps answering.
    if (!request.empty()) check(++rounds <= 6);
    if (h->state() != st::need_more) break;
    if (rest.empty()) {
      h->eof();
      continue;
    }
    const auto cut = rest.find("\n.\n");
    const auto answer = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 3);
    h->feed({reinterpret_cast<const std::uint8_t*>(answer.data()), answer.size()});
  }
  if (h->state() == uplink::proxy_handshake::status::failed) {
    check(!h->error().empty());
    check(echoed || h->error().find("s3cret-pass") == std::string::npos);
  }
  // The header values alone, too.
  std::vector<uplink::auth_challenge> challenges;
  uplink::parse_challenges(std::string_view(reinterpret_cast<const char*>(input.data()), input.size()), challenges);
  for (const auto& c : challenges) {
    std::string why;
    if (c.scheme == "digest") uplink::digest_authorization(c, "user", "pass", "CONNECT", "m:443", "cn", why);
  }
}

std::unique_ptr<uplink::proxy_handshake> make(std::uint8_t sel) {
  uplink::proxy p;
  p.at = {"proxy", 1080};
  switch (sel % 4) {
    case 0: p.kind = uplink::proxy_kind::socks5; break;
    case 1:
      p.kind = uplink::proxy_kind::socks5;
      p.username = "user";
      p.password = "pass";
      break;
    case 2: p.kind = uplink::proxy_kind::socks4a; break;
    default:
      p.kind = uplink::proxy_kind::http;
      p.username = "user";
      p.password = "pass";
      break;
  }
  return uplink::proxy_handshake::make(p, "middle.example", 443, fuzz_hooks());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t sel = data[0];
  std::span<const std::uint8_t> answer(data + 1, size - 1);

  auto whole = make(sel);
  whole->take_output();
  auto a = whole->feed(answer);
  // A login's next request: what follows is another answer (conversation()).
  const bool http = sel % 4 == 3;
  bool relogin = !whole->take_output().empty() && http;

  auto pieces = make(sel);
  pieces->take_output();
  const std::size_t step = 1 + (sel >> 2) % 7;
  auto b = pieces->state();
  for (std::size_t i = 0; i < answer.size() && b == uplink::proxy_handshake::status::need_more && !relogin;
       i += step) {
    b = pieces->feed(answer.subspan(i, std::min(step, answer.size() - i)));
    relogin = !pieces->take_output().empty() && http;
  }
  using st = uplink::proxy_handshake::status;
  const bool login_step = a == st::compute || a == st::reconnect || b == st::compute || b == st::reconnect;
  if (!relogin && !login_step) check(a == b);
  if (http) conversation(answer, sel);
  if (a == uplink::proxy_handshake::status::failed) check(!whole->error().empty());
  if (a == uplink::proxy_handshake::status::done) check(whole->leftover().size() <= answer.size());

  // The same bytes as a PAC answer, a PAC URL and a resolv.conf.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& r : uplink::parse_pac_answer(text))
    if (r.through) check(uplink::parse_proxy_url(r.through->to_string()).at == r.through->at);
  for (const auto& w : uplink::wpad_sources(text)) check(w.host.rfind("wpad.", 0) == 0 && w.target == "/wpad.dat");
  try {
    const auto source = uplink::parse_pac_source(text);
    const auto again = uplink::parse_pac_source(source.to_string());
    check(again.to_string() == source.to_string());
  } catch (const uplink::bad_way&) {
  }

  // The same bytes as a state file: parsing never fails, and what it keeps
  // survives a format/parse round trip.
  auto memory = uplink::way_memory::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  check(uplink::way_memory::parse(memory.format()).format() == memory.format());
  return 0;
}
