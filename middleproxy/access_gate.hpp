// Who may use this middle proxy (PROTOCOL.md 3.6, "no free relay"). With an
// access list configured, every hop must open with an ACCESS frame whose MAC
// was made with one of the listed tokens over the setup that follows, whose
// time is within the window of this middle's clock, and which was not seen
// before. It is checked before the pairing table keeps anything. Sans-I/O:
// the wall clock comes in as a number.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lstp/messages.hpp"
#include "lstp/secrets.hpp"
#include "lstp/setup.hpp"
#include "middleproxy/setup_check.hpp"

namespace middleproxy {

struct access_key {
  std::string name;
  lstp::secret_bytes key;             // lstp::access_key() of the token; never logged
  std::vector<std::string> tunnels;   // tunnel names it may serve; empty: any
};

class access_gate {
 public:
  // At most this many proofs are remembered (each for twice the window): a
  // holder of a valid credential cannot grow the cache without bound. Each
  // credential has its share (at least min_share), so one holder filling
  // its share locks out only itself.
  static constexpr std::size_t max_remembered = 100000;
  static constexpr std::size_t min_share = 1000;

  access_gate() = default;
  access_gate(std::vector<access_key> keys, std::chrono::seconds window);

  bool required() const { return !keys_.empty(); }

  struct verdict {
    std::optional<setup_refusal> refusal;  // what the hop is told
    std::string detail;                    // for the log only: which check failed
    std::string who;                       // the credential's name once proven
  };
  verdict check(const std::optional<lstp::access_proof>& proof, const lstp::setup_message& setup,
                std::int64_t unix_now);
  // HMACs computed so far: one per proof, whether its name is known or not.
  std::uint64_t macs_checked() const { return macs_checked_; }

 private:
  struct key {
    access_key config;
    std::vector<lstp::tunnel_tag> tags;
    std::size_t remembered = 0;  // proofs of this credential in seen_
  };
  void forget_old(std::int64_t unix_now);

  std::vector<key> keys_;
  // An unknown name is checked against this (random) key, so that it costs
  // the same HMAC as a known one: timing tells no stranger which names exist.
  lstp::secret_bytes decoy_;
  std::size_t share_ = max_remembered;
  std::chrono::seconds window_{300};
  std::uint64_t macs_checked_ = 0;
  // Proofs seen, by MAC and by time (to forget those older than the window),
  // with the index of the credential that made them.
  std::map<lstp::access_mac, std::size_t> seen_;
  std::multimap<std::int64_t, lstp::access_mac> seen_by_time_;
};

}  // namespace middleproxy
