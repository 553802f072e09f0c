// libFuzzer target: a middle proxy's handling of a new hop's setup, on
// arbitrary bytes: the setup reader (with an optional ACCESS frame first),
// the access gate and the checks before any state is kept, and the relayed
// setup, which must read back as the same setup with this middle appended.
#include <cstddef>
#include <cstdint>

#include "lstp/access.hpp"
#include "lstp/setup.hpp"
#include "middleproxy/access_gate.hpp"
#include "middleproxy/setup_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lstp::setup_reader reader(lstp::setup_reader::access_frame::accepted);
  reader.feed(lstp::byte_view(data, size));
  if (reader.next().state != lstp::setup_reader::status::done) return 0;
  const auto& setup = reader.setup();
  // The gate never lets a proof through that was not made with the token.
  static const std::string_view token = "alice-token-0123456789abcdef";
  static const lstp::secret_bytes key(token.begin(), token.end());
  static middleproxy::access_gate gate({{"alice", key, {}}}, std::chrono::seconds(300));
  const std::int64_t now = 1'800'000'000;
  auto verdict = gate.check(reader.access(), setup, now);
  if (!verdict.refusal && !lstp::verify_access_proof(*reader.access(), key, setup)) __builtin_trap();
  if (middleproxy::check_setup(setup, "fuzz-middle")) return 0;
  const lstp::topology_entry self{lstp::hop_kind::middle, "fuzz-middle", "192.0.2.9:443"};
  const auto relayed = lstp::relay_setup(setup, self);
  lstp::setup_reader again;
  again.feed(relayed);
  if (again.next().state != lstp::setup_reader::status::done) __builtin_trap();
  const auto& back = again.setup();
  if (!(back.info == setup.info) || back.topology.size() != setup.topology.size() + 1 || !(back.topology.back() == self))
    __builtin_trap();
  // The next middle would see the loop.
  if (!middleproxy::check_setup(back, "fuzz-middle")) __builtin_trap();
  return 0;
}
