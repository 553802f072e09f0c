// libFuzzer target: what a middle proxy's one port makes of the HTTP bytes a
// stranger sends (WebSocket upgrade, web request, garbage). Must never
// crash, hang or hold more than its limits, and must decide the same
// whether the bytes come at once or in pieces.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/websocket/rfc6455.hpp>

#include "transport/poll_session.hpp"
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
    // The path is ours, origin-form ("/lstp") or absolute-form
    // ("http://host/lstp", as a proxy forwards it; the authority may be
    // anything, even empty).
    std::string_view target(req.target().data(), req.target().size());
    for (std::string_view scheme : {"http://", "https://"})
      if (target.substr(0, scheme.size()) == scheme) {
        const auto slash = target.find('/', scheme.size());
        target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
        break;
      }
    if (target != "/lstp" || !boost::beast::websocket::is_upgrade(req)) __builtin_trap();
  }
  // An http carrier request is handed on whole: every byte read so far.
  if (all == verdict::poll_request) {
    const auto raw = whole.take_raw();
    if (raw.size() != size || (size > 0 && !std::equal(raw.begin(), raw.end(), data))) __builtin_trap();
  }
  // The carrier's target parser, on the bytes as a target: what it accepts
  // it writes back the same.
  std::string why;
  const std::string_view target(reinterpret_cast<const char*>(data), size);
  if (auto f = transport::poll::parse_target(target, "/lstp", why)) {
    transport::poll::request r{f->what, f->n, f->acknowledged, f->fin, {}, f->close};
    std::string again_why;
    auto again = transport::poll::parse_target(transport::poll::make_target(r, f->session, "/lstp", 7), "/lstp", again_why);
    if (!again || again->session != f->session || again->n != f->n || again->what != f->what ||
        again->fin != f->fin || again->close != f->close || (f->what == transport::poll::request::kind::down && again->acknowledged != f->acknowledged))
      __builtin_trap();
  }
  return 0;
}
