// Keys derived from a tunnel's secret (PROTOCOL.md 4). The middle proxies see
// only the pairing id of the current epoch; the PSK and the secret never
// leave the end. Everything secret here lives in Botan's secure_vector,
// wiped when freed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <botan/secmem.h>

#include "lstp/messages.hpp"

namespace lstp {

using secret_bytes = Botan::secure_vector<std::uint8_t>;

// The text form of a generated key (PROTOCOL.md 4): a prefix naming what it
// is for, then base64url (no padding) of 32 random bytes and a 4-byte
// checksum, so that a key cut short or mistyped is caught, not used.
enum class key_use { tunnel_secret, access_token };
inline constexpr std::string_view key_prefix(key_use u) {
  return u == key_use::tunnel_secret ? "lstp-secret-" : "lstp-token-";
}
inline constexpr std::size_t key_size = 32;
std::string key_text(key_use use, const secret_bytes& key);
// A fresh random key in text form.
std::string new_key_text(key_use use);

// What a configured secret (or token) is: a key in the text form above, or
// a passphrase. Text that starts like a key but does not check out is an
// error (`problem`), never silently taken for a passphrase.
struct parsed_secret {
  bool is_key = false;
  secret_bytes bytes;    // the 32 key bytes, or the passphrase as given
  std::string problem;   // non-empty: unusable, and why (no secret in it)
  bool operator==(const parsed_secret&) const = default;
};
parsed_secret parse_secret(key_use use, const secret_bytes& text);

inline constexpr std::size_t min_secret_size = 16;
// Argon2id's cost for passphrases (RFC 9106's second recommendation).
inline constexpr std::size_t passphrase_memory_kib = 64 * 1024;
inline constexpr std::size_t passphrase_passes = 3;

// Pairing ids change every epoch (PROTOCOL.md 4), so that one captured at
// a middle or on the wire is worth nothing an hour or two later.
inline constexpr std::int64_t pairing_epoch_seconds = 3600;
std::uint64_t pairing_epoch(std::int64_t unix_seconds);

struct tunnel_keys {
  secret_bytes pairing_key;  // pairing ids are derived from it, per epoch
  lstp::tunnel_tag tag{};    // from the tunnel name only: not secret
  secret_bytes psk;          // 32 bytes, the end-to-end TLS PSK
  lstp::pairing_id pairing_at(std::uint64_t epoch) const;
};

// A key is expanded with HKDF; a passphrase is stretched with Argon2id
// first (slow on purpose: 64 MiB and 3 passes; call once per tunnel at start).
tunnel_keys derive_tunnel_keys(std::string_view tunnel_name, const parsed_secret& secret);
// For tests and tools: parses `secret` (key text or passphrase) first.
tunnel_keys derive_tunnel_keys(std::string_view tunnel_name, std::string_view secret);

// The HMAC key of an access credential (PROTOCOL.md 3.6): the key itself, or
// Argon2id of a passphrase salted by the credential's name.
secret_bytes access_key(std::string_view credential_name, const parsed_secret& token);

// The tunnel tag alone (fast), e.g. for a middle that limits a credential to
// some tunnels by name.
tunnel_tag tag_of(std::string_view tunnel_name);

// Resumption (PROTOCOL.md 3.8): what both ends export from the first TLS
// session of a tunnel, and what a resumption hop is keyed with.
struct resumption_keys {
  std::array<std::uint8_t, 16> session_id{};
  secret_bytes key;  // 32 bytes
};
inline constexpr const char* resumption_export_label = "EXPORTER-lstp/1 resumption";
inline constexpr std::size_t resumption_export_size = 48;
// From the 48 exported bytes: the session id, then the key.
resumption_keys split_resumption_export(byte_view exported);
// The resumption hop's pairing id, and the PSK of its handshake: only an
// end that holds both the tunnel's PSK and the resumption key completes it.
pairing_id resume_pairing_id(const resumption_keys& r);
secret_bytes resume_psk(const secret_bytes& psk, const resumption_keys& r);

// The hint a middle's PAIRING_NOTICE carries for a pairing id:
// SHA-256("lstp/2 pairing hint " || id).
pairing_hint hint_of(const pairing_id& id);

// Short hex prefix of a tunnel tag, safe to log: it names a tunnel at a
// middle (the tag derives from the name only) and says nothing of a
// pairing id or a secret.
std::string short_tag(const tunnel_tag& tag);

}  // namespace lstp
