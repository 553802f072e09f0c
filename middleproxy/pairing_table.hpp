// The middle proxy's memory of setups (PROTOCOL.md 3.1), without I/O: which
// pairing ids wait for a partner (and until when), which are paired now.
// `Hop` is whatever the caller uses to find the waiting connection again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lstp/messages.hpp"

namespace middleproxy {

enum class admit_result {
  wait,            // stored: no partner yet
  pair,            // a partner was waiting: it is returned and removed
  already_paired,  // this id is paired here now: refuse, leave the pair alone
  replay,          // same nonce as the waiting setup: refuse
  wait_beside,     // stored, beside a setup of the same tunnel name with another
                   // pairing id: the secrets (or epochs) differ, or a stranger
                   // who knows the name probes; neither evicts the other
  name_full,       // too many pairing ids wait under this tunnel name: refuse
  table_full,      // too many waiting setups: refuse
  source_full,     // too many waiting setups from this source address: refuse
};

template <class Hop>
class pairing_table {
 public:
  // `max_per_source`: waiting setups one source address may hold, so one
  // host cannot fill the table for everyone.
  // `max_per_tag`: pairing ids that may wait under one tunnel name. A
  // newcomer never evicts another source's waiting setup (a stranger who
  // knows only the name, which every setup shows, could otherwise keep a
  // tunnel from forming), so this bounds what one name can hold.
  // `max_per_tag_source`: pairing ids one source may hold under one name.
  // Its next setup for that name replaces its own oldest, so one source
  // cannot fill a name (the bound above) and an end that comes back (a new
  // epoch, a restart, a connection the middle has not yet seen close)
  // takes the place of its own stale setup. Filling a name takes
  // max_per_tag / max_per_tag_source sources (IPv4 addresses or IPv6 /64s).
  explicit pairing_table(std::size_t max_waiting, std::size_t max_per_source = static_cast<std::size_t>(-1),
                         std::size_t max_per_tag = 8, std::size_t max_per_tag_source = 2)
      : max_waiting_(max_waiting),
        max_per_source_(max_per_source),
        max_per_tag_(max_per_tag),
        max_per_tag_source_(max_per_tag_source) {}

  struct admitted {
    admit_result result;
    std::optional<Hop> partner;  // when result == pair
    // A setup of the same name from the same source that this one replaced
    // (see max_per_tag_source), or the same end's older setup (see admit):
    // its hop is to be closed.
    std::optional<Hop> replaced;
    bool replaced_same_end = false;  // the second case
  };

  // `role`: the end's role, when known. Two setups of one pairing id and
  // the same role (client and client, server and server) are one end
  // twice (a resuming end's newer attempt, the older one's connection not
  // yet seen closed), never partners: the newer takes the older's place.
  admitted admit(const lstp::pairing_id& id, const lstp::tunnel_tag& tag, const lstp::nonce& n, Hop hop,
                 const std::string& source = {}, std::optional<lstp::end_role> role = std::nullopt) {
    if (paired_.count(id)) return {admit_result::already_paired, std::nullopt, std::nullopt};
    std::optional<Hop> replaced;
    bool same_end = false;
    auto it = waiting_.find(id);
    if (it != waiting_.end()) {
      if (it->second.nonce == n) return {admit_result::replay, std::nullopt, std::nullopt};
      if (role && it->second.role == role && *role != lstp::end_role::both) {
        replaced = std::move(it->second.hop);
        same_end = true;
        erase(it);
      } else {
        auto partner = std::move(it->second.hop);
        erase(it);
        paired_.insert(id);
        return {admit_result::pair, std::move(partner), std::nullopt};
      }
    }
    if (!source.empty() && !same_end) {
      // The source's own oldest setup under this name, when it holds its
      // share already.
      std::size_t mine = 0;
      auto oldest = waiting_.end();
      for (auto [a, b] = by_tag_.equal_range(tag); a != b; ++a) {
        auto w = waiting_.find(a->second);
        if (w->second.source != source) continue;
        ++mine;
        if (oldest == waiting_.end() || w->second.order < oldest->second.order) oldest = w;
      }
      if (mine >= max_per_tag_source_ && oldest != waiting_.end()) {
        replaced = std::move(oldest->second.hop);
        erase(oldest);
      }
    }
    if (waiting_.size() >= max_waiting_)
      return {admit_result::table_full, std::nullopt, std::move(replaced), same_end};
    if (!source.empty() && waiting_from(source) >= max_per_source_)
      return {admit_result::source_full, std::nullopt, std::move(replaced), same_end};
    const auto beside = by_tag_.count(tag);
    if (beside >= max_per_tag_) return {admit_result::name_full, std::nullopt, std::move(replaced), same_end};
    waiting_.emplace(id, entry{n, tag, std::move(hop), source, ++admitted_, role});
    if (!source.empty()) ++per_source_[source];
    by_tag_.emplace(tag, id);
    return {beside > 0 ? admit_result::wait_beside : admit_result::wait, std::nullopt, std::move(replaced), same_end};
  }

