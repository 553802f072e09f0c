#include "runtime/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace runtime {

namespace {
void send(const std::string& text) {
  // 0: keep NOTIFY_SOCKET for later notices. A failure has nowhere to go:
  // systemd's own timeout tells the operator.
  (void)sd_notify(0, text.c_str());
}

std::string one_line(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c == '\n') c = ' ';
  return out;
}
}  // namespace

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + one_line(status)); }
void notify_status(std::string_view status) { send("STATUS=" + one_line(status)); }
void notify_stopping() { send("STOPPING=1\nSTATUS=stopping"); }

}  // namespace runtime
