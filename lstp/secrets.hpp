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

// Resumption (PROTOCOL.md 3.8): what both ends export from the first TLS
// session of a tunnel, and what a resumption hop is keyed with.
struct resumption_keys {
  std::array<std::uint8_t, 16> session_id{};
  std::array<std::uint8_t, 32> key{};
};
inline constexpr const char* resumption_export_label = "EXPORTER-lstp/1 resumption";
inline constexpr std::size_t resumption_export_size = 48;
// From the 48 exported bytes: the session id, then the key.
resumption_keys split_resumption_export(byte_view exported);
// The resumption hop's pairing id, and the PSK of its handshake: only an
// end that holds both the tunnel's PSK and the resumption key completes it.
pairing_id resume_pairing_id(const resumption_keys& r);
std::array<std::uint8_t, 32> resume_psk(const std::array<std::uint8_t, 32>& psk, const resumption_keys& r);

// Short hex prefix of a pairing id, safe to log: it names a tunnel at a
// middle without revealing anything about the secret.
std::string short_id(const pairing_id& id);

}  // namespace lstp
