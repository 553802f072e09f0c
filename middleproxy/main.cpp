// middleproxy: pairs end proxies' hops and passes their bytes through blind.
#include <iostream>

#include "admin/admin_server.hpp"
#include "config/config.hpp"
#include "middleproxy/middle_status.hpp"
#include "middleproxy/middle_server.hpp"
#include "runtime/cli.hpp"
#include "runtime/capacity.hpp"
#include "runtime/log.hpp"
#include "runtime/process_hardening.hpp"
#include "runtime/service_notify.hpp"

namespace {
constexpr std::string_view help = R"(usage: middleproxy -c FILE.yaml [--check]
       middleproxy --new-token FILE

Runs an lstp middle proxy: it accepts hops from end proxies (and from other
middle proxies), pairs the two hops of each tunnel by its pairing id, and then
copies their bytes both ways without reading them. It never knows a tunnel's
secret. With `next_hop` in its configuration it hands setups it cannot pair
to the next middle proxy, so tunnels can cross several firewalls.

  -c, --config FILE   the YAML configuration (see conf/quickstart/middle.yaml)
      --check         validate the configuration and exit (0 when valid)
      --new-token FILE   write a new access token to FILE (mode 0600, never
                      overwriting) and exit; list it under `access`
  -V, --version       the version
  -h, --help          this text
)";
}

int main(int argc, char** argv) {
  runtime::hold_stop_signals();
  int exit_code = 0;
  auto opts = runtime::parse_cli(argc, argv, "middleproxy", help, exit_code);
  if (!opts) return exit_code;
  if (opts->make_key != runtime::cli_options::new_key::none)
    return config::new_key_command("middleproxy", opts->make_key == runtime::cli_options::new_key::secret
                                                      ? lstp::key_use::tunnel_secret
                                                      : lstp::key_use::access_token,
                                   opts->key_file);
  config::middle_config cfg;
  try {
    cfg = config::load_middle(opts->config_file);
  } catch (const config::error& e) {
    std::cerr << "middleproxy: " << e.what() << "\n";
    return 1;
  }
  if (opts->check_only) {
    std::cout << opts->config_file << ": ok (middle proxy \"" << cfg.name << "\")\n";
    return 0;
  }
  runtime::set_log_level(static_cast<runtime::log_level>(cfg.log));
  runtime::set_log_format(cfg.format == config::log_format::json ? runtime::log_format::json
                                                                  : runtime::log_format::plain);
  // Secrets are loaded: keep them out of core dumps, debuggers and children.
  if (auto why = runtime::make_undumpable(); !why.empty())
    runtime::log_warn("main", "cannot make the process undumpable: ", why);
  for (auto& name : config::secret_environment_variables(cfg)) runtime::forget_environment_variable(name);
  try {
    // Declared first, destroyed last: coroutines still suspended when the
    // loop stops are destroyed with `io`, and they hold (shared) what they use.
    boost::asio::io_context io(1);
    runtime::task_group process_tasks(io.get_executor(), [](std::string_view task, std::string_view what) {
      runtime::log_error("main", task, ": internal error: ", what);
    });
    runtime::prepare_for_connections(io, process_tasks, cfg.limit.max_connections, cfg.limit.max_openings);
    auto server = std::make_shared<middleproxy::middle_server>(io, cfg);
    server->start();
    auto admin_server =
        admin::admin_server::from_config(io, cfg.admin, std::make_shared<middleproxy::middle_status>(server));
    if (admin_server) admin_server->start();
    runtime::notify_ready("listening");
    runtime::stop_plan plan;
    plan.grace = cfg.limit.shutdown_grace;
    plan.begin = [&] {
      runtime::notify_stopping();
      if (admin_server) admin_server->stop();
      server->stop();
    };
    plan.finished = [&] { return server->tasks().running() == 0; };
    plan.reset_rest = [&] { server->reset(); };
    runtime::run_until_signal(io, std::move(plan));
  } catch (const std::exception& e) {
    std::cerr << "middleproxy: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
