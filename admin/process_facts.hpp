// What /proc says about this process, for /metrics and the status page.
#pragma once

#include <cstdint>

namespace admin {

struct process_facts {
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;
  double cpu_seconds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};

process_facts read_process_facts();

}  // namespace admin
