// The middle proxy as its admin server shows it: what middle_server
// reports (listeners, waiting setups, pairs, refusals, credentials) and
// its readiness (listening). A middle has no actions: it cannot read a
// tunnel, and an operator who wants a pair gone stops the middle.
#pragma once

#include <memory>

#include "admin/status_source.hpp"
#include "middleproxy/middle_server.hpp"

namespace middleproxy {

class middle_status final : public admin::status_source {
 public:
  explicit middle_status(std::shared_ptr<middle_server> server) : server_(std::move(server)) {}
  std::string kind() const override { return "middle"; }
  std::string name() const override { return server_->cfg().name; }
  boost::json::object status() override { return server_->status(); }
  void metrics(admin::metrics_text& out) override { server_->metrics(out); }
  bool ready(std::string& why) override {
    if (server_->listening()) return true;
    why = "not listening";
    return false;
  }

 private:
  std::shared_ptr<middle_server> server_;
};

}  // namespace middleproxy
