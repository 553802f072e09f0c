// The middle proxy's memory of setups (PROTOCOL.md 3.1), without I/O: which
// pairing ids wait for a partner (and until when), which are paired now.
// `Hop` is whatever the caller uses to find the waiting connection again.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>

#include "lstp/messages.hpp"

namespace middleproxy {

enum class admit_result {
  wait,            // stored: no partner yet
  pair,            // a partner was waiting: it is returned and removed
  already_paired,  // this id is paired here now: refuse, leave the pair alone
  replay,          // same nonce as the waiting setup: refuse
  table_full,      // too many waiting setups: refuse
};

template <class Hop>
class pairing_table {
 public:
  explicit pairing_table(std::size_t max_waiting) : max_waiting_(max_waiting) {}

  struct admitted {
    admit_result result;
    std::optional<Hop> partner;  // when result == pair
  };

  admitted admit(const lstp::pairing_id& id, const lstp::nonce& n, Hop hop) {
    if (paired_.count(id)) return {admit_result::already_paired, std::nullopt};
    auto it = waiting_.find(id);
    if (it != waiting_.end()) {
      if (it->second.nonce == n) return {admit_result::replay, std::nullopt};
      auto partner = std::move(it->second.hop);
      waiting_.erase(it);
      paired_.insert(id);
      return {admit_result::pair, std::move(partner)};
    }
    if (waiting_.size() >= max_waiting_) return {admit_result::table_full, std::nullopt};
    waiting_.emplace(id, entry{n, std::move(hop)});
    return {admit_result::wait, std::nullopt};
  }

  // The waiting hop went away (closed, timed out, or its forwarded setup was
  // answered by the next middle). Only removes the entry if it is `hop`'s.
  bool forget_waiting(const lstp::pairing_id& id, const Hop& hop) {
    auto it = waiting_.find(id);
    if (it == waiting_.end() || !(it->second.hop == hop)) return false;
    waiting_.erase(it);
    return true;
  }

  // A setup that was answered elsewhere (by the next middle) is paired too.
  void mark_paired(const lstp::pairing_id& id) { paired_.insert(id); }
  void unpair(const lstp::pairing_id& id) { paired_.erase(id); }

  bool is_waiting(const lstp::pairing_id& id) const { return waiting_.count(id) != 0; }
  bool is_paired(const lstp::pairing_id& id) const { return paired_.count(id) != 0; }
  std::size_t waiting() const { return waiting_.size(); }
  std::size_t paired() const { return paired_.size(); }

 private:
  struct entry {
    lstp::nonce nonce;
    Hop hop;
  };
  std::size_t max_waiting_;
  std::map<lstp::pairing_id, entry> waiting_;
  std::set<lstp::pairing_id> paired_;
};

}  // namespace middleproxy
