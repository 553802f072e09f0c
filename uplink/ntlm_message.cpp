#include "uplink/ntlm_message.hpp"

#include <botan/base64.h>
#include <botan/mem_ops.h>
#include <ntlm.h>

#include <cstdint>
#include <cstring>

namespace uplink {

namespace {

// libntlm's messages hold at most NTLM_MSG_BUFSIZE bytes of names: keep
// well inside it (the names go in twice as UTF-16).
constexpr std::size_t max_name = 128;

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }

template <class Message>
std::string encoded(const Message& m) {
  return Botan::base64_encode(reinterpret_cast<const std::uint8_t*>(&m), static_cast<std::size_t>(SmbLength(&m)));
}

}  // namespace

std::string ntlm_negotiate_message(const std::string& user, const std::string& domain) {
  tSmbNtlmAuthRequest request{};
  const auto u = user.substr(0, max_name);
  const auto d = domain.substr(0, max_name);
  buildSmbNtlmAuthRequest_noatsplit(&request, u.c_str(), d.c_str());
  return encoded(request);
}

std::optional<std::string> ntlm_authenticate_message(const std::string& challenge, const std::string& user,
                                                     const std::string& domain, const std::string& password,
                                                     std::string& why) {
  if (user.size() > max_name || domain.size() > max_name || password.size() > max_name) {
    why = "NTLM takes a user name, domain and password of at most 128 bytes each";
    return std::nullopt;
  }
  Botan::secure_vector<std::uint8_t> raw;
  try {
    raw = Botan::base64_decode(challenge);
  } catch (const std::exception&) {
    why = "the challenge is not base64";
    return std::nullopt;
  }
  tSmbNtlmAuthChallenge c{};
  // Signature, type, target name (8), flags, the 8-byte server challenge.
  constexpr std::size_t fixed = 32;
  if (raw.size() < fixed || raw.size() > sizeof c) {
    why = "the challenge has " + std::to_string(raw.size()) + " bytes";
    return std::nullopt;
  }
  if (std::memcmp(raw.data(), "NTLMSSP\0", 8) != 0 || le32(raw.data() + 8) != 2) {
    why = "the challenge is not an NTLM CHALLENGE message";
    return std::nullopt;
  }
  std::memcpy(&c, raw.data(), raw.size());
  // libntlm reads the target name (the domain, when none is given) where
  // the message says it is. One that lies outside what arrived is not read
  // (squid's own test helper sends garbage there): the domain is then empty.
  const std::size_t name_len = le16(raw.data() + 12);
  const std::size_t name_at = le32(raw.data() + 16);
  if (name_len > 0 && (name_at < fixed || name_at > raw.size() || name_len > raw.size() - name_at)) c.uDomain = {};
  tSmbNtlmAuthResponse response{};
  if (domain.empty()) {
    buildSmbNtlmAuthResponse_noatsplit(&c, &response, user.c_str(), password.c_str());
  } else {
    // libntlm takes the domain after an @ in the user name.
    std::string user_at_domain = user + "@" + domain;
    buildSmbNtlmAuthResponse(&c, &response, user_at_domain.c_str(), password.c_str());
    Botan::secure_scrub_memory(user_at_domain.data(), user_at_domain.size());
  }
  auto out = encoded(response);
  Botan::secure_scrub_memory(&response, sizeof response);
  return out;
}

}  // namespace uplink
