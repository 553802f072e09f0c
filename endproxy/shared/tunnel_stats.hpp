// What a tunnel keeper counts for the admin server (/metrics and the
// status page): across every tunnel attempt it made, not only the live one.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "admin/prometheus.hpp"

namespace endproxy {

struct tunnel_stats {
  std::uint64_t tunnels_up = 0;  // tunnels that came up; every one after the first is a reconnect
  std::uint64_t resumptions_before = 0;  // of tunnels already closed
  std::uint64_t bytes_sent_before = 0, bytes_received_before = 0;  // on the hops of tunnels already closed
  // Channel opens by result: "ok", or why not ("connection_refused",
  // "not_allowed", "no_tunnel", ...): opened here at a client end,
  // connected for the peer at a server end.
  std::map<std::string, std::uint64_t> opens;
  // From the request to its answer (client end) or the connect (server end).
  admin::histogram connect_seconds{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  // Why the ways cheaper than the one in use failed when it was chosen.
  std::vector<std::string> cheaper_ways_failed;

  void count_open(std::string_view result, std::chrono::steady_clock::duration took) {
    std::string word;
    for (char c : result) word.push_back(c == ' ' ? '_' : c);
    ++opens[word];
    connect_seconds.observe(std::chrono::duration<double>(took).count());
  }
};

}  // namespace endproxy
