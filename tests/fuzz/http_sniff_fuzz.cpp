// libFuzzer target: what a middle proxy's one port makes of the HTTP bytes a
// stranger sends (WebSocket upgrade, web request, garbage). Must never
// crash, hang or hold more than its limits, and must decide the same
// whether the bytes come at once or in pieces.
#include <cstddef>
#include <cstdint>
#include <span>

#include <boost/beast/websocket/rfc6455.hpp>

#include "transport/upgrade_sniffer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  transport::upgrade_sniffer whole("/lstp");
  const auto all = whole.feed(in);
  // In pieces, cut where the first byte says.
  transport::upgrade_sniffer pieces("/lstp");
  const std::size_t step = size > 0 ? data[0] % 64 + 1 : 1;
  auto v = transport::upgrade_sniffer::verdict::need_more;
  for (std::size_t i = 0; i < size && v == transport::upgrade_sniffer::verdict::need_more; i += step)
    v = pieces.feed(in.subspan(i, std::min(step, size - i)));
  // However the bytes are cut, a refusal never turns into a hop or back.
  // (Cut differently, a malformed header may be refused early or wait for
  // more, which the acceptor's deadline ends; and early data in a later
  // read than the upgrade is the WebSocket layer's to refuse.)
  using verdict = transport::upgrade_sniffer::verdict;
  const auto hop = [](verdict x) { return x == verdict::upgrade || x == verdict::early_data; };
  if (v != verdict::need_more && all != verdict::need_more && hop(v) != hop(all)) __builtin_trap();
  if (all == transport::upgrade_sniffer::verdict::upgrade) {
    auto req = whole.take_request();
    if (req.target() != "/lstp" || !boost::beast::websocket::is_upgrade(req)) __builtin_trap();
  }
  return 0;
}
