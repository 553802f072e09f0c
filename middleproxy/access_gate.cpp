#include "middleproxy/access_gate.hpp"

#include <algorithm>

#include <botan/auto_rng.h>

#include "lstp/access.hpp"
#include "lstp/secrets.hpp"

namespace middleproxy {

namespace {
setup_refusal denied(std::string reason) { return {lstp::wire_error::access_denied, std::move(reason)}; }
}  // namespace

access_gate::access_gate(std::vector<access_key> keys, std::chrono::seconds window) : window_(window) {
  for (auto& k : keys) {
    key entry{std::move(k), {}, 0};
    for (auto& t : entry.config.tunnels) entry.tags.push_back(lstp::tag_of(t));
    keys_.push_back(std::move(entry));
  }
  Botan::AutoSeeded_RNG rng;
  decoy_ = rng.random_vec(lstp::key_size);
  if (!keys_.empty()) share_ = std::max(min_share, max_remembered / keys_.size());
}

void access_gate::forget_old(std::int64_t unix_now) {
  // A proof older than the window is refused as stale anyway.
  const auto oldest = unix_now - 2 * window_.count();
  while (!seen_by_time_.empty() && seen_by_time_.begin()->first < oldest) {
    if (auto it = seen_.find(seen_by_time_.begin()->second); it != seen_.end()) {
      --keys_[it->second].remembered;
      seen_.erase(it);
    }
    seen_by_time_.erase(seen_by_time_.begin());
  }
}

access_gate::verdict access_gate::check(const std::optional<lstp::access_proof>& proof,
                                        const lstp::setup_message& setup, std::int64_t unix_now) {
  if (!required()) return {};
  if (!proof)
    return {denied("this middle proxy requires an access credential (tunnel.access in the end's config)"),
            "no ACCESS frame", {}};
  // The same answer for an unknown name and a wrong token: a stranger learns
  // neither which names exist nor anything about a token.
  const auto it = std::find_if(keys_.begin(), keys_.end(), [&](const key& k) { return k.config.name == proof->name; });
  if (it == keys_.end()) {
    (void)lstp::verify_access_proof(*proof, decoy_, setup);
    ++macs_checked_;
    return {denied("access denied: unknown credential or wrong token"), "unknown credential \"" + proof->name + "\"",
            {}};
  }
  const bool valid = lstp::verify_access_proof(*proof, it->config.key, setup);
  ++macs_checked_;
  if (!valid)
    return {denied("access denied: unknown credential or wrong token"),
            "wrong token for credential \"" + proof->name + "\"", {}};
  // From here the sender holds the token: it may be told precisely.
  // Clamped first so the difference cannot overflow whatever the time says.
  const auto claimed = static_cast<std::int64_t>(std::min<std::uint64_t>(proof->time, std::uint64_t{1} << 62));
  const auto skew = claimed - unix_now;
  if (skew > window_.count() || -skew > window_.count())
    return {denied("access proof is " + std::to_string(skew < 0 ? -skew : skew) + " s " +
                   (skew < 0 ? "behind" : "ahead of") + " this middle proxy's clock (at most " +
                   std::to_string(window_.count()) + " s allowed): check the clocks"),
            "stale proof from credential \"" + proof->name + "\"", proof->name};
  if (!it->tags.empty() && std::find(it->tags.begin(), it->tags.end(), setup.info.tag) == it->tags.end())
    return {denied("access denied: credential \"" + proof->name + "\" may not serve this tunnel"),
            "credential \"" + proof->name + "\" is not allowed this tunnel", proof->name};
  forget_old(unix_now);
  if (seen_.count(proof->mac))
    return {denied("access proof already used: a replayed setup"),
            "replayed proof of credential \"" + proof->name + "\"", proof->name};
  if (it->remembered >= share_)
    return {setup_refusal{lstp::wire_error::too_many_waiting,
                          "too many setups with this credential in the access window (" + std::to_string(share_) +
                              "); try later"},
            "replay cache share of credential \"" + proof->name + "\" full", proof->name};
  seen_.emplace(proof->mac, static_cast<std::size_t>(it - keys_.begin()));
  ++it->remembered;
  seen_by_time_.emplace(static_cast<std::int64_t>(proof->time), proof->mac);
  return {std::nullopt, {}, proof->name};
}

}  // namespace middleproxy
