// A hop's access proof (PROTOCOL.md 3.6): how an end, or a middle passing a
// setup on, shows a middle proxy that it may use it, without sending the
// credential. The credential (a name and a token, set in both configs) is
// distinct from the tunnel's secret: the middle learns nothing that opens
// the tunnel, and an end never learns another's credential because the
// ACCESS frame is never relayed. Sans-I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lstp/frame.hpp"
#include "lstp/secrets.hpp"
#include "lstp/setup.hpp"

namespace lstp {

// `key` is the credential's HMAC key: lstp::access_key() of its token.
// The MAC is HMAC-SHA256(key, "lstp/1 access" | str8 name | u64 time |
// setup frames) over the COMMON_UNIQUE_INFO and TOPOLOGY_EXCHANGE frames sent
// right after the ACCESS frame on the same hop: it binds the proof to that one
// setup (its nonce), so it cannot be moved to another.
access_proof make_access_proof(std::string_view name, const secret_bytes& key, std::uint64_t unix_time,
                               const setup_message& setup);
// Constant time in the MAC: a wrong guess learns nothing from timing.
bool verify_access_proof(const access_proof& proof, const secret_bytes& key, const setup_message& setup);

// A credential for the middle a hop goes to (PROTOCOL.md 3.6).
struct middle_access {
  std::string name;
  secret_bytes key;             // lstp::access_key() of the token; never logged
  std::uint64_t unix_time = 0;  // now, as the wall clock says: the proof's time
};

// What opens a hop: ACCESS proven over `setup` when there is a credential,
// then the setup's frames. Ends and middles passing a setup on both use it.
bytes hop_opening(const setup_message& setup, const std::optional<middle_access>& access);

}  // namespace lstp
