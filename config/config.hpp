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

namespace config {

class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "host:port" or "[v6]:port". Host may be a name. In YAML, quote IPv6
// endpoints: an unquoted [ starts a list.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const endpoint&) const = default;
};

enum class log_level { debug, info, warn, error };

struct limits {
  std::chrono::milliseconds setup_timeout{10000};      // a hop must deliver its setup within this
  std::chrono::milliseconds waiting_timeout{600000};   // how long an unmatched setup waits at a middle
  std::size_t max_waiting = 1024;                      // unmatched setups a middle keeps
  std::size_t max_connections = 10000;                 // hops (middle) or app connections (end)
  std::size_t high_watermark = 256 * 1024;             // per channel, bytes not yet delivered
  std::size_t low_watermark = 128 * 1024;
  std::size_t pause_slack = 64 * 1024 * 1024;
  std::size_t max_channels = 65536;
  std::chrono::milliseconds keepalive{20000};
  std::chrono::milliseconds dead_after{60000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds connect_timeout{10000};    // server end: connecting to a destination
  std::chrono::milliseconds socks_timeout{10000};      // client end: greeting and request
};

struct middle_config {
  std::string file;  // where it was read from
  std::string name;
  std::vector<endpoint> listen;
  std::string public_address;            // shown in hop maps; empty: the address a hop arrived on
  std::optional<endpoint> next_hop;
  limits limit;
  log_level log = log_level::info;
};

struct socks_user {
  std::string username;
  std::string password;
};

enum class end_role { client, server, both };

struct end_config {
  std::string file;
  std::string name;
  end_role role = end_role::client;
  // tunnel
  std::string tunnel_name;
  std::string secret;  // loaded from secret_file or secret_env; never logged
  std::string secret_source;  // "file /etc/lstp/secret" or "environment LSTP_SECRET", for messages
  endpoint middle;
  std::chrono::milliseconds retry_interval{1000};
  // client role
  std::vector<endpoint> socks_listen;
  std::vector<socks_user> socks_users;
  limits limit;
  log_level log = log_level::info;
};

// Parse a duration: "250ms", "10s", "2m", "1h" (a bare number means seconds).
std::chrono::milliseconds parse_duration(const std::string& text);
// Parse a size: "65536", "64KiB", "8MiB".
std::size_t parse_size(const std::string& text);
endpoint parse_endpoint(const std::string& text);

middle_config load_middle(const std::string& path);
end_config load_end(const std::string& path);

}  // namespace config
