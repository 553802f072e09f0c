// The limits of one tunnel end and their defaults, in one place: the
// tunnel uses them, and the configuration's defaults are read from here.
// Header only, no dependencies: config/ includes it without linking lstp.
#pragma once

#include <chrono>
#include <cstddef>

namespace lstp {

using clock = std::chrono::steady_clock;

struct tunnel_limits {
  std::size_t high_watermark = 256 * 1024;  // send PAUSE above this many undelivered bytes
  std::size_t low_watermark = 128 * 1024;   // send RESUME once drained to this
  // In-flight bytes accepted beyond `high_watermark` after PAUSE: all the
  // hop socket buffers along the path may hold one channel's data (about
  // 10 MiB per hop on Linux), so this must be generous to never cut a
  // well-behaved bulk transfer.
  std::size_t pause_slack = 64 * 1024 * 1024;
  std::size_t max_channels = 65536;
  clock::duration keepalive = std::chrono::seconds(20);
  clock::duration dead_after = std::chrono::seconds(60);
  clock::duration handshake_timeout = std::chrono::seconds(10);
  // How long our setup may wait for the peer's. Longer than a middle keeps
  // an unpaired setup (10 min by default), so normally the middle ends the
  // wait; this bound catches a middle or NAT that silently went away.
  clock::duration setup_wait = std::chrono::minutes(15);
  // When the pairing id this setup carries expires (the epoch turns,
  // PROTOCOL.md 4): a setup still waiting then ends (epoch_turned_reason)
  // so that its owner sets up again with the next id. Zero: never.
  clock::duration setup_refresh = clock::duration::zero();
  // After SHUTDOWN (sent or received), how long channels may take to end.
  clock::duration shutdown_grace = std::chrono::seconds(30);
  // Offer the LSTP record layer (PROTOCOL.md 3.5); used when both ends do.
  bool record_layer = true;
  // Offer credit windows (PROTOCOL.md 5.4); used when both ends do. A
  // channel's window starts at initial_credit and grows, up to max_window,
  // while the app takes a window's worth faster than two round trips.
  bool credit_windows = true;
  std::size_t max_window = 16 * 1024 * 1024;
  // Bytes all channels together may hold delivered but not yet taken by
  // their apps. Past it, the channel holding the most is aborted. Grown
  // windows together stay within half of it.
  std::size_t max_tunnel_buffered = 256 * 1024 * 1024;
  // Offer resumption (PROTOCOL.md 3.8); used when both ends do. Its
  // acknowledgements and replay copy cost no measurable throughput or CPU
  // (bench/feature_cost.py), so it is on unless turned off.
  bool resumption = true;
  // Reliable frames sent and not yet acknowledged are kept up to this many
  // bytes; past it, no new channel data is taken from the apps.
  std::size_t replay_buffer = 16 * 1024 * 1024;
  // How long a tunnel whose hop was lost waits to be resumed.
  clock::duration resume_window = std::chrono::seconds(60);
  // Record keys are updated (KEY_UPDATE, PROTOCOL.md 3.5) after this many
  // bytes or this long under one key, whichever comes first: far inside
  // AES-128-GCM's limits (2^34 bytes is 2^20 full records).
  bool key_updates = true;
  std::uint64_t key_update_bytes = std::uint64_t{1} << 34;
  clock::duration key_update_interval = std::chrono::hours(1);
};

// The defaults, for whoever needs them outside a tunnel (the config).
inline constexpr tunnel_limits default_tunnel_limits{};

}  // namespace lstp
