#include "lstp/secrets.hpp"

#include <botan/auto_rng.h>
#include <botan/base64.h>
#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/kdf.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/pwdhash.h>

#include "lstp/wire.hpp"

namespace lstp {

namespace {

constexpr std::size_t checksum_size = 4;

std::array<std::uint8_t, checksum_size> checksum(key_use use, const std::uint8_t* key) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  sha->update("lstp key checksum ");
  sha->update(std::string(key_prefix(use)));
  sha->update(key, key_size);
  auto digest = sha->final();
  std::array<std::uint8_t, checksum_size> out{};
  std::copy_n(digest.begin(), out.size(), out.begin());
  return out;
}

// base64url without padding (RFC 4648 5): 36 bytes make 48 characters.
std::string to_base64url(const secret_bytes& in) {
  std::string s = Botan::base64_encode(in.data(), in.size());
  for (auto& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

secret_bytes expand(const std::uint8_t* key, std::size_t key_len, std::string_view label, std::size_t n = 32) {
  auto hkdf = Botan::KDF::create_or_throw("HKDF-Expand(SHA-256)");
  return hkdf->derive_key(n, key, key_len, nullptr, 0, reinterpret_cast<const std::uint8_t*>(label.data()),
                          label.size());
}
secret_bytes expand(const secret_bytes& key, std::string_view label) { return expand(key.data(), key.size(), label); }

// 32 bytes of root key from a secret: HKDF-Extract of a key, Argon2id of a
// passphrase; both salted by `salt` (PROTOCOL.md 4).
secret_bytes root_of(const parsed_secret& s, std::string_view salt) {
  if (s.is_key) {
    auto hkdf = Botan::KDF::create_or_throw("HKDF-Extract(SHA-256)");
    return hkdf->derive_key(32, s.bytes.data(), s.bytes.size(), reinterpret_cast<const std::uint8_t*>(salt.data()),
                            salt.size(), nullptr, 0);
  }
  // Argon2 wants a salt of at least 8 bytes; a hash of the label is 32.
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  sha->update(std::string(salt));
  const auto salt_hash = sha->final();
  auto family = Botan::PasswordHashFamily::create_or_throw("Argon2id");
  auto argon = family->from_params(passphrase_memory_kib, passphrase_passes, 1);
  secret_bytes root(32);
  argon->derive_key(root.data(), root.size(), reinterpret_cast<const char*>(s.bytes.data()), s.bytes.size(),
                    salt_hash.data(), salt_hash.size());
  return root;
}

}  // namespace

std::string key_text(key_use use, const secret_bytes& key) {
  secret_bytes raw(key.begin(), key.end());
  const auto sum = checksum(use, key.data());
  raw.insert(raw.end(), sum.begin(), sum.end());
  return std::string(key_prefix(use)) + to_base64url(raw);
}

std::string new_key_text(key_use use) {
  Botan::AutoSeeded_RNG rng;
  return key_text(use, rng.random_vec(key_size));
}

parsed_secret parse_secret(key_use use, const secret_bytes& text) {
  parsed_secret out;
  const std::string_view t(reinterpret_cast<const char*>(text.data()), text.size());
  const auto other = use == key_use::tunnel_secret ? key_use::access_token : key_use::tunnel_secret;
  if (t.starts_with(key_prefix(other))) {
    out.problem = use == key_use::tunnel_secret
                      ? "this is an access token (made by middleproxy --new-token), not a tunnel secret"
                      : "this is a tunnel secret (made by endproxy --new-secret), not an access token";
    return out;
  }
  const auto prefix = key_prefix(use);
  if (!t.starts_with(prefix)) {
    out.bytes = text;
    return out;
  }
  const auto body = t.substr(prefix.size());
  constexpr std::size_t text_size = (key_size + checksum_size) / 3 * 4;
  const auto cut = [&](std::string why) {
    out.problem = "it starts like a generated key (" + std::string(prefix) + "...) but " + why +
                  ": was it cut short or mistyped? Make a new one with " +
                  (use == key_use::tunnel_secret ? "endproxy --new-secret FILE" : "middleproxy --new-token FILE");
    return out;
  };
  if (body.size() != text_size) return cut("has " + std::to_string(body.size()) + " characters after the prefix, not 48");
  std::string b64(body);
  for (auto& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/' || c == '=') return cut("holds a character base64url does not use");
  }
  secret_bytes raw;
  try {
    raw = Botan::base64_decode(b64);
  } catch (const std::exception&) {
    return cut("is not base64url");
  }
  if (raw.size() != key_size + checksum_size) return cut("does not decode to 36 bytes");
  const auto sum = checksum(use, raw.data());
  if (!Botan::constant_time_compare(sum.data(), raw.data() + key_size, checksum_size))
    return cut("its checksum does not match");
  out.is_key = true;
  out.bytes.assign(raw.begin(), raw.begin() + key_size);
  return out;
}

std::uint64_t pairing_epoch(std::int64_t unix_seconds) {
  return unix_seconds <= 0 ? 0 : static_cast<std::uint64_t>(unix_seconds / pairing_epoch_seconds);
}

pairing_id tunnel_keys::pairing_at(std::uint64_t epoch) const {
  auto hmac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
  hmac->set_key(pairing_key);
  bytes input;
  wire_writer w(input);
  w.raw(std::string_view("lstp/2 pairing id "));
  w.u32(static_cast<std::uint32_t>(epoch >> 32));
  w.u32(static_cast<std::uint32_t>(epoch));
  hmac->update(input.data(), input.size());
  pairing_id id{};
  hmac->final(id.data());
  return id;
}

tunnel_keys derive_tunnel_keys(std::string_view tunnel_name, const parsed_secret& secret) {
  const auto root = root_of(secret, "lstp/2 tunnel " + std::string(tunnel_name));
  tunnel_keys k;
  k.pairing_key = expand(root, "lstp/2 pairing key");
  k.tag = tag_of(tunnel_name);
  k.psk = expand(root, "lstp/2 tls psk");
  return k;
}

tunnel_keys derive_tunnel_keys(std::string_view tunnel_name, std::string_view secret) {
  const secret_bytes text(secret.begin(), secret.end());
  auto parsed = parse_secret(key_use::tunnel_secret, text);
  if (!parsed.problem.empty()) throw std::invalid_argument("bad tunnel secret: " + parsed.problem);
  return derive_tunnel_keys(tunnel_name, parsed);
}

secret_bytes access_key(std::string_view credential_name, const parsed_secret& token) {
  if (token.is_key) return token.bytes;
  return root_of(token, "lstp/2 access " + std::string(credential_name));
}

tunnel_tag tag_of(std::string_view tunnel_name) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  sha->update("lstp/1 tunnel tag ");
  sha->update(std::string(tunnel_name));
  auto digest = sha->final();
  tunnel_tag tag{};
  std::copy_n(digest.begin(), tag.size(), tag.begin());
  return tag;
}

resumption_keys split_resumption_export(byte_view exported) {
  resumption_keys r;
  std::copy_n(exported.begin(), r.session_id.size(), r.session_id.begin());
  r.key.assign(exported.begin() + static_cast<std::ptrdiff_t>(r.session_id.size()),
               exported.begin() + static_cast<std::ptrdiff_t>(r.session_id.size() + 32));
  return r;
}

pairing_id resume_pairing_id(const resumption_keys& r) {
  const auto v = expand(r.key, "lstp/1 resume pairing id");
  pairing_id id{};
  std::copy_n(v.begin(), id.size(), id.begin());
  return id;
}

secret_bytes resume_psk(const secret_bytes& psk, const resumption_keys& r) {
  secret_bytes both(psk.begin(), psk.end());
  both.insert(both.end(), r.key.begin(), r.key.end());
  return expand(both, "lstp/1 resume psk");
}

pairing_hint hint_of(const pairing_id& id) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  sha->update("lstp/2 pairing hint ");
  sha->update(id.data(), id.size());
  pairing_hint h{};
  sha->final(h.data());
  return h;
}

std::string short_tag(const tunnel_tag& tag) { return Botan::hex_encode(tag.data(), 4, false); }

}  // namespace lstp
