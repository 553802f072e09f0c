// Runs a PAC file's FindProxyForURL with Debian's libpacparser. A PAC file
// is a program from the network: it may loop, eat memory or crash the
// JavaScript engine, so it runs in a child process of its own, killed when
// `timeout` passes. Blocks: call it off the I/O thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "uplink/pac.hpp"

namespace uplink {

struct pac_evaluation {
  std::string error;                 // not empty: the file does not parse, or loops, or crashed
  std::vector<std::string> answers;  // one per query, in order (when no error)
};

pac_evaluation evaluate_pac(const std::string& script, const std::vector<pac_query>& queries,
                            std::chrono::milliseconds timeout = std::chrono::seconds(3));

}  // namespace uplink
