// What a process holding secrets does to itself at start (issue 15): no core
// dump and no ptrace by other processes of the same user, and no secret
// left behind in its environment for /proc/PID/environ or its children.
#pragma once

#include <string>

namespace runtime {

// prctl(PR_SET_DUMPABLE, 0): no core dumps, /proc/PID/{mem,environ,maps}
// readable by root only, ptrace refused to the same user. Returns an error
// text, empty on success.
std::string make_undumpable();

// Wipes the value of environment variable `name` where it lies (which also
// blanks it in /proc/PID/environ) and removes it from the environment.
void forget_environment_variable(const std::string& name);

}  // namespace runtime
