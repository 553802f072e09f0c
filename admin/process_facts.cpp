#include "admin/process_facts.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

namespace admin {

namespace {
// The process's start, taken once: the admin server is made at start.
const double started_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}  // namespace

process_facts read_process_facts() {
  process_facts f;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (statm >> size >> resident) {
    f.virtual_bytes = size * page;
    f.resident_bytes = resident * page;
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++f.open_fds;
    ::closedir(d);
    if (f.open_fds > 0) --f.open_fds;  // the directory being read
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) f.max_fds = lim.rlim_cur;
  rusage use{};
  if (::getrusage(RUSAGE_SELF, &use) == 0)
    f.cpu_seconds = static_cast<double>(use.ru_utime.tv_sec + use.ru_stime.tv_sec) +
                    static_cast<double>(use.ru_utime.tv_usec + use.ru_stime.tv_usec) / 1e6;
  f.start_time_seconds = started_at;
  return f;
}

}  // namespace admin
