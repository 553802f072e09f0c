// The end proxy as its admin server shows it: each tunnel (state, hop map,
// way, counters) with its channels, /metrics, readiness, and the operator's
// actions (close a channel, drop a tunnel). Reads the keepers between
// events, on the process's one thread.
#pragma once

#include <memory>
#include <vector>

#include "admin/status_source.hpp"
#include "endproxy/shared/tunnel_keeper.hpp"

namespace endproxy {

class end_status final : public admin::status_source {
 public:
  end_status(const config::end_config& cfg, std::vector<std::shared_ptr<tunnel_keeper>> tunnels);

  std::string kind() const override { return "end"; }
  std::string name() const override;
  boost::json::object status() override;
  void metrics(admin::metrics_text& out) override;
  bool ready(std::string& why) override;
  admin::action_result close_channel(std::uint64_t id) override;
  admin::action_result drop_tunnel(const std::string& name) override;

 private:
  const config::end_config& cfg_;
  std::vector<std::shared_ptr<tunnel_keeper>> tunnels_;
};

}  // namespace endproxy
