// endproxy: one end of an lstp tunnel (client end, server end, or both).
#include <iostream>

#include "admin/admin_server.hpp"
#include "config/config.hpp"
#include "endproxy/shared/end_status.hpp"
#include "endproxy/shared/tunnel_keeper.hpp"
#include "endproxy/client/front.hpp"
#include "runtime/cli.hpp"
#include "runtime/capacity.hpp"
#include "runtime/log.hpp"
#include "runtime/process_hardening.hpp"
#include "runtime/service_notify.hpp"

namespace {
constexpr std::string_view help = R"(usage: endproxy -c FILE.yaml [--check]
       endproxy --new-secret FILE

Runs an lstp end proxy. It connects out to its middle proxy, pairs with the
other end of its tunnel, and runs TLS end to end with it (authenticated by the
tunnel's pre-shared secret; the middle proxies see only ciphertext).

  role: client   serves SOCKS5 to local apps; each connection is carried
                 through the tunnel and opened by the server end
  role: server   opens the connections the client end asks for, inside its
                 own network (names are resolved here)
  role: both     both at once (e.g. for reverse forwards)

A client end may hold several tunnels (`tunnels:`) and route each request
to one of them (`routes:`, `default_route:`); see the README.

  -c, --config FILE   the YAML configuration (see conf/quickstart/client.yaml
                      and conf/quickstart/server.yaml)
      --check         validate the configuration and exit (0 when valid)
      --new-secret FILE  write a new tunnel secret to FILE (mode 0600, never
                      overwriting) and exit; both ends need the same one
      --new-token FILE   the same for a middle proxy's access token (or the
                      admin server's, admin.token_file)
  -V, --version       the version
  -h, --help          this text

The secret comes from `tunnel.secret_file` (mode 0600) or `tunnel.secret_env`
(removed from the environment at start); it is never logged. A generated
one (--new-secret) cannot be guessed; anything else is a passphrase, slowed
down with Argon2id, with a warning.
)";
}

int main(int argc, char** argv) {
  runtime::hold_stop_signals();
  int exit_code = 0;
  auto opts = runtime::parse_cli(argc, argv, "endproxy", help, exit_code);
  if (!opts) return exit_code;
  if (opts->make_key != runtime::cli_options::new_key::none)
    return config::new_key_command("endproxy", opts->make_key == runtime::cli_options::new_key::secret
                                                      ? lstp::key_use::tunnel_secret
                                                      : lstp::key_use::access_token,
                                   opts->key_file);
  config::end_config cfg;
  try {
    cfg = config::load_end(opts->config_file);
  } catch (const config::error& e) {
    std::cerr << "endproxy: " << e.what() << "\n";
    return 1;
  }
  if (opts->check_only) {
    std::string tunnels;
    for (auto& t : cfg.tunnels) tunnels += (tunnels.empty() ? "" : ", ") + t.name;
    std::cout << opts->config_file << ": ok (end proxy \"" << cfg.name << "\", tunnel"
              << (cfg.tunnels.size() == 1 ? " " : "s ") << tunnels << ")\n";
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
    std::vector<std::shared_ptr<endproxy::tunnel_keeper>> tunnels;
    const auto shared_cfg = std::make_shared<const config::end_config>(cfg);
    for (std::size_t i = 0; i < cfg.tunnels.size(); ++i)
      tunnels.push_back(std::make_shared<endproxy::tunnel_keeper>(io, shared_cfg, i));
    auto door = cfg.role == config::end_role::server ? nullptr : std::make_shared<endproxy::front>(io, cfg, tunnels);
    auto admin_server =
        admin::admin_server::from_config(io, cfg.admin, std::make_shared<endproxy::end_status>(cfg, tunnels));
    // systemd (Type=notify): a client end is ready once a tunnel is up, a
    // server end once it started; STATUS= says which tunnels are up.
    const bool serves_apps = cfg.role != config::end_role::server;
    bool told_ready = false;
    const auto tell_systemd = [&] {
      std::string up;
      for (auto& t : tunnels)
        if (t->current_tunnel()) up += (up.empty() ? "" : ", ") + t->tunnel().name;
      const std::string status = up.empty() ? "no tunnel up" : "up: " + up;
      if (!told_ready && (!serves_apps || !up.empty())) {
        runtime::notify_ready(status);
        told_ready = true;
      } else {
        runtime::notify_status(status);
      }
    };
    for (auto& t : tunnels) t->on_change(tell_systemd);
    for (auto& t : tunnels) t->start();
    if (door) door->start();
    if (admin_server) admin_server->start();
    tell_systemd();
    runtime::stop_plan plan;
    plan.grace = cfg.limit.shutdown_grace;
    plan.begin = [&] {
      runtime::notify_stopping();
      for (auto& t : tunnels) t->on_change({});
      if (admin_server) admin_server->stop();
      if (door) door->stop();
      for (auto& t : tunnels) t->stop();
    };
    plan.finished = [&] {
      if (door && door->tasks().running() > 0) return false;
      for (auto& t : tunnels)
        if (t->tasks().running() > 0) return false;
      return true;
    };
    plan.reset_rest = [&] {
      if (door) door->reset();
      for (auto& t : tunnels) t->reset();
    };
    runtime::run_until_signal(io, std::move(plan));
  } catch (const std::exception& e) {
    std::cerr << "endproxy: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
