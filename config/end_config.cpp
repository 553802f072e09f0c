// The end proxy's configuration: one tunnel or a list of them, routes,
// the SOCKS front and forwards, the server side's policy, limits.
#include <cstdlib>
#include <filesystem>

#include "config/config.hpp"
#include "config/from_yaml.hpp"
#include "config/reader.hpp"
#include "config/secrets.hpp"
#include "policy/names.hpp"

namespace config {

using namespace reader;

namespace {

// For messages about two limits that must be in order.
std::string size_text(std::size_t n) { return std::to_string(n) + " bytes"; }
std::string duration_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// Where an end remembers its ways when the config does not say: systemd's
// STATE_DIRECTORY, else $XDG_STATE_HOME/lstp, else ~/.local/state/lstp.
std::string default_state_file(const std::string& end_name) {
  const auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? std::string(v) : std::string();
  };
  std::filesystem::path dir;
  if (auto s = env("STATE_DIRECTORY"); !s.empty()) {
    dir = s.substr(0, s.find(':'));  // systemd may list several
  } else if (auto x = env("XDG_STATE_HOME"); !x.empty()) {
    dir = std::filesystem::path(x) / "lstp";
  } else if (auto h = env("HOME"); !h.empty()) {
    dir = std::filesystem::path(h) / ".local" / "state" / "lstp";
  } else {
    return {};
  }
  return (dir / (end_name + ".ways")).string();
}

// A list of policy rules (or one), each checked where it stands.
std::vector<policy::rule> read_rules(const source& src, const field& f) {
  std::vector<policy::rule> out;
  auto one = [&](const field& item) {
    const auto text = read_string(item);
    try {
      out.push_back(policy::parse_rule(text));
    } catch (const policy::rule_error& e) {
      item.fail(e.what());
    }
  };
  if (f.value.IsScalar()) {
    one(f);
  } else if (f.value.IsSequence()) {
    std::size_t i = 0;
    for (auto it = f.value.begin(); it != f.value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      one(field{&src, item, item, f.path + "[" + std::to_string(i) + "]"});
    }
  } else if (!f.value.IsNull()) {
    f.fail(std::string("expected a rule (like 10.0.0.0/8:22 or *.corp.example) or a list of them, got ") +
           describe(f.value));
  }
  return out;
}

// One tunnel's section. Its default state file is named after the end, and
// after the tunnel too when it is one of a list (each keeps its own).
void load_tunnel(const source& src, const field& tf, tunnel_config& cfg, const std::string& end_name, bool one_of_list) {
  const section t = sub_section(src, tf, {"name", "secret_file", "secret_env", "access", "middle", "ways", "proxy", "state_file",
                                          "websocket_path", "retry_interval", "retry_max", "way_timeout",
                                          "reprobe_interval"});
  cfg.name = read_name(t.require("name"));
  if (cfg.name == routing::direct || cfg.name == routing::refuse)
    t.require("name").fail("a tunnel may not be called \"" + cfg.name + "\" (a word of the routes)");

  auto secret = read_secret(src, t, lstp::key_use::tunnel_secret, "secret_file", "secret_env");
  cfg.secret = std::move(secret.value);
  cfg.secret_source = std::move(secret.source);
  cfg.secret_environment = std::move(secret.environment);
  if (const field* f = t.find("access")) {
    cfg.access = read_access_credential(src, *f);
    // A middle's operator holds the token: it must tell them nothing of the tunnel.
    if (cfg.access->token.bytes == cfg.secret.bytes)
      f->fail("the access token equals the tunnel's secret: the middle proxy's operator would hold the secret; "
              "use a separate token (middleproxy --new-token FILE)");
  }

  cfg.middles = read_endpoints(src, t.require("middle"));
  if (const field* f = t.find("ways")) {
    for_each_item(src, *f, "expected a way (like \"wss via http://proxy:3128\") or a list of them, got ",
                  [&](const field& item) {
                    auto w = read_way(item);
                    if (std::find(cfg.ways.begin(), cfg.ways.end(), w) != cfg.ways.end())
                      item.fail("listed twice: " + w.to_string());
                    cfg.ways.push_back(std::move(w));
                  });
  }
  if (const field* f = t.find("proxy")) {
    const auto text = read_string(*f);
    if (text == "env") {
      cfg.proxy_from_environment = true;
    } else if (text == "auto") {
      // WPAD first; without a PAC file, the environment.
      cfg.wpad = true;
      cfg.proxy_from_environment = true;
    } else if (text.rfind("pac+", 0) == 0) {
      cfg.pac = with_location(*f, [&] { return uplink::parse_pac_source(text); });
      cfg.proxy_from_environment = true;  // the PAC answers stand where the environment's proxy would
    } else {
      cfg.ways_proxy = with_location(*f, [&] { return parse_proxy_url(text); });
    }
  }
  if (const field* f = t.find("state_file")) {
    const std::string name = read_string(*f);
    if (name.empty()) f->fail("expected a file name or \"none\", got \"\"");
    if (name != "none") {
      std::filesystem::path p(name);
      if (p.is_relative()) p = std::filesystem::path(src.file).parent_path() / p;
      cfg.state_file = p.string();
    }
  } else {
    cfg.state_file = default_state_file(one_of_list ? end_name + "." + cfg.name : end_name);
  }
  if (const field* f = t.find("websocket_path")) cfg.websocket_path = read_websocket_path(*f);
  if (const field* f = t.find("retry_interval")) cfg.retry_interval = read_duration(*f);
  if (const field* f = t.find("retry_max")) {
    cfg.retry_max = read_duration(*f);
    if (cfg.retry_max < cfg.retry_interval) f->fail("must not be shorter than retry_interval");
  } else {
    cfg.retry_max = std::max(cfg.retry_max, cfg.retry_interval);
  }
  if (const field* f = t.find("way_timeout")) cfg.way_timeout = read_duration(*f);
  if (const field* f = t.find("reprobe_interval")) {
    // "off" turns the background search for a cheaper way off.
    cfg.reprobe_interval = read_string(*f) == "off" ? std::chrono::milliseconds(0) : read_duration(*f);
  }
}

void load_socks(const source& src, const field& sf, end_config& cfg) {
  const section s = sub_section(src, sf, {"listen", "users", "timeout", "allow_from"});
  const field& listen_f = s.require("listen");
  cfg.socks_listen = read_endpoints(src, listen_f);
  if (const field* af = s.find("allow_from")) {
    for (auto& r : read_rules(src, *af)) {
      if (r.what != policy::rule::kind::network || !r.ports.empty())
        af->fail("expected networks (like 192.168.1.0/24 or 10.0.0.7), got " + quote(r.text));
      cfg.socks_allow_from.push_back(std::move(r));
    }
  }
  if (const field* uf = s.find("users")) {
    if (!uf->value.IsSequence()) uf->fail(std::string("expected a list of username/password pairs, got ") + describe(uf->value));
    if (uf->value.size() == 0) uf->fail("expected at least one user (leave \"users\" out to allow connections without a password)");
    std::size_t i = 0;
    for (auto it = uf->value.begin(); it != uf->value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      const std::string path = uf->path + "[" + std::to_string(i) + "]";
      const section u(src, item, item.Mark(), path, {"username", "password"});
      if (item.IsNull()) u.fail("expected a map with username and password");
      socks_user user;
      const field& name_f = u.require("username");
      user.username = read_string(name_f);
      if (user.username.empty() || user.username.size() > 255) {
        name_f.fail("must be 1 to 255 bytes, got " + std::to_string(user.username.size()));
      }
      for (const auto& prev : cfg.socks_users) {
        if (prev.username == user.username) name_f.fail("user " + quote(user.username) + " is listed twice");
      }
      const field& pass_f = u.require("password");
      user.password = read_string(pass_f);
      // Length only: a password is a secret too.
      if (user.password.empty() || user.password.size() > 255) {
        pass_f.fail("must be 1 to 255 bytes, got " + std::to_string(user.password.size()));
      }
      cfg.socks_users.push_back(std::move(user));
    }
  }
  if (const field* f = s.find("timeout")) cfg.limit.socks_timeout = read_duration(*f);
  // Anyone who reaches an open SOCKS port uses the tunnel, and through it
  // the far network: off loopback, a login or a list of networks is needed.
  if (cfg.socks_users.empty() && cfg.socks_allow_from.empty()) {
    for (auto& ep : cfg.socks_listen) {
      if (!is_loopback_host(ep.host))
        listen_f.fail(ep.to_string() + " is not a loopback address: anyone who reaches it could use the tunnel; "
                      "add socks.users (a login) or socks.allow_from (the networks that may connect, e.g. "
                      "192.168.1.0/24)");
    }
  }
}

void load_end_limits(const source& src, const field& lf, limits& lim) {
  const section l = sub_section(src, lf,
                                {"high_watermark", "low_watermark", "pause_slack", "max_channels", "max_connections",
                                 "max_openings", "max_tunnel_buffer", "keepalive", "dead_after", "handshake_timeout",
                                 "shutdown_grace", "resumption", "resume_window", "replay_buffer", "key_updates",
                                 "key_update_after", "key_update_interval"});
  const field* high = l.find("high_watermark");
  const field* low = l.find("low_watermark");
  if (high) lim.high_watermark = read_size(*high);
  if (low) lim.low_watermark = read_size(*low);
  if (const field* f = l.find("pause_slack")) lim.pause_slack = read_size(*f);
  if (const field* f = l.find("max_channels")) lim.max_channels = read_count(*f);
  if (const field* f = l.find("max_connections")) lim.max_connections = read_count(*f);
  if (const field* f = l.find("max_openings")) lim.max_openings = read_count(*f);
  if (const field* f = l.find("max_tunnel_buffer")) {
    lim.max_tunnel_buffer = read_size(*f);
    if (lim.max_tunnel_buffer < 1024 * 1024) f->fail("must be at least 1MiB (four channels' first windows)");
  }
  const field* keepalive = l.find("keepalive");
  const field* dead_after = l.find("dead_after");
  if (keepalive) lim.keepalive = read_duration(*keepalive);
  if (dead_after) lim.dead_after = read_duration(*dead_after);
  if (const field* f = l.find("handshake_timeout")) lim.handshake_timeout = read_duration(*f);
  if (const field* f = l.find("shutdown_grace")) lim.shutdown_grace = read_shutdown_grace(*f);
  if (const field* f = l.find("resumption"))
    lim.resumption = read_choice<bool>(*f, {{"on", true}, {"off", false}, {"true", true}, {"false", false}});
  if (const field* f = l.find("resume_window")) lim.resume_window = read_duration(*f);
  if (const field* f = l.find("replay_buffer")) {
    lim.replay_buffer = read_size(*f);
    if (lim.replay_buffer < 1024 * 1024) f->fail("must be at least 1MiB (the bytes of one credit window and more)");
  }
  if (const field* f = l.find("key_updates"))
    lim.key_updates = read_choice<bool>(*f, {{"on", true}, {"off", false}, {"true", true}, {"false", false}});
  if (const field* f = l.find("key_update_after")) {
    // Sooner is allowed; later would leave AES-GCM's comfortable margin.
    lim.key_update_after = read_size(*f);
    if (lim.key_update_after < 64 * 1024 || lim.key_update_after > (std::size_t{1} << 34))
      f->fail("must be between 64KiB and 16GiB");
  }
  if (const field* f = l.find("key_update_interval")) {
    lim.key_update_interval = read_duration(*f);
    if (lim.key_update_interval < std::chrono::seconds(1) || lim.key_update_interval > std::chrono::hours(1))
      f->fail("must be between 1s and 1h");
  }

  // Either key may be the one that was mistyped; blame one that was given.
  if (lim.low_watermark >= lim.high_watermark) {
    const std::string what = "low_watermark (" + size_text(lim.low_watermark) +
                             ") must be less than high_watermark (" + size_text(lim.high_watermark) + ")";
    (low ? low : high)->fail(what);
  }
  // A keepalive that is not well inside dead_after would get a healthy but
  // quiet tunnel declared dead.
  if (lim.keepalive >= lim.dead_after) {
    const std::string what = "keepalive (" + duration_text(lim.keepalive) + ") must be less than dead_after (" +
                             duration_text(lim.dead_after) + ")";
    (keepalive ? keepalive : dead_after)->fail(what);
  }
}

}  // namespace

