// Which ways out to try, in which order (seed 001's adaptive traversal), and
// the small state file that remembers what worked. Sans-I/O.
//
// Without configured ways every carrier is a candidate, directly and through
// the configured (or environment's) proxy, cheapest first: plain TCP, then
// TLS, then the same through the proxy, then WebSocket, then WebSocket
// through the proxy. The way that last worked for a middle goes first.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "uplink/ways.hpp"

namespace uplink {

struct candidate {
  uplink::endpoint middle;
  uplink::way way;
  int cost = 0;  // lower is cheaper; only compared within one middle
  std::string to_string() const { return way.to_string() + " to " + middle.to_string(); }
};

// What worked last, per middle proxy ("host:port" -> way text).
class way_memory {
 public:
  // Lines "<middle> <way...>"; '#' starts a comment; unknown lines are
  // skipped (a damaged file costs a slower start, nothing more).
  static way_memory parse(std::string_view text);
  std::string format() const;
  std::optional<std::string> winner(const uplink::endpoint& middle) const;
  // True when this changed what is remembered.
  bool remember(const uplink::endpoint& middle, const uplink::way& way);

  // Reads the file; a missing file is an empty memory. Throws
  // std::runtime_error naming the file on other failures.
  static way_memory load(const std::string& path);
  // Writes atomically (temporary file, then rename); creates the directory.
  void save(const std::string& path) const;

 private:
  std::map<std::string, std::string> winners_;
};

// The ways for one middle, without configured ways (`explicit_ways` empty):
// every carrier, directly and, when there is one, through `proxy` or
// through the environment's proxy.
std::vector<uplink::way> automatic_ways(const std::optional<uplink::proxy>& proxy, bool proxy_from_environment);

// Turns a "via env" way into the ways the discovered proxies give for that
// middle, in their order: the environment's proxy, or a PAC file's answers
// (PROXY a; SOCKS b; DIRECT). None drops it.
using environment_resolver =
    std::function<std::vector<uplink::way>(const uplink::endpoint& middle, const uplink::way& way)>;

// All candidates: middles in the given order (best first), within each the
// remembered winner first, then by cost (explicit ways: the order given).
// Ways that resolve to one already listed for the middle are listed once.
std::vector<candidate> plan_candidates(const std::vector<uplink::endpoint>& middles,
                                       const std::vector<uplink::way>& explicit_ways,
                                       const std::optional<uplink::proxy>& proxy, bool proxy_from_environment,
                                       const way_memory& memory, const environment_resolver& resolve);

int way_cost(const uplink::way& w);

}  // namespace uplink
