// libFuzzer target: our configuration checks, past the YAML parser. The
// input is read as a recipe for a YAML tree (maps, lists and scalars whose
// keys and values come mostly from the configuration's own vocabulary), so
// nearly every input reaches the checks instead of failing at the syntax.
// Every tree either loads or throws config::error; nothing else may escape
// (a std::out_of_range, a YAML::Exception or a crash is a bug).
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config/from_yaml.hpp"

namespace {

const std::vector<std::string> keys = {
    "name", "role", "tunnel", "tunnels", "routes", "default_route", "socks", "forwards", "server", "limits",
    "log_level", "listen", "public_address", "access", "access_window", "next_hop", "next_hop_way",
    "next_hop_access", "websocket_path", "tls_certificate", "tls_private_key", "secret_file", "secret_env",
    "middle", "middles", "ways", "proxy", "state_file", "retry_interval", "retry_max", "way_timeout",
    "reprobe_interval", "allow", "deny", "bind_address", "users", "username", "password", "timeout", "to",
    "match", "via", "token_file", "token_env", "tunnels", "max_channels", "high_watermark", "low_watermark",
    "pause_slack", "max_tunnel_buffer", "keepalive", "dead_after", "handshake_timeout", "connect_timeout",
    "bind_timeout", "setup_timeout", "waiting_timeout", "max_waiting", "max_waiting_per_source",
    "max_connections", "max_openings", "max_openings_per_source", "shutdown_grace", "socks_timeout"};

const std::vector<std::string> values = {
    "", "0", "1", "65535", "65536", "-1", "client", "server", "both", "debug", "info", "warn", "error", "tcp",
    "tls", "ws", "wss", "tcp via socks5://127.0.0.1:1080", "ws via http://u:p@proxy:3128", "env", "auto",
    "127.0.0.1:1080", "[::1]:443", "m.example:443", "host:0", "host:99999", ":80", "10.0.0.0/8", "*",
    "*.corp.example:443", "::/0", "127.0.0.1/33", "250ms", "10s", "2m", "1h", "0s", "1x", "64KiB", "8MiB",
    "99999999999999999999", "/dev/null", "/nonexistent", "/tmp", "LSTP_SECRET", "direct", "refuse", "none",
    "/lstp", "lstp", "a", std::string(300, 'x'), "with space", "\x01", "caf\xc3\xa9"};

class recipe {
 public:
  recipe(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  std::uint8_t byte() { return empty() ? 0 : *p_++; }
  std::string scalar() {
    const auto b = byte();
    if (b < 200) return values[b % values.size()];
    // Raw bytes, up to 32 of them.
    std::string s;
    for (auto n = byte() % 32; n > 0 && !empty(); --n) s.push_back(static_cast<char>(byte()));
    return s;
  }
  YAML::Node node(int depth) {
    const auto kind = depth >= 5 ? 0 : byte() % 4;
    if (kind == 0) return YAML::Node(scalar());
    if (kind == 1) return YAML::Node();  // null
    if (kind == 2) {
      YAML::Node list(YAML::NodeType::Sequence);
      for (auto n = byte() % 4; n > 0 && !empty(); --n) list.push_back(node(depth + 1));
      return list;
    }
    YAML::Node map(YAML::NodeType::Map);
    for (auto n = byte() % 6; n > 0 && !empty(); --n) {
      const auto k = byte();
      map[k < 240 ? keys[k % keys.size()] : scalar()] = node(depth + 1);
    }
    return map;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  recipe r(data, size);
  const bool middle = r.byte() & 1;
  YAML::Node root(YAML::NodeType::Map);
  for (auto n = r.byte() % 10; n > 0 && !r.empty(); --n) {
    const auto k = r.byte();
    root[keys[k % keys.size()]] = r.node(1);
  }
  try {
    if (middle)
      (void)config::middle_from_yaml(root, "/tmp/fuzz/config.yaml");
    else
      (void)config::end_from_yaml(root, "/tmp/fuzz/config.yaml");
  } catch (const config::error&) {
  }
  return 0;
}
