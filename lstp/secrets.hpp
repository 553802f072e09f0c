// Keys derived from a tunnel's secret (PROTOCOL.md 4). The middle proxies see
// only the pairing id; the PSK and the secret never leave the end.
#pragma once

#include <string_view>

#include "lstp/messages.hpp"

namespace lstp {

struct tunnel_keys {
  lstp::pairing_id pairing_id{};
  lstp::tunnel_tag tag{};  // from the tunnel name only: not secret
  std::array<std::uint8_t, 32> psk{};
};

inline constexpr std::size_t min_secret_size = 16;

// Slow on purpose (PBKDF2, 100000 rounds): call once per tunnel at start.
tunnel_keys derive_tunnel_keys(std::string_view tunnel_name, std::string_view secret);

// The tunnel tag alone (fast: no PBKDF2), e.g. for a middle that limits a
// credential to some tunnels by name.
tunnel_tag tag_of(std::string_view tunnel_name);

// Short hex prefix of a pairing id, safe to log: it names a tunnel at a
// middle without revealing anything about the secret.
std::string short_id(const pairing_id& id);

}  // namespace lstp
