// libFuzzer target: a middle's access gate (PROTOCOL.md 3.6) fed whatever a
// hop opens with: an ACCESS frame and a setup, parsed as the middle parses
// them, then checked. A proof not made with a listed token must never pass;
// nothing may crash, and the replay cache stays within its bounds.
#include <cstddef>
#include <cstdint>

#include "lstp/access.hpp"
#include "lstp/setup.hpp"
#include "middleproxy/access_gate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto key = [](std::string_view s) { return lstp::secret_bytes(s.begin(), s.end()); };
  middleproxy::access_gate gate({{"alice", key("alice-token-0123456789abcdef"), {}},
                                 {"bob", key("bob-token-0123456789abcdef01"), {"lab-c"}}},
                                std::chrono::seconds(300));
  lstp::setup_reader reader(lstp::setup_reader::access_frame::accepted, lstp::setup_reader::notices::refused);
  reader.feed(lstp::byte_view(data, size));
  for (int i = 0; i < 8; ++i) {
    auto r = reader.next();
    if (r.state != lstp::setup_reader::status::done) {
      if (r.state == lstp::setup_reader::status::notice) __builtin_trap();  // refused for middles
      if (r.state == lstp::setup_reader::status::need_more || r.state == lstp::setup_reader::status::invalid ||
          r.state == lstp::setup_reader::status::peer_error)
        break;
      continue;
    }
    const std::int64_t now = 1'800'000'000;
    const auto v = gate.check(reader.access(), reader.setup(), now);
    // A random MAC passing is a forged HMAC-SHA256: never.
    if (!v.refusal) __builtin_trap();
    if (!reader.access() && v.detail != "no ACCESS frame") __builtin_trap();
    break;
  }
  return 0;
}