  // The waiting hop went away (closed, timed out, or its forwarded setup was
  // answered by the next middle). Only removes the entry if it is `hop`'s.
  bool forget_waiting(const lstp::pairing_id& id, const Hop& hop) {
    auto it = waiting_.find(id);
    if (it == waiting_.end() || !(it->second.hop == hop)) return false;
    erase(it);
    return true;
  }

  // A setup that was answered elsewhere (by the next middle) is paired too.
  void mark_paired(const lstp::pairing_id& id) { paired_.insert(id); }
  void unpair(const lstp::pairing_id& id) { paired_.erase(id); }

  bool is_waiting(const lstp::pairing_id& id) const { return waiting_.count(id) != 0; }
  // The hops waiting under `tag` with a pairing id other than `id`.
  std::vector<Hop> waiting_beside(const lstp::tunnel_tag& tag, const lstp::pairing_id& id) const {
    std::vector<Hop> hops;
    for (auto [a, b] = by_tag_.equal_range(tag); a != b; ++a)
      if (a->second != id) hops.push_back(waiting_.at(a->second).hop);
    return hops;
  }
  bool is_paired(const lstp::pairing_id& id) const { return paired_.count(id) != 0; }
  // Every waiting hop, in pairing id order (for the admin page).
  template <class F>
  void for_each_waiting(F f) const {
    for (auto& [id, e] : waiting_) f(e.hop);
  }
  std::size_t waiting() const { return waiting_.size(); }
  std::size_t waiting_from(const std::string& source) const {
    auto it = per_source_.find(source);
    return it == per_source_.end() ? 0 : it->second;
  }
  std::size_t paired() const { return paired_.size(); }
  std::size_t per_tag_source() const { return max_per_tag_source_; }

 private:
  struct entry {
    lstp::nonce nonce;
    lstp::tunnel_tag tag;
    Hop hop;
    std::string source;
    std::uint64_t order = 0;  // admission order: the oldest is replaced first
    std::optional<lstp::end_role> role;
  };
  std::size_t max_waiting_;
  std::size_t max_per_source_;
  std::size_t max_per_tag_;
  std::size_t max_per_tag_source_;
  std::uint64_t admitted_ = 0;
  void erase(typename std::map<lstp::pairing_id, entry>::iterator it) {
    for (auto [a, b] = by_tag_.equal_range(it->second.tag); a != b; ++a) {
      if (a->second == it->first) {
        by_tag_.erase(a);
        break;
      }
    }
    if (auto s = per_source_.find(it->second.source); s != per_source_.end() && --s->second == 0) per_source_.erase(s);
    waiting_.erase(it);
  }

  std::map<lstp::pairing_id, entry> waiting_;
  // The pairing ids waiting under each tunnel name.
  std::multimap<lstp::tunnel_tag, lstp::pairing_id> by_tag_;
  std::set<lstp::pairing_id> paired_;
  std::map<std::string, std::size_t> per_source_;
};

}  // namespace middleproxy
