// libFuzzer target: the LSTP record layer of a live tunnel (PROTOCOL.md 3.5).
// Two ways in: bytes where records are expected, as a middle that forges
// records without the session key would send (every one must fail, costing
// the hop and nothing else); and frames sealed with the live session key,
// in records cut wherever the input says (frames split across records, key
// updates in between), as a peer would send. Never a crash, a hang or a
// tunnel stuck half-way.
#include <cstddef>
#include <cstdint>

#include "../lstp/tunnel_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lstp_test;
  if (size < 1) return 0;
  const lstp::byte_view in(data + 1, size - 1);
  lstp::tunnel_limits limits;
  limits.resumption = (data[0] & 1) != 0;
  limits.key_update_bytes = 64 * 1024;
  tunnel_pair p(limits);
  p.pump();
  if (!p.both_up() || !p.client->record_layer_active()) __builtin_trap();
  const auto id = p.open_and_begin();
  if ((data[0] & 2) == 0) {
    // Forged records: no byte of them may be taken as the peer's.
    const auto before = p.client_events.data[id].size();
    p.give(*p.client, lstp::bytes(in.begin(), in.end()));
    if (p.client_events.data[id].size() != before) __builtin_trap();
    const auto st = p.client->state();
    if (st != lstp::tunnel_state::up && st != lstp::tunnel_state::closed && !p.client->resuming()) __builtin_trap();
    return 0;
  }
  // Sealed with the live key: each input chunk (a length byte, then that many
  // bytes) goes into records of its own, whatever frames it cuts.
  for (std::size_t at = 0; at < in.size();) {
    const std::size_t n = std::min<std::size_t>(in[at], in.size() - at - 1);
    p.server->send_raw_frames(lstp::bytes(in.begin() + static_cast<std::ptrdiff_t>(at + 1),
                                          in.begin() + static_cast<std::ptrdiff_t>(at + 1 + n)));
    at += 1 + n;
    p.pump();
    if (p.client->state() == lstp::tunnel_state::closed) break;
  }
  // Then real data, enough to cross key updates.
  if (p.client->state() == lstp::tunnel_state::up && p.server->state() == lstp::tunnel_state::up) {
    const lstp::bytes bulk(200 * 1024, 0x5a);
    p.server->send_data(id, bulk, false);
    p.pump();
  }
  const auto st = p.client->state();
  if (st != lstp::tunnel_state::up && st != lstp::tunnel_state::closed && !p.client->resuming()) __builtin_trap();
  return 0;
}
