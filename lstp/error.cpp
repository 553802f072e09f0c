#include "lstp/error.hpp"

namespace lstp {

std::string_view to_string(wire_error e) {
  switch (e) {
    case wire_error::ok: return "ok";
    case wire_error::general: return "general failure";
    case wire_error::not_allowed: return "not allowed";
    case wire_error::network_unreachable: return "network unreachable";
    case wire_error::host_unreachable: return "host unreachable";
    case wire_error::connection_refused: return "connection refused";
    case wire_error::timeout: return "timed out";
    case wire_error::command_not_supported: return "command not supported";
    case wire_error::address_type_not_supported: return "address type not supported";
    case wire_error::protocol_error: return "protocol error";
    case wire_error::unknown_type: return "unknown message type";
    case wire_error::frame_too_large: return "frame too large";
    case wire_error::unexpected_message: return "unexpected message";
    case wire_error::bad_channel: return "bad channel";
    case wire_error::flow_control_violation: return "flow control violation";
    case wire_error::version_mismatch: return "version mismatch";
    case wire_error::setup_timeout: return "setup timeout";
    case wire_error::setup_mismatch: return "setup mismatch";
    case wire_error::already_paired: return "already paired";
    case wire_error::topology_loop: return "topology loop";
    case wire_error::topology_too_long: return "topology too long";
    case wire_error::too_many_waiting: return "too many waiting setups";
    case wire_error::next_hop_failed: return "next hop failed";
    case wire_error::auth_failed: return "authentication failed";
    case wire_error::shutting_down: return "shutting down";
    case wire_error::access_denied: return "access denied";
  }
  return "unknown error";
}

std::uint8_t to_socks_reply(wire_error e) {
  auto v = static_cast<std::uint16_t>(e);
  if (v >= 1 && v <= 8) return static_cast<std::uint8_t>(v);
  return 1;
}

}  // namespace lstp
