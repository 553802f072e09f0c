#include "lstp/access.hpp"

#include <botan/mac.h>
#include <botan/mem_ops.h>

#include "lstp/wire.hpp"

namespace lstp {

namespace {

access_mac compute_mac(std::string_view name, const secret_bytes& key, std::uint64_t time, const setup_message& setup) {
  auto hmac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
  hmac->set_key(key);
  bytes input;
  wire_writer w(input);
  w.raw(std::string_view("lstp/1 access"));
  w.str8(name);
  w.u32(static_cast<std::uint32_t>(time >> 32));
  w.u32(static_cast<std::uint32_t>(time));
  const auto frames = encode_setup(setup);
  input.insert(input.end(), frames.begin(), frames.end());
  hmac->update(input.data(), input.size());
  access_mac out{};
  hmac->final(out.data());
  return out;
}

}  // namespace

access_proof make_access_proof(std::string_view name, const secret_bytes& key, std::uint64_t unix_time,
                               const setup_message& setup) {
  return {std::string(name), unix_time, compute_mac(name, key, unix_time, setup)};
}

bool verify_access_proof(const access_proof& proof, const secret_bytes& key, const setup_message& setup) {
  const auto expected = compute_mac(proof.name, key, proof.time, setup);
  return Botan::constant_time_compare(expected.data(), proof.mac.data(), expected.size());
}

bytes hop_opening(const setup_message& setup, const std::optional<middle_access>& access) {
  bytes out;
  if (access) encode_access(out, make_access_proof(access->name, access->key, access->unix_time, setup));
  const auto frames = encode_setup(setup);
  out.insert(out.end(), frames.begin(), frames.end());
  return out;
}

}  // namespace lstp
