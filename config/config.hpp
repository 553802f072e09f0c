// The configuration of one lstp process, read once from YAML into plain
// structs and validated field by field. Both executables use it; conf/ holds
// example files. Errors throw `config::error` whose message names the file,
// the line and what is wrong ("client.yaml:12: socks.listen: ...").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lstp/secrets.hpp"
#include "lstp/tunnel_limits.hpp"
#include "uplink/ways.hpp"
#include "policy/access_policy.hpp"
#include "routing/route_table.hpp"

namespace config {

class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class log_level { debug, info, warn, error };
enum class log_format { plain, json };

// The ways out (endpoints, proxies, carriers) are uplink's vocabulary; the
// configuration reads them.
using uplink::carrier;
using uplink::endpoint;
using uplink::proxy;
using uplink::proxy_kind;
using uplink::way;

// A credential an end (or a middle passing setups on) shows a middle proxy
// (PROTOCOL.md 3.6): distinct from any tunnel's secret.
struct access_credential {
  std::string name;
  lstp::parsed_secret token;      // never logged
  std::string token_source;       // "file ..." or "environment ...", for messages
  std::string token_environment;  // the variable it came from, if one: removed at start
  bool operator==(const access_credential&) const = default;
};

// A credential a middle proxy accepts, for some tunnels or (empty) any.
struct access_grant {
  access_credential credential;
  std::vector<std::string> tunnels;
};

// The admin server (README "Admin server"): absent listen, none.
struct admin_config {
  std::optional<endpoint> listen;
  // The Bearer token actions (and, off loopback, every request) need:
  // its text as the token file holds it. Never logged.
  std::optional<lstp::secret_bytes> token;
  std::string token_source;       // "file ..." or "environment ...", for messages
  std::string token_environment;  // the variable it came from, if one: removed at start
};

constexpr std::chrono::milliseconds as_ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

struct limits {
  std::chrono::milliseconds setup_timeout{10000};      // a hop must deliver its setup within this
  std::chrono::milliseconds waiting_timeout{600000};   // how long an unmatched setup waits at a middle
  std::size_t max_waiting = 1024;                      // unmatched setups a middle keeps
  std::size_t max_waiting_per_source = 64;             // ... of them from one source address
  std::size_t max_connections = 10000;                 // hops (middle) or app connections (end)
  // Connections still in their opening (a hop's carrier handshakes and setup,
  // an app's SOCKS greeting and request). Past it the oldest opener is pushed
  // out, so stalled connections cannot keep real ones out.
  std::size_t max_openings = 1024;
  std::size_t max_openings_per_source = 64;            // middle: past it a source's new connections are refused
  // A tunnel's limits default to the protocol core's (lstp/tunnel_limits.hpp).
  std::size_t high_watermark = lstp::default_tunnel_limits.high_watermark;  // per channel, bytes not yet delivered
  std::size_t low_watermark = lstp::default_tunnel_limits.low_watermark;
  std::size_t pause_slack = lstp::default_tunnel_limits.pause_slack;
  // end: bytes all channels of a tunnel may hold undelivered
  std::size_t max_tunnel_buffer = lstp::default_tunnel_limits.max_tunnel_buffered;
  std::size_t max_channels = lstp::default_tunnel_limits.max_channels;
  std::chrono::milliseconds keepalive = as_ms(lstp::default_tunnel_limits.keepalive);
  std::chrono::milliseconds dead_after = as_ms(lstp::default_tunnel_limits.dead_after);
  std::chrono::milliseconds handshake_timeout = as_ms(lstp::default_tunnel_limits.handshake_timeout);
  // end: resumption (PROTOCOL.md 3.8): a tunnel whose hop is lost keeps its
  // channels and waits this long for a new hop; unacknowledged bytes kept
  bool resumption = lstp::default_tunnel_limits.resumption;
  std::chrono::milliseconds resume_window = as_ms(lstp::default_tunnel_limits.resume_window);
  std::size_t replay_buffer = lstp::default_tunnel_limits.replay_buffer;
  // end: record keys are updated after this many bytes or this long (PROTOCOL.md 3.5).
  bool key_updates = lstp::default_tunnel_limits.key_updates;
  std::size_t key_update_after = static_cast<std::size_t>(lstp::default_tunnel_limits.key_update_bytes);
  std::chrono::milliseconds key_update_interval = as_ms(lstp::default_tunnel_limits.key_update_interval);
  std::chrono::milliseconds connect_timeout{10000};    // server end: connecting to a destination
  std::chrono::milliseconds bind_timeout{120000};      // server end: a BIND waits this long for its peer
  std::chrono::milliseconds socks_timeout{10000};      // client end: greeting and request
  // On SIGTERM or SIGINT: how long what is in flight may take to finish
  // before it is reset.
  std::chrono::milliseconds shutdown_grace{1000};
};

struct middle_config {
  std::string file;  // where it was read from
  std::string name;
  std::vector<endpoint> listen;
  std::string public_address;            // shown in hop maps; empty: the address a hop arrived on
  // Who may use this middle; empty: anyone (a free relay).
  std::vector<access_grant> access;
  std::chrono::seconds access_window{300};  // an ACCESS proof's time may differ from ours by this much
  std::optional<endpoint> next_hop;
  std::optional<way> next_hop_way;   // how to reach next_hop; default tcp
  std::optional<access_credential> next_hop_access;  // shown to next_hop
  std::string websocket_path = "/lstp";  // WebSocket hops are accepted on this path
  std::string tls_certificate;       // PEM files for TLS hops; empty: a self-signed certificate made at start
  std::string tls_private_key;
  limits limit;
  log_level log = log_level::info;
  log_format format = log_format::plain;
  admin_config admin;
};

// A fixed forward: a local listener whose every connection goes to one
// destination behind the tunnel (e.g. X11: listen on 6010, display :10).
struct forward {
  endpoint listen;
  endpoint to;  // as the server end sees it; names are resolved there
};

struct socks_user {
  std::string username;
  std::string password;
};

enum class end_role { client, server, both };

// One tunnel of an end: its secret, its middles and how to reach them.
struct tunnel_config {
  std::string name;
  lstp::parsed_secret secret;  // loaded from secret_file or secret_env; never logged
  std::string secret_source;   // "file /etc/lstp/secret" or "environment LSTP_SECRET", for messages
  std::string secret_environment;  // the variable it came from, if one: removed at start
  std::optional<access_credential> access;  // shown to the middles of this tunnel
  std::vector<endpoint> middles;  // tried in order of measured latency, failing over along the list
  // Ways out, tried in this order; empty: automatic (every carrier, directly
  // and through `proxy`, cheapest first, the last winner first).
  std::vector<way> ways;
  std::optional<config::proxy> ways_proxy;  // tunnel.proxy: for automatic ways
  bool proxy_from_environment = false;  // proxy: env (https_proxy, ALL_PROXY, no_proxy as curl reads them)
  // proxy: pac+http://.../pac+file:... (a PAC file names the proxies per
  // middle), or auto (WPAD through the search domains, then the
  // environment).
  std::optional<uplink::pac_source> pac;
  bool wpad = false;
  // Remembers the winning way per middle. Default: $STATE_DIRECTORY, else
  // $XDG_STATE_HOME/lstp, else ~/.local/state/lstp, then "<end>.ways"
  // ("<end>.<tunnel>.ways" in a list of tunnels); "none" in the config
  // (empty here): keep nothing.
  std::string state_file;
  std::string websocket_path = "/lstp";
  std::chrono::milliseconds retry_interval{1000};    // first reconnect delay, doubled up to retry_max
  std::chrono::milliseconds retry_max{30000};
  std::chrono::milliseconds way_timeout{5000};       // one attempt at one way
  std::chrono::milliseconds reprobe_interval{600000};  // look for a cheaper way this often
};

// The end proxy's settings (the process) and its tunnels.
struct end_config {
  std::string file;
  std::string name;
  end_role role = end_role::client;
  // One `tunnel:`, or each of a `tunnels:` list, in order; never empty once
  // loaded. Routes choose among them by name.
  std::vector<tunnel_config> tunnels;
  // server role: what the far side may reach (deny wins; nothing allowed
  // unless an allow rule says so)
  std::vector<policy::rule> allow;
  std::vector<policy::rule> deny;
  // Where BIND listens (an IP of this host); empty: the address this host
  // uses toward the expected peer, else its first non-loopback IPv4.
  std::string bind_address;
  // client role
  std::vector<endpoint> socks_listen;
  std::vector<forward> forwards;
  std::vector<socks_user> socks_users;
  // Networks SOCKS clients may connect from (empty: any). Required for a
  // listener on a non-loopback address without users.
  std::vector<policy::rule> socks_allow_from;
  // client role: which tunnel each request takes (routing/route_table.hpp)
  std::vector<routing::route> routes;
  std::string default_route;  // a tunnel name, "direct" or "refuse"
  limits limit;
  log_level log = log_level::info;
  log_format format = log_format::plain;
  admin_config admin;
};

// Parse a duration: "250ms", "10s", "2m", "1h" (a bare number means seconds).
std::chrono::milliseconds parse_duration(const std::string& text);
// Parse a size: "65536", "64KiB", "8MiB".
std::size_t parse_size(const std::string& text);
// uplink's parsers (uplink/ways.hpp), throwing config::error.
endpoint parse_endpoint(const std::string& text);
proxy parse_proxy_url(const std::string& text);
way parse_way(const std::string& text);

middle_config load_middle(const std::string& path);
end_config load_end(const std::string& path);

// The environment variables a configuration took secrets from: a process
// removes them once loaded (runtime::forget_environment_variable).
std::vector<std::string> secret_environment_variables(const end_config& cfg);
std::vector<std::string> secret_environment_variables(const middle_config& cfg);

// `--new-secret FILE` / `--new-token FILE`: writes a new generated key
// (lstp/secrets.hpp) to `path` with mode 0600. Never overwrites a file.
// Throws config::error saying why it could not.
void write_new_key_file(const std::string& path, lstp::key_use use);
// The command around it: writes, says what to do with the key (or why it
// failed, prefixed by `program`), and returns the exit code.
int new_key_command(std::string_view program, lstp::key_use use, const std::string& path);

}  // namespace config