end_config load_end(const std::string& path) {
  const source src{path};
  return end_from_yaml(load_document(src), path);
}

end_config end_from_yaml(const YAML::Node& root, const std::string& path) {
  const source src{path};
  const section top(src, root, root.Mark(), "",
                    {"name", "role", "tunnel", "tunnels", "routes", "default_route", "socks", "forwards", "server",
                     "limits", "log_level", "log_format", "admin"});
  end_config cfg;
  cfg.file = path;
  cfg.name = read_name(top.require("name"));
  cfg.role = read_choice<end_role>(top.require("role"), {{"client", end_role::client},
                                                         {"server", end_role::server},
                                                         {"both", end_role::both}});
  // One tunnel, or a list of them (routes then choose per request).
  const field* one_tunnel = top.find("tunnel");
  const field* tunnels = top.find("tunnels");
  if (one_tunnel && tunnels) top.fail("give either \"tunnel\" or \"tunnels\" (a list), not both");
  if (!one_tunnel && !tunnels) top.fail("missing key \"tunnel\" (or \"tunnels\", a list of them)");
  if (one_tunnel) {
    load_tunnel(src, *one_tunnel, cfg.tunnels.emplace_back(), cfg.name, false);
  } else {
    if (!tunnels->value.IsSequence() || tunnels->value.size() == 0)
      tunnels->fail("expected a list of tunnels, each with name, secret_file or secret_env, and middle");
    std::size_t i = 0;
    for (auto it = tunnels->value.begin(); it != tunnels->value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      const field item_field{&src, item, item, tunnels->path + "[" + std::to_string(i) + "]"};
      tunnel_config t;
      load_tunnel(src, item_field, t, cfg.name, true);
      // Routes and host.<tunnel>.lstp names compare tunnel names in any letter case.
      for (auto& prev : cfg.tunnels)
        if (policy::ascii_lower(prev.name) == policy::ascii_lower(t.name))
          item_field.fail("tunnel " + t.name + " is listed twice (names are compared in any letter case)");
      cfg.tunnels.push_back(std::move(t));
    }
  }

  const bool is_client = cfg.role != end_role::server;
  const bool is_server = cfg.role != end_role::client;
  const std::string role = role_name(cfg.role);
  // A section the role does not use would be ignored; that is almost always
  // a wrong role, so refuse it rather than run with a surprise.
  if (const field* sf = top.find("socks")) {
    if (!is_client) src.fail(sf->key.Mark(), sf->path, "not used when role is " + role + " (set role to client or both, or remove this section)");
    load_socks(src, *sf, cfg);
  } else if (is_client && !top.find("forwards")) {
    top.fail("missing key \"socks\" (required when role is " + role + ", unless forwards are given)");
  }
  if (const field* ff = top.find("forwards")) {
    if (!is_client) src.fail(ff->key.Mark(), ff->path, "not used when role is " + role + " (forwards open channels: set role to both, e.g. for a reverse forward)");
    if (!ff->value.IsSequence() || ff->value.size() == 0)
      ff->fail("expected a list of {listen: host:port, to: host:port}");
    std::size_t i = 0;
    for (auto it = ff->value.begin(); it != ff->value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      const section f(src, item, item.Mark(), ff->path + "[" + std::to_string(i) + "]", {"listen", "to"});
      if (!item.IsMap()) f.fail("expected a map with listen and to");
      forward fw{read_endpoint(f.require("listen")), read_endpoint(f.require("to"))};
      for (auto& prev : cfg.forwards) {
        if (prev.listen == fw.listen) f.fail("listen " + fw.listen.to_string() + " is used twice");
      }
      cfg.forwards.push_back(std::move(fw));
    }
  }
  if (const field* sf = top.find("server")) {
    if (!is_server) src.fail(sf->key.Mark(), sf->path, "not used when role is " + role + " (set role to server or both, or remove this section)");
    const section s = sub_section(src, *sf, {"connect_timeout", "bind_timeout", "bind_address", "allow", "deny"});
    if (const field* f = s.find("connect_timeout")) cfg.limit.connect_timeout = read_duration(*f);
    if (const field* f = s.find("bind_timeout")) cfg.limit.bind_timeout = read_duration(*f);
    if (const field* f = s.find("bind_address")) {
      cfg.bind_address = read_string(*f);
      if (!is_ip_address(cfg.bind_address) || cfg.bind_address == "0.0.0.0" || cfg.bind_address == "::")
        f->fail("expected an IP address of this host (the peer is told to connect there), got " + quote(cfg.bind_address));
    }
    if (const field* f = s.find("allow")) cfg.allow = read_rules(src, *f);
    if (const field* f = s.find("deny")) cfg.deny = read_rules(src, *f);
  }
  if (const field* lf = top.find("limits")) load_end_limits(src, *lf, cfg.limit);
  if (const field* f = top.find("log_level")) cfg.log = read_log_level(*f);
  if (const field* f = top.find("log_format")) cfg.format = read_log_format(*f);
  if (const field* f = top.find("admin")) cfg.admin = read_admin(src, *f);

  // Routes name tunnels, so they come once every tunnel is known.
  std::vector<std::string> names;
  for (auto& t : cfg.tunnels) names.push_back(t.name);
  const auto known = [&](const std::string& via, bool refuse_ok) {
    return std::find(names.begin(), names.end(), via) != names.end() || via == routing::direct ||
           (refuse_ok && via == routing::refuse);
  };
  const auto name_list = [&] {
    std::string t;
    for (auto& n : names) t += n + ", ";
    return t;
  };
  if (const field* rf = top.find("routes")) {
    if (!is_client) src.fail(rf->key.Mark(), rf->path, "not used when role is " + role + " (routes choose a tunnel for SOCKS requests)");
    if (!rf->value.IsSequence() || rf->value.size() == 0) rf->fail("expected a list of {match: rules, via: tunnel}");
    std::size_t i = 0;
    for (auto it = rf->value.begin(); it != rf->value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      const section r(src, item, item.Mark(), rf->path + "[" + std::to_string(i) + "]", {"match", "via"});
      if (!item.IsMap()) r.fail("expected a map with match and via");
      routing::route route;
      route.match = read_rules(src, r.require("match"));
      if (route.match.empty()) r.fail("match needs at least one rule");
      const field& via = r.require("via");
      route.via = read_string(via);
      if (!known(route.via, false)) via.fail("expected one of " + name_list() + "or direct, got " + quote(route.via));
      cfg.routes.push_back(std::move(route));
    }
  }
  if (const field* f = top.find("default_route")) {
    if (!is_client) src.fail(f->key.Mark(), f->path, "not used when role is " + role);
    cfg.default_route = read_string(*f);
    if (!known(cfg.default_route, true))
      f->fail("expected one of " + name_list() + "direct or refuse, got " + quote(cfg.default_route));
  } else {
    // One tunnel takes everything; with several, what no route names is refused.
    cfg.default_route = names.size() == 1 ? names.front() : std::string(routing::refuse);
  }

  return cfg;
}


}  // namespace config
