// What a process shows and lets an operator do through its admin server:
// the end proxy and the middle proxy each implement it over their own
// objects (endproxy/shared/end_status, middleproxy/middle_status). Called
// on the process's one I/O thread, between events: what it reads is
// consistent.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

#include "admin/prometheus.hpp"

namespace admin {

enum class action_result { done, not_found };

class status_source {
 public:
  virtual ~status_source() = default;
  // "end" or "middle", and the name the config gives the process.
  virtual std::string kind() const = 0;
  virtual std::string name() const = 0;
  // The process's own facts, merged into GET /api/v1/status after the
  // common "process" object.
  virtual boost::json::object status() = 0;
  // The process's own metric families (the admin server adds process_*).
  virtual void metrics(metrics_text& out) = 0;
  // /readyz: a client end has a tunnel up, a server end and a middle are
  // listening or connected; `why` says what is missing.
  virtual bool ready(std::string& why) = 0;
  // Actions: close one channel (its app sees a reset), drop a tunnel.
  virtual action_result close_channel(std::uint64_t /*id*/) { return action_result::not_found; }
  virtual action_result drop_tunnel(const std::string& /*name*/) { return action_result::not_found; }
};

}  // namespace admin
