// Fetches a PAC file: from a file, or by HTTP GET (a PAC or WPAD URL).
// Blocks for at most `timeout` (its own small io_context): call it off the
// I/O thread. At most 1 MiB.
#pragma once

#include <chrono>
#include <string>

#include "uplink/pac.hpp"

namespace uplink {

struct pac_fetched {
  std::string script;  // the file's text
  std::string error;   // not empty: why there is none
};

pac_fetched fetch_pac(const pac_source& from, std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace uplink
