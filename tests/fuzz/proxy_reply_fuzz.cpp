// libFuzzer target for the proxy handshakes an uplink reads (SOCKS5 with and
// without authentication, SOCKS4a, HTTP CONNECT) and for the way planner's
// state file parser.
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

#include "uplink/proxy_handshake.hpp"
#include "uplink/way_plan.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
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
  return uplink::proxy_handshake::make(p, "middle.example", 443);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t sel = data[0];
  std::span<const std::uint8_t> answer(data + 1, size - 1);

  auto whole = make(sel);
  whole->take_output();
  auto a = whole->feed(answer);

  auto pieces = make(sel);
  pieces->take_output();
  const std::size_t step = 1 + (sel >> 2) % 7;
  auto b = pieces->state();
  for (std::size_t i = 0; i < answer.size() && b == uplink::proxy_handshake::status::need_more; i += step) {
    b = pieces->feed(answer.subspan(i, std::min(step, answer.size() - i)));
    pieces->take_output();
  }
  check(a == b);
  if (a == uplink::proxy_handshake::status::failed) check(!whole->error().empty());
  if (a == uplink::proxy_handshake::status::done) check(whole->leftover().size() <= answer.size());

  // The same bytes as a state file: parsing never fails, and what it keeps
  // survives a format/parse round trip.
  auto memory = uplink::way_memory::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  check(uplink::way_memory::parse(memory.format()).format() == memory.format());
  return 0;
}
