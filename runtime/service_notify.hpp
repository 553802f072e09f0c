// Tells systemd (Type=notify units, packaging/systemd) how the process is
// doing, through libsystemd's sd_notify: READY=1 once it serves, a STATUS=
// line as things change, STOPPING=1 on a stop signal. Does nothing when
// not run by systemd (no NOTIFY_SOCKET).
#pragma once

#include <string_view>

namespace runtime {

void notify_ready(std::string_view status);
void notify_status(std::string_view status);
void notify_stopping();

}  // namespace runtime
