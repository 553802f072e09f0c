// libFuzzer target: resumption and key updates (PROTOCOL.md 3.5, 3.8) under
// arbitrary frames from an authenticated peer: before and after a hop is
// cut, RESUME, ACK and KEY_UPDATE out of place, with keys rolling every
// 64 KiB. The tunnel ends up or closed, never stuck, never acknowledging
// more than it sent; a channel's bytes arrive in order or not at all.
#include <cstddef>
#include <cstdint>

#include "../lstp/tunnel_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lstp_test;
  if (size < 1) return 0;
  const std::size_t split = size > 1 ? data[0] % size : 0;
  const lstp::byte_view before(data + 1, split), after(data + 1 + split, size - 1 - split);
  lstp::tunnel_limits limits;
  limits.resumption = true;
  limits.key_update_bytes = 64 * 1024;
  tunnel_pair p(limits);
  p.pump();
  if (!p.both_up() || !p.client->key_updates_active()) __builtin_trap();
  const auto id = p.open_and_begin();
  lstp::bytes bulk(150 * 1024);
  for (std::size_t i = 0; i < bulk.size(); ++i) bulk[i] = static_cast<std::uint8_t>(i * 7);
  p.client->send_data(id, bulk, false);
  p.server->send_raw_frames(lstp::bytes(before.begin(), before.end()));
  p.pump();
  if (p.client->state() == lstp::tunnel_state::up && p.server->state() == lstp::tunnel_state::up) {
    p.cut();
    p.pump();
    p.server->send_raw_frames(lstp::bytes(after.begin(), after.end()));
    p.pump();
  }
  for (auto* t : {p.client.get(), p.server.get()}) {
    const auto st = t->state();
    if (st != lstp::tunnel_state::up && st != lstp::tunnel_state::closed && !t->resuming()) __builtin_trap();
    if (t->reliable_acked() > t->reliable_sent()) __builtin_trap();
  }
  // What reached the server of the client's bytes is a prefix of them.
  const auto& got = p.server_events.data[id];
  if (got.size() > bulk.size() || !std::equal(got.begin(), got.end(), bulk.begin())) __builtin_trap();
  return 0;
}
