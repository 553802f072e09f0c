#include "runtime/process_hardening.hpp"

#include <sys/prctl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace runtime {

std::string make_undumpable() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return std::strerror(errno);
  return {};
}

void forget_environment_variable(const std::string& name) {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, name.c_str(), name.size()) == 0 && (*e)[name.size()] == '=') {
      // Volatile stores: the compiler may not drop a wipe of memory it
      // believes is about to be left alone.
      volatile char* v = *e + name.size() + 1;
      while (*v != '\0') *v++ = '\0';
    }
  }
  ::unsetenv(name.c_str());
}

}  // namespace runtime
