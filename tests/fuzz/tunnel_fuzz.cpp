// libFuzzer target: an lstp::tunnel fed arbitrary bytes, both in the clear
// (as a hostile middle proxy would send during setup) and inside TLS once the
// tunnel is up (as a hostile peer would). Must never crash, hang or leak, and
// the tunnel must end closed or still up, never stuck half-way.
#include <cstddef>
#include <cstdint>

#include "../lstp/tunnel_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lstp_test;
  lstp::byte_view in(data, size);
  {
    // Hostile middle: garbage where the peer's setup should be.
    tunnel_pair p;
    p.client->receive(in, p.now);
    p.dispatch();
    p.client->on_timer(p.now + std::chrono::seconds(30));
    p.dispatch();
  }
  {
    // Hostile peer: arbitrary frames inside an authenticated tunnel.
    tunnel_pair p;
    p.pump();
    if (!p.both_up()) __builtin_trap();
    p.open_and_begin();
    p.server->send_raw_frames(lstp::bytes(in.begin(), in.end()));
    p.pump();
    // Up, closed, or resuming: resumption is on by default, and frames
    // that make the next records fail to open (a KEY_UPDATE the peer did
    // not act on) look exactly like a middle that altered bytes, which costs
    // the hop (PROTOCOL.md 3.8). Any other state is a bug.
    auto st = p.client->state();
    if (st != lstp::tunnel_state::up && st != lstp::tunnel_state::closed && !p.client->resuming()) __builtin_trap();
  }
  {
    // The same with resumption (PROTOCOL.md 3.8): ACKs and replay kept.
    lstp::tunnel_limits limits;
    limits.resumption = true;
    tunnel_pair p(limits);
    p.pump();
    if (!p.both_up() || !p.client->resumption_active()) __builtin_trap();
    p.open_and_begin();
    p.server->send_raw_frames(lstp::bytes(in.begin(), in.end()));
    p.pump();
    auto st = p.client->state();
    if (st != lstp::tunnel_state::up && st != lstp::tunnel_state::closed && !p.client->resuming()) __builtin_trap();
    if (p.client->reliable_acked() > p.client->reliable_sent()) __builtin_trap();
    // The hop is lost after whatever the peer sent: the tunnel resumes on a
    // new one, or it had closed.
    if (st == lstp::tunnel_state::up && p.server->state() == lstp::tunnel_state::up) {
      p.cut();
      p.pump();
      if (p.client->state() != lstp::tunnel_state::closed && p.client_events.resumed.size() != 1) __builtin_trap();
    }
  }
  return 0;
}
