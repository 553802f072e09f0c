#include "lstp/secrets.hpp"

#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/kdf.h>
#include <botan/pwdhash.h>

namespace lstp {

tunnel_keys derive_tunnel_keys(std::string_view tunnel_name, std::string_view secret) {
  std::string salt = "lstp/1 tunnel " + std::string(tunnel_name);
  std::array<std::uint8_t, 32> root{};
  auto family = Botan::PasswordHashFamily::create_or_throw("PBKDF2(SHA-256)");
  auto pbkdf = family->from_iterations(100000);
  pbkdf->derive_key(root.data(), root.size(), secret.data(), secret.size(),
                    reinterpret_cast<const std::uint8_t*>(salt.data()), salt.size());
  auto hkdf = Botan::KDF::create_or_throw("HKDF-Expand(SHA-256)");
  tunnel_keys k;
  auto expand = [&](std::string_view label, std::array<std::uint8_t, 32>& out) {
    auto v = hkdf->derive_key(out.size(), root.data(), root.size(), nullptr, 0,
                              reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
    std::copy(v.begin(), v.end(), out.begin());
  };
  expand("lstp/1 pairing id", k.pairing_id);
  k.tag = tag_of(tunnel_name);
  expand("lstp/1 tls psk", k.psk);
  return k;
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

namespace {
std::array<std::uint8_t, 32> expand(byte_view key, std::string_view label) {
  auto hkdf = Botan::KDF::create_or_throw("HKDF-Expand(SHA-256)");
  auto v = hkdf->derive_key(32, key.data(), key.size(), nullptr, 0, reinterpret_cast<const std::uint8_t*>(label.data()),
                            label.size());
  std::array<std::uint8_t, 32> out{};
  std::copy_n(v.begin(), out.size(), out.begin());
  return out;
}
}  // namespace

resumption_keys split_resumption_export(byte_view exported) {
  resumption_keys r;
  std::copy_n(exported.begin(), r.session_id.size(), r.session_id.begin());
  std::copy_n(exported.begin() + static_cast<std::ptrdiff_t>(r.session_id.size()), r.key.size(), r.key.begin());
  return r;
}

pairing_id resume_pairing_id(const resumption_keys& r) { return expand(r.key, "lstp/1 resume pairing id"); }

std::array<std::uint8_t, 32> resume_psk(const std::array<std::uint8_t, 32>& psk, const resumption_keys& r) {
  std::array<std::uint8_t, 64> both{};
  std::copy(psk.begin(), psk.end(), both.begin());
  std::copy(r.key.begin(), r.key.end(), both.begin() + 32);
  return expand(both, "lstp/1 resume psk");
}

std::string short_id(const pairing_id& id) { return Botan::hex_encode(id.data(), 4, false); }

}  // namespace lstp
