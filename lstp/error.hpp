// Error codes carried on the wire in ERROR, CONNECTION_NACK,
// SERVICE_BEGIN_NACK and SERVICE_FREE_REQUEST (PROTOCOL.md 6.1). They are a
// separate enum from anything internal; `to_string` gives the operator's name.
#pragma once

#include <cstdint>
#include <string_view>

namespace lstp {

enum class wire_error : std::uint16_t {
  ok = 0,
  general = 1,
  not_allowed = 2,
  network_unreachable = 3,
  host_unreachable = 4,
  connection_refused = 5,
  timeout = 6,
  command_not_supported = 7,
  address_type_not_supported = 8,
  protocol_error = 16,
  unknown_type = 17,
  frame_too_large = 18,
  unexpected_message = 19,
  bad_channel = 20,
  flow_control_violation = 21,
  version_mismatch = 22,
  setup_timeout = 32,
  setup_mismatch = 33,
  already_paired = 34,
  topology_loop = 35,
  topology_too_long = 36,
  too_many_waiting = 37,
  next_hop_failed = 38,
  auth_failed = 39,
  shutting_down = 40,
  access_denied = 41,
};

std::string_view to_string(wire_error e);

// Codes 1..8 are the SOCKS5 reply codes of the same meaning; anything else
// maps to "general failure" (1).
std::uint8_t to_socks_reply(wire_error e);

// Any u16 from the wire is kept as is; unknown values print as "unknown".
inline wire_error wire_error_from(std::uint16_t v) { return static_cast<wire_error>(v); }

}  // namespace lstp
