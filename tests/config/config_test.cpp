// Tests for config: YAML files are written to a fresh temporary directory,
// loaded, and either the resulting structs or the exact "file:line: key: ..."
// error messages are checked.
#include "config/config.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

constexpr const char* good_secret = "0123456789abcdef0123456789abcdef";

// A directory of its own per test, removed afterwards.
// A loaded secret or token, as text (a passphrase's bytes).
std::string text_of(const lstp::parsed_secret& s) { return std::string(s.bytes.begin(), s.bytes.end()); }

class temp_dir {
 public:
  temp_dir() {
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    for (;;) {
      dir_ = fs::temp_directory_path() /
             ("lstp-config-test-" + std::to_string(rd()) + "-" + std::to_string(counter++));
      if (fs::create_directory(dir_)) break;
    }
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  // Writes `content` to `name` (relative to the directory) and returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    {
      std::ofstream out(p, std::ios::binary);
      out << content;
    }
    // As secret files must be: readable by their owner only.
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
    return p.string();
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

template <typename F>
std::string error_from(F&& f) {
  try {
    f();
  } catch (const config::error& e) {
    return e.what();
  }
  FAIL("expected a config::error");
  return {};
}

// A valid client end in eight lines; tests append from line 9 on.
std::string client_yaml(const std::string& tail = "") {
  return "name: b-laptop\n"            // 1
         "role: client\n"              // 2
         "tunnel:\n"                   // 3
         "  name: quickstart\n"        // 4
         "  secret_file: secret.txt\n" // 5
         "  middle: 127.0.0.1:7000\n"  // 6
         "socks:\n"                    // 7
         "  listen: 127.0.0.1:1080\n"  // 8
         + tail;
}

// Loads client_yaml(tail) with a good secret next to it; returns the error.
std::string client_error(const temp_dir& d, const std::string& tail) {
  d.write("secret.txt", good_secret);
  const std::string file = d.write("client.yaml", client_yaml(tail));
  return error_from([&] { config::load_end(file); });
}

// A valid middle in two lines; tests append from line 3 on.
std::string middle_error(const temp_dir& d, const std::string& tail) {
  const std::string file = d.write("middle.yaml", "name: m1\nlisten: 127.0.0.1:7000\n" + tail);
  return error_from([&] { config::load_middle(file); });
}

}  // namespace

// ---------------------------------------------------------------- parsers

TEST_CASE("parse_duration accepts ms, s, m, h and bare seconds", "[config]") {
  CHECK(config::parse_duration("250ms") == 250ms);
  CHECK(config::parse_duration("10s") == 10s);
  CHECK(config::parse_duration("2m") == 2min);
  CHECK(config::parse_duration("1h") == 1h);
  CHECK(config::parse_duration("7") == 7s);
  CHECK(config::parse_duration("0") == 0ms);
}

TEST_CASE("parse_duration rejects anything else", "[config]") {
  for (const char* bad : {"ten", "", "10 s", "1.5s", "-1s", "10d", "s", "10S", " 10s", "10sec"}) {
    INFO(bad);
    CHECK_THROWS_AS(config::parse_duration(bad), config::error);
  }
  CHECK_THROWS_WITH(config::parse_duration("ten"), "expected a duration like 10s or 250ms, got \"ten\"");
  CHECK_THROWS_WITH(config::parse_duration("99999999999999999999h"), Contains("too long"));
}

TEST_CASE("parse_size accepts bytes, KiB, MiB and GiB", "[config]") {
  CHECK(config::parse_size("65536") == 65536);
  CHECK(config::parse_size("64KiB") == 64 * 1024);
  CHECK(config::parse_size("8MiB") == 8 * 1024 * 1024);
  CHECK(config::parse_size("1GiB") == 1024ULL * 1024 * 1024);
  CHECK(config::parse_size("0") == 0);
}

TEST_CASE("parse_size rejects other units and junk", "[config]") {
  for (const char* bad : {"64KB", "8MB", "1G", "64kib", "", "KiB", "-5", "1.5MiB", "64 KiB", "12B"}) {
    INFO(bad);
    CHECK_THROWS_AS(config::parse_size(bad), config::error);
  }
  CHECK_THROWS_WITH(config::parse_size("64KB"), "expected a size like 65536, 64KiB or 8MiB, got \"64KB\"");
  CHECK_THROWS_WITH(config::parse_size("99999999999999999999GiB"), Contains("too large"));
}

TEST_CASE("parse_endpoint reads host:port and [v6]:port", "[config]") {
  CHECK(config::parse_endpoint("127.0.0.1:7000") == config::endpoint{"127.0.0.1", 7000});
  CHECK(config::parse_endpoint("example.org:443") == config::endpoint{"example.org", 443});
  CHECK(config::parse_endpoint("[::1]:1080") == config::endpoint{"::1", 1080});
  CHECK(config::parse_endpoint("h:65535").port == 65535);
  CHECK(config::parse_endpoint("h:1").port == 1);
}

TEST_CASE("parse_endpoint rejects malformed endpoints", "[config]") {
  for (const char* bad : {"localhost", ":7000", "h:0", "h:65536", "h:", "h:port", "::1:80", "[::1]", "[::1]80",
                          "[]:80", "", "a b:80", "h:-1", "h:99999999999"}) {
    INFO(bad);
    CHECK_THROWS_AS(config::parse_endpoint(bad), config::error);
  }
  CHECK_THROWS_WITH(config::parse_endpoint("localhost"), "expected host:port, got \"localhost\"");
  CHECK_THROWS_WITH(config::parse_endpoint("::1:80"), Contains("needs brackets"));
}

TEST_CASE("endpoint::to_string brackets IPv6 hosts", "[config]") {
  CHECK(config::endpoint{"127.0.0.1", 7000}.to_string() == "127.0.0.1:7000");
  CHECK(config::endpoint{"::1", 1080}.to_string() == "[::1]:1080");
  CHECK(config::parse_endpoint("[fe80::1]:9").to_string() == "[fe80::1]:9");
}

// ---------------------------------------------------------------- middle

TEST_CASE("load_middle reads every key", "[config]") {
  temp_dir d;
  const std::string file = d.write("m1.yaml", R"(# a middle proxy
name: m1
listen: 127.0.0.1:7000
public_address: 198.18.0.11:443
next_hop: "[::1]:7001"
limits:
  setup_timeout: 5s
  waiting_timeout: 10m
  max_waiting: 100
  max_waiting_per_source: 7
  max_connections: 200
  max_openings: 300
  max_openings_per_source: 9
log_level: debug
)");
  const auto c = config::load_middle(file);
  CHECK(c.file == file);
  CHECK(c.name == "m1");
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0] == config::endpoint{"127.0.0.1", 7000});
  CHECK(c.public_address == "198.18.0.11:443");
  REQUIRE(c.next_hop);
  CHECK(*c.next_hop == config::endpoint{"::1", 7001});
  CHECK(c.limit.setup_timeout == 5s);
  CHECK(c.limit.waiting_timeout == 10min);
  CHECK(c.limit.max_waiting == 100);
  CHECK(c.limit.max_waiting_per_source == 7);
  CHECK(c.limit.max_connections == 200);
  CHECK(c.limit.max_openings == 300);
  CHECK(c.limit.max_openings_per_source == 9);
  CHECK(c.log == config::log_level::debug);
}

TEST_CASE("load_middle fills defaults for a minimal file", "[config]") {
  temp_dir d;
  const std::string file = d.write("m.yaml", "name: m_2.x-y\nlisten: 0.0.0.0:7000\n");
  const auto c = config::load_middle(file);
  CHECK(c.name == "m_2.x-y");
  CHECK(c.public_address.empty());
  CHECK_FALSE(c.next_hop);
  const config::limits defaults;
  CHECK(c.limit.setup_timeout == defaults.setup_timeout);
  CHECK(c.limit.waiting_timeout == defaults.waiting_timeout);
  CHECK(c.limit.max_waiting == defaults.max_waiting);
  CHECK(c.limit.max_waiting_per_source == defaults.max_waiting_per_source);
  CHECK(c.limit.max_connections == defaults.max_connections);
  CHECK(c.limit.max_openings == 1024);
  CHECK(c.limit.max_openings_per_source == 64);
  CHECK(c.log == config::log_level::info);
}

TEST_CASE("listen may be a list of endpoints", "[config]") {
  temp_dir d;
  const std::string file = d.write("m.yaml", R"(name: m1
listen:
  - 127.0.0.1:7000
  - "[::1]:7000"
limits: # everything commented out
  # max_waiting: 5
)");
  const auto c = config::load_middle(file);
  REQUIRE(c.listen.size() == 2);
  CHECK(c.listen[0] == config::endpoint{"127.0.0.1", 7000});
  CHECK(c.listen[1] == config::endpoint{"::1", 7000});

  const std::string flow = d.write("flow.yaml", "name: m1\nlisten: [a:1, b:2]\n");
  CHECK(config::load_middle(flow).listen.size() == 2);
}

TEST_CASE("middle errors carry file, line and key path", "[config]") {
  temp_dir d;
  SECTION("bad endpoint in a list names the item") {
    const auto file = d.write("m.yaml", "name: m1\nlisten:\n  - 127.0.0.1:7000\n  - localhost\n");
    CHECK(error_from([&] { config::load_middle(file); }) ==
          file + ":4: listen[1]: expected host:port, got \"localhost\"");
  }
  SECTION("empty listen list") {
    CHECK_THAT(error_from([&] {
                 config::load_middle(d.write("m.yaml", "name: m1\nlisten: []\n"));
               }),
               Contains("m.yaml:2: listen: expected at least one host:port"));
  }
  SECTION("listen given as a map") {
    CHECK_THAT(error_from([&] { config::load_middle(d.write("m.yaml", "name: m1\nlisten:\n  a: 1\n")); }),
               Contains("m.yaml:2: listen: expected host:port or a list of them, got a map"));
  }
  SECTION("bad name") {
    CHECK_THAT(error_from([&] { config::load_middle(d.write("m.yaml", "name: m 1\nlisten: h:1\n")); }),
               Contains("m.yaml:1: name: expected 1 to 64 characters"));
    CHECK_THROWS_AS(config::load_middle(d.write("m.yaml", "name: " + std::string(65, 'a') + "\nlisten: h:1\n")),
                    config::error);
    CHECK(config::load_middle(d.write("m.yaml", "name: " + std::string(64, 'a') + "\nlisten: h:1\n")).name.size() ==
          64);
  }
  SECTION("missing name at the top level") {
    CHECK_THAT(error_from([&] { config::load_middle(d.write("m.yaml", "# hi\nlisten: h:1\n")); }),
               Contains("m.yaml:2: missing key \"name\""));
  }
  SECTION("bad next_hop") {
    CHECK_THAT(middle_error(d, "next_hop: h:0\n"),
               Contains("middle.yaml:3: next_hop: expected a port from 1 to 65535, got \"h:0\""));
  }
  SECTION("public_address too long") {
    CHECK_THAT(middle_error(d, "public_address: " + std::string(256, 'x') + "\n"),
               Contains("middle.yaml:3: public_address: too long"));
  }
  SECTION("bad log level") {
    CHECK_THAT(middle_error(d, "log_level: verbose\n"),
               Contains("middle.yaml:3: log_level: expected one of debug, info, warn, error, got \"verbose\""));
  }
  SECTION("unknown key in limits") {
    CHECK_THAT(middle_error(d, "limits:\n  max_wating: 5\n"),
               Contains("middle.yaml:4: limits.max_wating: unknown key (expected one of: setup_timeout, "
                        "waiting_timeout, max_waiting, max_waiting_per_source, max_connections, max_openings, "
                        "max_openings_per_source, shutdown_grace)"));
  }
  SECTION("end-only limit in a middle file") {
    CHECK_THAT(middle_error(d, "limits:\n  high_watermark: 1MiB\n"),
               Contains("middle.yaml:4: limits.high_watermark: unknown key"));
  }
  SECTION("bad duration") {
    CHECK_THAT(middle_error(d, "limits:\n  setup_timeout: ten\n"),
               Contains("middle.yaml:4: limits.setup_timeout: expected a duration like 10s or 250ms, got \"ten\""));
  }
  SECTION("zero duration") {
    CHECK_THAT(middle_error(d, "limits:\n  waiting_timeout: 0s\n"),
               Contains("middle.yaml:4: limits.waiting_timeout: must be greater than 0"));
  }
  SECTION("integer given as a string") {
    CHECK_THAT(middle_error(d, "limits:\n  max_waiting: \"1024\"\n"),
               Contains("middle.yaml:4: limits.max_waiting: expected a positive integer, got the string \"1024\""));
  }
  SECTION("negative integer") {
    CHECK_THAT(middle_error(d, "limits:\n  max_connections: -5\n"),
               Contains("middle.yaml:4: limits.max_connections: expected a positive integer, got \"-5\""));
  }
  SECTION("zero integer") {
    CHECK_THAT(middle_error(d, "limits:\n  max_waiting: 0\n"),
               Contains("middle.yaml:4: limits.max_waiting: must be greater than 0"));
  }
  SECTION("non-integer number") {
    CHECK_THAT(middle_error(d, "limits:\n  max_waiting: 1e3\n"),
               Contains("middle.yaml:4: limits.max_waiting: expected a positive integer"));
  }
  SECTION("limits is not a map") {
    CHECK_THAT(middle_error(d, "limits: 5\n"), Contains("middle.yaml:3: limits: expected a map of settings"));
  }
  SECTION("duplicate key") {
    CHECK_THAT(middle_error(d, "log_level: info\nname: m2\n"),
               Contains("middle.yaml:4: name: duplicate key (first given on line 1)"));
  }
  SECTION("duplicate key inside a section") {
    CHECK_THAT(middle_error(d, "limits:\n  max_waiting: 1\n  max_waiting: 2\n"),
               Contains("middle.yaml:5: limits.max_waiting: duplicate key (first given on line 4)"));
  }
}

// ---------------------------------------------------------------- end

TEST_CASE("load_end reads every key", "[config]") {
  temp_dir d;
  d.write("conf/secret.txt", std::string(good_secret) + "  \n\n");
  const std::string file = d.write("conf/both.yaml", R"(name: b-laptop
role: both
tunnel:
  name: quickstart
  secret_file: secret.txt
  middle: 127.0.0.1:7000
  retry_interval: 250ms
socks:
  listen:
    - 127.0.0.1:1080
    - "[::1]:1080"
  users:
    - username: alice
      password: wonderland
    - username: bob
      password: "12345"
  timeout: 3s
server:
  connect_timeout: 4s
limits:
  high_watermark: 1MiB
  low_watermark: 512KiB
  pause_slack: 16MiB
  max_channels: 100
  max_connections: 50
  max_openings: 20
  max_tunnel_buffer: 64MiB
  keepalive: 5s
  dead_after: 15s
  handshake_timeout: 2s
log_level: warn
)");
  const auto c = config::load_end(file);
  CHECK(c.file == file);
  CHECK(c.name == "b-laptop");
  CHECK(c.role == config::end_role::both);
  CHECK(c.tunnels[0].name == "quickstart");
  CHECK(text_of(c.tunnels[0].secret) == good_secret);  // trailing whitespace stripped
  CHECK(c.tunnels[0].secret_source == "file " + d.path("conf/secret.txt"));
  CHECK(c.tunnels[0].middles.front() == config::endpoint{"127.0.0.1", 7000});
  CHECK(c.tunnels[0].retry_interval == 250ms);
  REQUIRE(c.socks_listen.size() == 2);
  CHECK(c.socks_listen[1] == config::endpoint{"::1", 1080});
  REQUIRE(c.socks_users.size() == 2);
  CHECK(c.socks_users[0].username == "alice");
  CHECK(c.socks_users[0].password == "wonderland");
  CHECK(c.socks_users[1].username == "bob");
  CHECK(c.socks_users[1].password == "12345");
  CHECK(c.limit.socks_timeout == 3s);
  CHECK(c.limit.connect_timeout == 4s);
  CHECK(c.limit.max_openings == 20);
  CHECK(c.limit.max_tunnel_buffer == 64 * 1024 * 1024);
  CHECK(c.limit.high_watermark == 1024 * 1024);
  CHECK(c.limit.low_watermark == 512 * 1024);
  CHECK(c.limit.pause_slack == 16 * 1024 * 1024);
  CHECK(c.limit.max_channels == 100);
  CHECK(c.limit.max_connections == 50);
  CHECK(c.limit.keepalive == 5s);
  CHECK(c.limit.dead_after == 15s);
  CHECK(c.limit.handshake_timeout == 2s);
  CHECK(c.log == config::log_level::warn);
}

TEST_CASE("load_end: minimal client with defaults and a relative secret_file", "[config]") {
  temp_dir d;
  d.write("secret.txt", std::string(good_secret) + "\n");
  const std::string file = d.write("client.yaml", client_yaml());
  const auto c = config::load_end(file);
  CHECK(c.role == config::end_role::client);
  CHECK(text_of(c.tunnels[0].secret) == good_secret);
  CHECK(c.tunnels[0].secret_source == "file " + d.path("secret.txt"));
  REQUIRE(c.socks_listen.size() == 1);
  CHECK(c.socks_listen[0] == config::endpoint{"127.0.0.1", 1080});
  CHECK(c.socks_users.empty());
  CHECK(c.tunnels[0].retry_interval == 1s);
  const config::limits defaults;
  CHECK(c.limit.high_watermark == defaults.high_watermark);
  CHECK(c.limit.low_watermark == defaults.low_watermark);
  CHECK(c.limit.keepalive == defaults.keepalive);
  CHECK(c.limit.dead_after == defaults.dead_after);
  CHECK(c.limit.socks_timeout == defaults.socks_timeout);
  CHECK(c.log == config::log_level::info);
}

TEST_CASE("load_end: minimal server with secret_env", "[config]") {
  temp_dir d;
  ::setenv("LSTP_CONFIG_TEST_SECRET", good_secret, 1);
  const std::string file = d.write("server.yaml", R"(name: a-server
role: server
tunnel:
  name: quickstart
  secret_env: LSTP_CONFIG_TEST_SECRET
  middle: "[::1]:7000"
)");
  const auto c = config::load_end(file);
  CHECK(c.role == config::end_role::server);
  CHECK(text_of(c.tunnels[0].secret) == good_secret);
  CHECK(c.tunnels[0].secret_source == "environment LSTP_CONFIG_TEST_SECRET");
  CHECK(c.tunnels[0].middles.front() == config::endpoint{"::1", 7000});
  CHECK(c.socks_listen.empty());
  CHECK(c.limit.connect_timeout == config::limits{}.connect_timeout);
  ::unsetenv("LSTP_CONFIG_TEST_SECRET");
}

TEST_CASE("key files passed by systemd's LoadCredential= are named by ${CREDENTIALS_DIRECTORY}", "[config]") {
  temp_dir d;
  d.write("keys_tunnel.secret", std::string(good_secret) + "\n");
  const std::string yaml = R"(name: a-server
role: server
tunnel:
  name: quickstart
  secret_file: ${CREDENTIALS_DIRECTORY}/keys_tunnel.secret
  middle: "127.0.0.1:7000"
admin:
  listen: 127.0.0.1:9000
)";
  const std::string file = d.write("server.yaml", yaml);
  ::unsetenv("CREDENTIALS_DIRECTORY");
  CHECK_THROWS_WITH(config::load_end(file), Contains("CREDENTIALS_DIRECTORY is not set"));
  ::setenv("CREDENTIALS_DIRECTORY", d.path("").c_str(), 1);
  const auto c = config::load_end(file);
  CHECK(text_of(c.tunnels[0].secret) == good_secret);
  CHECK(c.tunnels[0].secret_source == "file " + d.path("") + "/keys_tunnel.secret");
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

TEST_CASE("admin: listen - a token - and no listener off loopback without one", "[config]") {
  temp_dir d;
  d.write("secret.txt", std::string(good_secret) + "\n");
  const auto token = lstp::new_key_text(lstp::key_use::access_token);
  d.write("admin.token", token + "\n");
  const auto with_admin = [&](const std::string& admin) {
    return d.write("server.yaml", "name: s\nrole: server\nlog_format: json\ntunnel:\n  name: t\n  secret_file: "
                                  "secret.txt\n  middle: 127.0.0.1:7000\n" + admin);
  };
  auto c = config::load_end(with_admin("admin:\n  listen: 127.0.0.1:9000\n"));
  REQUIRE(c.admin.listen);
  CHECK(*c.admin.listen == config::endpoint{"127.0.0.1", 9000});
  CHECK_FALSE(c.admin.token);
  CHECK(c.format == config::log_format::json);
  c = config::load_end(with_admin("admin:\n  listen: 0.0.0.0:9000\n  token_file: admin.token\n"));
  REQUIRE(c.admin.token);
  CHECK(std::string(c.admin.token->begin(), c.admin.token->end()) == token);  // the text a client sends as its Bearer token
  CHECK_THROWS_WITH(config::load_end(with_admin("admin:\n  listen: 0.0.0.0:9000\n")),
                    Contains("is not a loopback address: an admin server reachable from elsewhere needs token_file"));
  CHECK_THROWS_WITH(config::load_end(with_admin("admin:\n  token_file: admin.token\n")), Contains("listen"));
  CHECK_FALSE(config::load_end(with_admin("")).admin.listen);
}

TEST_CASE("end errors carry file, line and key path", "[config]") {
  temp_dir d;
  d.write("secret.txt", good_secret);

  SECTION("unknown key lists the expected ones") {
    const auto file = d.write("x/client.yaml", R"(name: b
role: client
tunnel:
  name: t
  secrt: secret.txt
)");
    CHECK(error_from([&] { config::load_end(file); }) ==
          file + ":5: tunnel.secrt: unknown key (expected one of: name, secret_file, secret_env, access, middle, "
                 "ways, proxy, state_file, websocket_path, retry_interval, retry_max, way_timeout, "
                 "reprobe_interval)");
  }
  SECTION("missing required key reports the parent's line") {
    const auto file = d.write("client.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_file: secret.txt
socks:
  listen: h:1
)");
    CHECK(error_from([&] { config::load_end(file); }) == file + ":3: tunnel: missing key \"middle\"");
  }
  SECTION("missing tunnel") {
    CHECK_THAT(error_from([&] { config::load_end(d.write("c.yaml", "name: b\nrole: client\n")); }),
               Contains("c.yaml:1: missing key \"tunnel\""));
  }
  SECTION("socks.listen that is not host:port") {
    const auto file = d.write("client.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_file: secret.txt
  middle: 127.0.0.1:7000
socks:
  listen: localhost
)");
    CHECK(error_from([&] { config::load_end(file); }) ==
          file + ":8: socks.listen: expected host:port, got \"localhost\"");
  }
  SECTION("bad role") {
    CHECK_THAT(error_from([&] { config::load_end(d.write("c.yaml", "name: b\nrole: clients\n")); }),
               Contains("c.yaml:2: role: expected one of client, server, both, got \"clients\""));
  }
  SECTION("socks section with role server") {
    const auto file = d.write("s.yaml", R"(name: b
role: server
tunnel:
  name: t
  secret_file: secret.txt
  middle: 127.0.0.1:7000
socks:
  listen: 127.0.0.1:1080
)");
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":7: socks: not used when role is server"));
  }
  SECTION("server section with role client") {
    CHECK_THAT(client_error(d, "server:\n  connect_timeout: 5s\n"),
               Contains("client.yaml:9: server: not used when role is client"));
  }
  SECTION("no socks section with role client") {
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_file: secret.txt
  middle: 127.0.0.1:7000
)");
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":1: missing key \"socks\" (required when role is client, unless forwards are given)"));
  }
  SECTION("socks without listen") {
    CHECK_THAT(error_from([&] {
                 config::load_end(d.write("c.yaml", "name: b\nrole: both\ntunnel:\n  name: t\n  secret_file: "
                                                    "secret.txt\n  middle: h:1\nsocks:\n  timeout: 5s\n"));
               }),
               Contains("c.yaml:7: socks: missing key \"listen\""));
  }
  SECTION("both secret_file and secret_env") {
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_file: secret.txt
  secret_env: HOME
  middle: h:1
)");
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":3: tunnel: give only one of secret_file and secret_env"));
  }
  SECTION("neither secret_file nor secret_env") {
    CHECK_THAT(error_from([&] {
                 config::load_end(d.write("c.yaml", "name: b\nrole: client\ntunnel:\n  name: t\n  middle: h:1\n"));
               }),
               Contains("c.yaml:3: tunnel: missing key \"secret_file\" or \"secret_env\""));
  }
  SECTION("secret file that does not exist") {
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_file: nope.txt
  middle: h:1
)");
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":5: tunnel.secret_file: cannot read \"" + d.path("nope.txt") + "\""));
  }
  SECTION("short secret file: the message gives the length, never the secret") {
    d.write("short.txt", "hunter2-secret\n");
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_file: short.txt
  middle: h:1
)");
    const std::string msg = error_from([&] { config::load_end(file); });
    CHECK(msg == file + ":5: tunnel.secret_file: the secret is 14 bytes; use at least 16, or better a generated "
                        "key (endproxy --new-secret FILE)");
    CHECK_THAT(msg, !Contains("hunter2"));
  }
  const auto tunnel_with = [&](const std::string& secret_file, const std::string& extra = "") {
    return d.write("k.yaml", "name: b\nrole: server\ntunnel:\n  name: t\n  secret_file: " + secret_file +
                                 "\n  middle: h:1\n" + extra);
  };
  SECTION("a secret file others may read is refused, naming its mode") {
    const auto secret = d.write("open.secret", "a long enough passphrase here\n");
    fs::permissions(secret, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
    const std::string msg = error_from([&] { config::load_end(tunnel_with("open.secret")); });
    CHECK_THAT(msg, Contains("tunnel.secret_file: \"" + secret + "\" may be read by group or others (mode 0644): run "
                             "chmod 600 " + secret));
    fs::permissions(secret, fs::perms::others_read, fs::perm_options::remove);
    CHECK_THAT(error_from([&] { config::load_end(tunnel_with("open.secret")); }), Contains("(mode 0640)"));
    fs::permissions(secret, fs::perms::group_read, fs::perm_options::remove);
    CHECK(config::load_end(tunnel_with("open.secret")).tunnels[0].secret.bytes.size() == 29);
  }
  SECTION("a generated key is taken as a key; one cut short, mistyped or made for tokens is refused") {
    const auto key = lstp::new_key_text(lstp::key_use::tunnel_secret);
    REQUIRE(key.size() == std::string("lstp-secret-").size() + 48);
    d.write("good.secret", key + "\n");
    const auto cfg = config::load_end(tunnel_with("good.secret"));
    CHECK(cfg.tunnels[0].secret.is_key);
    CHECK(cfg.tunnels[0].secret.bytes.size() == lstp::key_size);
    d.write("cut.secret", key.substr(0, key.size() - 1));
    CHECK_THAT(error_from([&] { config::load_end(tunnel_with("cut.secret")); }),
               Contains("unusable: it starts like a generated key (lstp-secret-...) but has 47 characters after the "
                        "prefix, not 48: was it cut short or mistyped?"));
    auto typo = key;
    typo[20] = typo[20] == 'A' ? 'B' : 'A';
    d.write("typo.secret", typo);
    CHECK_THAT(error_from([&] { config::load_end(tunnel_with("typo.secret")); }),
               Contains("its checksum does not match"));
    d.write("token.secret", lstp::new_key_text(lstp::key_use::access_token));
    CHECK_THAT(error_from([&] { config::load_end(tunnel_with("token.secret")); }),
               Contains("this is an access token (made by middleproxy --new-token), not a tunnel secret"));
    // No message holds any of the key's characters after the prefix.
    CHECK_THAT(error_from([&] { config::load_end(tunnel_with("typo.secret")); }), !Contains(typo.substr(12, 8)));
  }
  SECTION("a SOCKS listener off loopback needs users or allow_from") {
    d.write("s.secret", "a long enough passphrase here\n");
    const auto client = [&](const std::string& socks) {
      return d.write("sx.yaml", "name: b\nrole: client\ntunnel:\n  name: t\n  secret_file: s.secret\n  middle: h:1\n"
                                "socks:\n" + socks);
    };
    CHECK_THAT(error_from([&] { config::load_end(client("  listen: [127.0.0.1:1080, 0.0.0.0:1080]\n")); }),
               Contains(":8: socks.listen: 0.0.0.0:1080 is not a loopback address: anyone who reaches it could use "
                        "the tunnel; add socks.users (a login) or socks.allow_from"));
    CHECK_THAT(error_from([&] { config::load_end(client("  listen: \"[::]:1080\"\n")); }),
               Contains("is not a loopback address"));
    CHECK_THAT(error_from([&] { config::load_end(client("  listen: lan-host:1080\n")); }),
               Contains("is not a loopback address"));
    CHECK(config::load_end(client("  listen: [127.0.0.2:1080, \"[::1]:1080\", localhost:1081]\n")).socks_listen.size() == 3);
    auto with_users = config::load_end(client("  listen: 0.0.0.0:1080\n  users: [{username: a, password: b}]\n"));
    CHECK(with_users.socks_allow_from.empty());
    auto with_nets = config::load_end(client("  listen: 0.0.0.0:1080\n  allow_from: [192.168.1.0/24, \"fd00::/8\"]\n"));
    REQUIRE(with_nets.socks_allow_from.size() == 2);
    CHECK(with_nets.socks_allow_from[0].text == "192.168.1.0/24");
    CHECK_THAT(error_from([&] { config::load_end(client("  listen: 0.0.0.0:1080\n  allow_from: [\"*.corp\"]\n")); }),
               Contains("socks.allow_from: expected networks (like 192.168.1.0/24 or 10.0.0.7), got \"*.corp\""));
    CHECK_THAT(error_from([&] { config::load_end(client("  listen: 0.0.0.0:1080\n  allow_from: [10.0.0.0/8:22]\n")); }),
               Contains("expected networks"));
  }
  SECTION("an access token equal to the tunnel's secret is refused") {
    d.write("same.secret", "the very same words for both\n");
    d.write("same.token", "the very same words for both\n");
    CHECK_THAT(error_from([&] {
                 config::load_end(tunnel_with("same.secret", "  access: {name: alice, token_file: same.token}\n"));
               }),
               Contains("tunnel.access: the access token equals the tunnel's secret"));
  }
  SECTION("short secret from the environment") {
    ::setenv("LSTP_CONFIG_TEST_SHORT", "tiny-secret", 1);
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_env: LSTP_CONFIG_TEST_SHORT
  middle: h:1
)");
    const std::string msg = error_from([&] { config::load_end(file); });
    CHECK_THAT(msg, Contains(file + ":5: tunnel.secret_env: the secret is 11 bytes; use at least 16"));
    CHECK_THAT(msg, !Contains("tiny-secret"));
    ::unsetenv("LSTP_CONFIG_TEST_SHORT");
  }
  SECTION("unset and empty secret_env") {
    ::unsetenv("LSTP_CONFIG_TEST_UNSET");
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  secret_env: LSTP_CONFIG_TEST_UNSET
  middle: h:1
)");
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":5: tunnel.secret_env: the environment variable LSTP_CONFIG_TEST_UNSET is not set"));
    ::setenv("LSTP_CONFIG_TEST_UNSET", "", 1);
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":5: tunnel.secret_env: the environment variable LSTP_CONFIG_TEST_UNSET is empty"));
    ::unsetenv("LSTP_CONFIG_TEST_UNSET");
  }
  SECTION("bad tunnel name") {
    CHECK_THAT(error_from([&] {
                 config::load_end(d.write("c.yaml", "name: b\nrole: client\ntunnel:\n  name: \"a/b\"\n"));
               }),
               Contains("c.yaml:4: tunnel.name: expected 1 to 64 characters"));
  }
  SECTION("bad retry_interval") {
    CHECK_THAT(error_from([&] {
                 config::load_end(d.write("c.yaml", "name: b\nrole: server\ntunnel:\n  name: t\n  secret_file: "
                                                    "secret.txt\n  middle: h:1\n  retry_interval: 1.5s\n"));
               }),
               Contains("c.yaml:7: tunnel.retry_interval: expected a duration like 10s or 250ms, got \"1.5s\""));
  }
  SECTION("bad size") {
    CHECK_THAT(client_error(d, "limits:\n  pause_slack: 8MB\n"),
               Contains("client.yaml:10: limits.pause_slack: expected a size like 65536, 64KiB or 8MiB, got \"8MB\""));
  }
  SECTION("low_watermark not below high_watermark") {
    CHECK_THAT(client_error(d, "limits:\n  high_watermark: 64KiB\n  low_watermark: 64KiB\n"),
               Contains("client.yaml:11: limits.low_watermark: low_watermark (65536 bytes) must be less than "
                        "high_watermark (65536 bytes)"));
  }
  SECTION("high_watermark alone below the default low_watermark") {
    CHECK_THAT(client_error(d, "limits:\n  high_watermark: 64KiB\n"),
               Contains("client.yaml:10: limits.high_watermark: low_watermark (131072 bytes) must be less than"));
  }
  SECTION("keepalive not below dead_after") {
    CHECK_THAT(client_error(d, "limits:\n  dead_after: 30s\n  keepalive: 30s\n"),
               Contains("client.yaml:11: limits.keepalive: keepalive (30000ms) must be less than dead_after "
                        "(30000ms)"));
  }
  SECTION("bad socks timeout") {
    CHECK_THAT(client_error(d, "  timeout: 0\n"), Contains("client.yaml:9: socks.timeout: must be greater than 0"));
  }
  SECTION("bad max_channels") {
    CHECK_THAT(client_error(d, "limits:\n  max_channels: \"65536\"\n"),
               Contains("client.yaml:10: limits.max_channels: expected a positive integer, got the string"));
  }
  SECTION("socks users: empty password, length only in the message") {
    const std::string msg =
        client_error(d, "  users:\n    - username: alice\n      password: wonderland\n    - username: bob\n"
                        "      password: \"\"\n");
    CHECK_THAT(msg, Contains("client.yaml:13: socks.users[1].password: must be 1 to 255 bytes, got 0"));
  }
  SECTION("socks users: long password is not echoed") {
    const std::string pw(256, 'p');
    const std::string msg = client_error(d, "  users:\n    - username: alice\n      password: " + pw + "\n");
    CHECK_THAT(msg, Contains("client.yaml:11: socks.users[0].password: must be 1 to 255 bytes, got 256"));
    CHECK_THAT(msg, !Contains("ppppp"));
  }
  SECTION("socks users: missing password, unknown key, duplicate user, empty list") {
    CHECK_THAT(client_error(d, "  users:\n    - username: alice\n"),
               Contains("client.yaml:10: socks.users[0]: missing key \"password\""));
    CHECK_THAT(client_error(d, "  users:\n    - username: alice\n      pasword: x\n"),
               Contains("client.yaml:11: socks.users[0].pasword: unknown key (expected one of: username, password)"));
    CHECK_THAT(client_error(d, "  users:\n    - {username: a, password: b}\n    - {username: a, password: c}\n"),
               Contains("client.yaml:11: socks.users[1].username: user \"a\" is listed twice"));
    CHECK_THAT(client_error(d, "  users: []\n"), Contains("client.yaml:9: socks.users: expected at least one user"));
  }
  SECTION("duplicate key in the tunnel section") {
    const auto file = d.write("c.yaml", R"(name: b
role: client
tunnel:
  name: t
  name: u
)");
    CHECK_THAT(error_from([&] { config::load_end(file); }),
               Contains(file + ":5: tunnel.name: duplicate key (first given on line 4)"));
  }
}

// ---------------------------------------------------------------- files

TEST_CASE("files that cannot be read or parsed", "[config]") {
  temp_dir d;
  SECTION("missing file") {
    const std::string file = d.path("nope.yaml");
    CHECK(error_from([&] { config::load_middle(file); }) == file + ": cannot read: No such file or directory");
  }
  SECTION("a directory") {
    CHECK_THAT(error_from([&] { config::load_end(d.path("")); }), Contains(": cannot read: is a directory"));
  }
  SECTION("YAML syntax error gives line and column") {
    const auto file = d.write("bad.yaml", "name: m1\nlisten: [127.0.0.1:7000\nlog_level: info\n");
    const std::string msg = error_from([&] { config::load_middle(file); });
    CHECK_THAT(msg, Contains(file + ":"));
    CHECK_THAT(msg, Contains(": YAML syntax error: "));
    CHECK_THAT(msg, !Contains("yaml-cpp:"));
  }
  SECTION("YAML syntax error at a known position") {
    const auto file = d.write("bad.yaml", "name: m1\nlisten: a:1\n  bad: indent\n");
    CHECK_THAT(error_from([&] { config::load_middle(file); }), Contains(file + ":3:6: YAML syntax error: "));
  }
  SECTION("empty file") {
    const auto file = d.write("empty.yaml", "# nothing here\n");
    CHECK(error_from([&] { config::load_middle(file); }) == file + ":1: the file is empty; expected a map of settings");
  }
  SECTION("top level is not a map") {
    const auto file = d.write("list.yaml", "- a\n- b\n");
    CHECK_THAT(error_from([&] { config::load_middle(file); }),
               Contains(file + ":1: expected a map of settings, got a list"));
  }
  SECTION("two documents") {
    const auto file = d.write("two.yaml", "name: m1\nlisten: h:1\n---\nname: m2\n");
    CHECK_THAT(error_from([&] { config::load_middle(file); }), Contains("expected one YAML document, found 2"));
  }
}

TEST_CASE("a configuration that is not UTF-8 text is refused before parsing", "[config]") {
  auto dir = std::filesystem::temp_directory_path() / ("lstp-config-utf8-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "bad.yaml").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << "name: m\nlisten: 127.0.0.1:7000\n# \x84\x84 not text\n";
  }
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("bad.yaml:3: the file is not valid UTF-8 text"));
  {
    std::ofstream f(path, std::ios::binary);
    f << "name: m\n" << std::string(1, '\0') << "\n";
  }
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("bad.yaml:2: control character 0"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("YAML tags are refused, a '!' inside values is fine", "[config]") {
  auto dir = std::filesystem::temp_directory_path() / ("lstp-config-tags-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "tags.yaml").string();
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::binary) << text; };
  write("!l,is");  // made yaml-cpp 0.7 spin: found by the config fuzzer
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("tags.yaml:1: YAML tags"));
  write("name: m\nlisten: !!str 127.0.0.1:7000\n");
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("tags.yaml:2: YAML tags"));
  write("name: m # not a tag!\nlisten: \"127.0.0.1:7000\"\npublic_address: 'a!b' # !x\n");
  CHECK(config::load_middle(path).public_address == "a!b");
  write("name: m\nlisten: 127.0.0.1:7000\npublic_address: x!y\n");
  CHECK(config::load_middle(path).public_address == "x!y");
  std::filesystem::remove_all(dir);
}

TEST_CASE("a stray ',' is refused before yaml-cpp sees it, commas in lists and values are fine", "[config]") {
  auto dir = std::filesystem::temp_directory_path() / ("lstp-config-comma-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "comma.yaml").string();
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::binary) << text; };
  write("# comment\n,\n");  // made yaml-cpp 0.7 spin: found by the config fuzzer
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("comma.yaml:2: YAML syntax error: unexpected ','"));
  write("\", to2:8l022\", at");  // a ',' after a quoted string: spun too (the fuzzer again)
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("comma.yaml:1: YAML syntax error: unexpected ','"));
  write("name: m\nlisten: [\"127.0.0.1:7000\", '127.0.0.1:7001']\npublic_address: \"a,b\"\n");
  CHECK(config::load_middle(path).listen.size() == 2);  // quoted items in a list are fine
  write("name: m\npublic_address: a',b\n");  // a ',' after a quote character: quote the value
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("unexpected ',' (quote a value that holds one)"));
  write("&!\"6666,");  // an anchor: spun as well
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("YAML anchors and aliases (& and *) are not used"));
  // A shape no check names: the parser runs in a child that is stopped after 2 s.
  write(std::string("'!/*# Quickstart middle proxy: pairs the two quickstart ends on loopback.\n"
        "# Run: build/bin/middleproxy -c conf/quickstart/mid',dle.yaml\n"
        "#\n"
        "# A middle proxy knows no tunnel secret. It pairs the hops that carry the\n"
        "# same pairing id (d"));
  CHECK_THROWS_WITH(config::load_middle(path), Catch::Contains("the YAML parser did not finish within 2 s"));
  write("name: m\nlisten: [127.0.0.1:7000, 127.0.0.1:7001]\npublic_address: a,b\n");
  auto cfg = config::load_middle(path);
  CHECK(cfg.listen.size() == 2);
  CHECK(cfg.public_address == "a,b");
  std::filesystem::remove_all(dir);
}

TEST_CASE("proxy URLs: schemes, credentials with escapes, never the password in to_string") {
  auto p = config::parse_proxy_url("http://alice:p%40ss%3Aword@proxy.corp:3128/");
  CHECK(p.kind == config::proxy_kind::http);
  CHECK(p.at == config::endpoint{"proxy.corp", 3128});
  CHECK(p.username == "alice");
  CHECK(p.password == "p@ss:word");
  CHECK(p.to_string() == "http://alice@proxy.corp:3128");
  CHECK(config::parse_proxy_url("socks5h://[::1]:1080").kind == config::proxy_kind::socks5);
  CHECK(config::parse_proxy_url("socks4://h:1080").kind == config::proxy_kind::socks4a);
  CHECK(config::parse_proxy_url("h:8080").kind == config::proxy_kind::http);
  CHECK(error_from([] { config::parse_proxy_url("ftp://h:21"); }) ==
        "unknown proxy scheme \"ftp\" (expected socks5://, socks4a:// or http://)");
  CHECK(error_from([] { config::parse_proxy_url("http://:secret@h:1"); }) ==
        "the proxy URL has a password but no user name");
  CHECK(error_from([] { config::parse_proxy_url("http://u:secret@h"); }).find("secret") == std::string::npos);
  CHECK(error_from([] { config::parse_proxy_url("http://h:1/path"); }) == "a proxy URL has no path");
  CHECK(error_from([] { config::parse_proxy_url("user:secret:host:3128"); }).find("secret") == std::string::npos);
}

TEST_CASE("ways: a carrier, optionally via a proxy or the environment") {
  CHECK(config::parse_way("tcp").to_string() == "tcp");
  CHECK(config::parse_way("wss via http://u:pw@corp:3128").to_string() == "wss via http://u@corp:3128");
  CHECK(config::parse_way("ws  via   env").via == config::way::route::environment);
  CHECK(config::parse_way("tls").how == config::carrier::tls);
  CHECK(config::parse_way("http via http://proxy:3128").how == config::carrier::http);
  CHECK(config::parse_way("http").to_string() == "http");
  CHECK(error_from([] { config::parse_way("udp"); }).rfind("expected tcp, tls, ws, wss or http", 0) == 0);
  CHECK(error_from([] { config::parse_way("tcp through x"); }) ==
        "expected \"via <proxy URL>\" or \"via env\" after \"tcp\"");
}

TEST_CASE("an end's tunnel section: middles, ways, proxy, state file, backoff") {
  temp_dir dir;
  dir.write("secret.txt", "0123456789abcdef0123\n");
  const auto file = dir.write("c.yaml", R"(name: c
role: client
tunnel:
  name: t
  secret_file: secret.txt
  middle: [a.example:443, "b.example:80"]
  ways:
    - wss via env
    - tcp
  proxy: socks5://p:1080
  state_file: state/c.tunnels[0].ways
  retry_interval: 500ms
  retry_max: 1m
  way_timeout: 3s
  reprobe_interval: "off"
socks:
  listen: 127.0.0.1:1080
)");
  auto c = config::load_end(file);
  CHECK(c.tunnels[0].middles == std::vector<config::endpoint>{{"a.example", 443}, {"b.example", 80}});
  REQUIRE(c.tunnels[0].ways.size() == 2);
  CHECK(c.tunnels[0].ways[0].to_string() == "wss via env");
  CHECK(c.tunnels[0].ways_proxy->to_string() == "socks5://p:1080");
  CHECK(c.tunnels[0].state_file == dir.path("state/c.tunnels[0].ways"));
  CHECK(c.tunnels[0].retry_interval == std::chrono::milliseconds(500));
  CHECK(c.tunnels[0].retry_max == std::chrono::minutes(1));
  CHECK(c.tunnels[0].way_timeout == std::chrono::seconds(3));
  CHECK(c.tunnels[0].reprobe_interval.count() == 0);

  const auto dup = dir.write("d.yaml", R"(name: c
role: client
tunnel:
  name: t
  secret_file: secret.txt
  middle: a:1
  ways: [tcp, ws, tcp]
socks:
  listen: 127.0.0.1:1080
)");
  CHECK(error_from([&] { config::load_end(dup); }) == dup + ":7: tunnel.ways[2]: listed twice: tcp");
}

TEST_CASE("an end remembers its ways under the state directory unless told not to") {
  temp_dir dir;
  dir.write("secret.txt", "0123456789abcdef0123\n");
  const auto text = [](const std::string& extra) {
    return "name: b-laptop\nrole: client\ntunnel:\n  name: t\n  secret_file: secret.txt\n  middle: m:443\n" + extra +
           "socks:\n  listen: 127.0.0.1:1080\n";
  };
  ::setenv("XDG_STATE_HOME", "/var/tmp/xdg", 1);
  ::unsetenv("STATE_DIRECTORY");
  CHECK(config::load_end(dir.write("a.yaml", text(""))).tunnels[0].state_file == "/var/tmp/xdg/lstp/b-laptop.ways");
  ::setenv("STATE_DIRECTORY", "/var/lib/lstp:/other", 1);
  CHECK(config::load_end(dir.write("b.yaml", text(""))).tunnels[0].state_file == "/var/lib/lstp/b-laptop.ways");
  CHECK(config::load_end(dir.write("c.yaml", text("  state_file: none\n"))).tunnels[0].state_file.empty());
  ::unsetenv("STATE_DIRECTORY");
  ::unsetenv("XDG_STATE_HOME");
}

TEST_CASE("a long retry_interval alone raises retry_max with it") {
  temp_dir dir;
  dir.write("secret.txt", "0123456789abcdef0123\n");
  auto c = config::load_end(dir.write("a.yaml", "name: n\nrole: server\ntunnel:\n  name: t\n  secret_file: secret.txt\n"
                                                "  middle: m:1\n  retry_interval: 2m\n"));
  CHECK(c.tunnels[0].retry_max == std::chrono::minutes(2));
}

TEST_CASE("a server end's allow and deny rules are read and checked where they stand") {
  temp_dir dir;
  dir.write("secret.txt", "0123456789abcdef0123\n");
  const auto head = std::string("name: s\nrole: server\ntunnel:\n  name: t\n  secret_file: secret.txt\n  middle: m:1\n");
  auto c = config::load_end(dir.write("a.yaml", head + "server:\n  allow:\n    - 10.0.0.0/8:22\n    - \"*.corp.example\"\n"
                                                      "  deny: 10.0.0.1\n"));
  REQUIRE(c.allow.size() == 2);
  CHECK(c.allow[1].text == "*.corp.example");
  REQUIRE(c.deny.size() == 1);
  CHECK(config::load_end(dir.write("b.yaml", head)).allow.empty());  // nothing allowed by default
  const auto bad = dir.write("c.yaml", head + "server:\n  allow:\n    - 10.0.0.0/8\n    - 10.0.0.0/40\n");
  CHECK(error_from([&] { config::load_end(bad); }) ==
        bad + ":10: server.allow[1]: prefix length out of range in \"10.0.0.0/40\"");
}

TEST_CASE("forwards belong to a client end, one listener each") {
  temp_dir dir;
  dir.write("secret.txt", "0123456789abcdef0123\n");
  const auto head = [](const char* role) {
    return std::string("name: c\nrole: ") + role + "\ntunnel:\n  name: t\n  secret_file: secret.txt\n  middle: m:1\n";
  };
  auto c = config::load_end(dir.write("a.yaml", head("client") + "forwards:\n  - listen: 127.0.0.1:6010\n"
                                                                  "    to: 127.0.0.1:6000\n"));
  REQUIRE(c.forwards.size() == 1);
  CHECK(c.forwards[0].to == config::endpoint{"127.0.0.1", 6000});
  CHECK(c.socks_listen.empty());  // forwards alone make a client end
  const auto server = dir.write("b.yaml", head("server") + "forwards:\n  - listen: 127.0.0.1:6010\n    to: x:1\n");
  CHECK(error_from([&] { config::load_end(server); }) ==
        server + ":7: forwards: not used when role is server (forwards open channels: set role to both, e.g. for a reverse forward)");
  const auto twice = dir.write("c.yaml", head("client") + "forwards:\n  - {listen: \"127.0.0.1:1\", to: \"a:1\"}\n"
                                                            "  - {listen: \"127.0.0.1:1\", to: \"b:1\"}\n");
  CHECK(error_from([&] { config::load_end(twice); }).find("listen 127.0.0.1:1 is used twice") != std::string::npos);
}

TEST_CASE("several tunnels with routes: each tunnel a config of its own") {
  temp_dir dir;
  dir.write("a.secret", "0123456789abcdef0123\n");
  dir.write("c.secret", "another secret of 32 bytes......\n");
  const std::string head =
      "name: laptop\nrole: client\nsocks:\n  listen: 127.0.0.1:1080\n"
      "tunnels:\n  - name: corp-a\n    secret_file: a.secret\n    middle: m1:443\n"
      "  - name: lab-c\n    secret_file: c.secret\n    middle: [m2:443, m3:443]\n    way_timeout: 2s\n";
  auto c = config::load_end(dir.write("ok.yaml", head + "routes:\n  - match: [\"*.corp-a.example\", 10.0.0.0/8]\n"
                                                        "    via: corp-a\n  - match: 172.16.0.0/12\n    via: direct\n"
                                                        "default_route: lab-c\n"));
  REQUIRE(c.tunnels.size() == 2);
  const auto& corp = c.tunnels[0];
  const auto& lab = c.tunnels[1];
  CHECK(corp.name == "corp-a");
  CHECK(text_of(corp.secret) == "0123456789abcdef0123");
  CHECK(lab.name == "lab-c");
  CHECK(text_of(lab.secret) == "another secret of 32 bytes......");
  CHECK(lab.middles.size() == 2);
  CHECK(lab.way_timeout == std::chrono::seconds(2));
  CHECK(corp.way_timeout == std::chrono::seconds(5));  // each tunnel keeps its own settings
  CHECK(c.name == "laptop");                            // and the end's are the end's
  CHECK(lab.state_file != corp.state_file);  // each remembers its ways in its own file
  REQUIRE(c.routes.size() == 2);
  CHECK(c.routes[0].via == "corp-a");
  CHECK(c.routes[0].match.size() == 2);
  CHECK(c.routes[1].via == "direct");
  CHECK(c.default_route == "lab-c");

  // Without default_route several tunnels refuse what no route takes; one tunnel takes all.
  CHECK(config::load_end(dir.write("d.yaml", head)).default_route == "refuse");
  CHECK(config::load_end(dir.write("e.yaml", "name: x\nrole: client\nsocks:\n  listen: 127.0.0.1:1080\n"
                                             "tunnel:\n  name: t\n  secret_file: a.secret\n  middle: m:1\n"))
            .default_route == "t");

  const auto err = [&](const std::string& name, const std::string& text) {
    const auto path = dir.write(name, text);
    return error_from([&] { config::load_end(path); });
  };
  CHECK(err("f.yaml", head + "routes:\n  - match: 10.0.0.0/8\n    via: corp-b\n")
            .find("via: expected one of corp-a, lab-c, or direct, got \"corp-b\"") != std::string::npos);
  CHECK(err("g.yaml", head + "default_route: nowhere\n")
            .find("default_route: expected one of corp-a, lab-c, direct or refuse, got \"nowhere\"") != std::string::npos);
  CHECK(err("h.yaml", head + "tunnel:\n  name: t\n  secret_file: a.secret\n  middle: m:1\n")
            .find("give either \"tunnel\" or \"tunnels\" (a list), not both") != std::string::npos);
  CHECK(err("i.yaml", "name: x\nrole: client\nsocks:\n  listen: 127.0.0.1:1\ntunnels:\n"
                      "  - {name: t, secret_file: a.secret, middle: \"m:1\"}\n  - {name: t, secret_file: c.secret, middle: \"m:2\"}\n")
            .find("tunnel t is listed twice") != std::string::npos);
  CHECK(err("j.yaml", head + "routes:\n  - match: 10.0.0.0/33\n    via: corp-a\n").find("routes[0].match") !=
        std::string::npos);
  // Route words are not tunnel names, with one tunnel too (else "direct" would bypass it).
  CHECK(err("k.yaml", "name: x\nrole: client\nsocks:\n  listen: 127.0.0.1:1\ntunnel:\n  name: direct\n"
                      "  secret_file: a.secret\n  middle: m:1\n")
            .find("a tunnel may not be called \"direct\"") != std::string::npos);
  CHECK(err("l.yaml", "name: x\nrole: client\nsocks:\n  listen: 127.0.0.1:1\ntunnels:\n"
                      "  - {name: Lab, secret_file: a.secret, middle: \"m:1\"}\n  - {name: lab, secret_file: c.secret, middle: \"m:2\"}\n")
            .find("tunnel lab is listed twice (names are compared in any letter case)") != std::string::npos);
  CHECK(err("m.yaml", "name: x\nrole: server\ntunnel:\n  name: t\n  secret_file: a.secret\n  middle: m:1\n"
                      "server:\n  bind_address: 0.0.0.0\n")
            .find("expected an IP address of this host (the peer is told to connect there)") != std::string::npos);
}

TEST_CASE("access credentials: an end's for its middles, a middle's list and its own for the next hop") {
  temp_dir dir;
  dir.write("t.secret", "0123456789abcdef0123\n");
  dir.write("alice.token", "alice-token-0123456789abcdef\n");
  dir.write("m1.token", "m1-token-for-m2-0123456789\n");
  ::setenv("LSTP_CONFIG_TEST_BOB", "bob-token-0123456789abcdef", 1);
  const std::string end_head =
      "name: laptop\nrole: client\nsocks:\n  listen: 127.0.0.1:1080\n"
      "tunnels:\n  - name: corp-a\n    secret_file: t.secret\n    middle: m1:443\n"
      "  - name: lab-c\n    secret_file: t.secret\n    middle: m2:443\n"
      "    access:\n      name: bob\n      token_env: LSTP_CONFIG_TEST_BOB\n";
  auto e = config::load_end(dir.write("end.yaml", end_head));
  REQUIRE(e.tunnels.size() == 2);
  CHECK_FALSE(e.tunnels[0].access);  // corp-a has none
  REQUIRE(e.tunnels[1].access);
  CHECK(e.tunnels[1].access->name == "bob");
  CHECK(text_of(e.tunnels[1].access->token) == "bob-token-0123456789abcdef");
  CHECK(e.tunnels[1].access->token_source == "environment LSTP_CONFIG_TEST_BOB");
  // The first tunnel's credential is its own.
  auto first = config::load_end(dir.write(
      "end2.yaml", "name: laptop\nrole: client\nsocks:\n  listen: 127.0.0.1:1080\n"
                   "tunnels:\n  - name: corp-a\n    secret_file: t.secret\n    middle: m1:443\n"
                   "    access: {name: alice, token_file: alice.token}\n"
                   "  - name: lab-c\n    secret_file: t.secret\n    middle: m2:443\n"));
  REQUIRE(first.tunnels[0].access);
  CHECK(text_of(first.tunnels[0].access->token) == "alice-token-0123456789abcdef");
  CHECK_FALSE(first.tunnels[1].access);

  auto m = config::load_middle(dir.write(
      "m1.yaml", "name: m1\nlisten: 0.0.0.0:443\naccess:\n"
                 "  - {name: alice, token_file: alice.token}\n"
                 "  - {name: bob, token_env: LSTP_CONFIG_TEST_BOB, tunnels: [lab-c, corp-b]}\n"
                 "access_window: 2m\nnext_hop: m2:443\nnext_hop_access: {name: m1, token_file: m1.token}\n"));
  REQUIRE(m.access.size() == 2);
  CHECK(m.access[0].credential.name == "alice");
  CHECK(m.access[0].tunnels.empty());
  CHECK(m.access[1].tunnels == std::vector<std::string>{"lab-c", "corp-b"});
  CHECK(m.access_window == std::chrono::seconds(120));
  REQUIRE(m.next_hop_access);
  CHECK(text_of(m.next_hop_access->token) == "m1-token-for-m2-0123456789");
  CHECK(config::load_middle(dir.write("open.yaml", "name: m\nlisten: 0.0.0.0:443\n")).access.empty());

  const auto err = [&](const std::string& name, const std::string& text) {
    const auto path = dir.write(name, text);
    return error_from([&] { config::load_middle(path); });
  };
  dir.write("short.token", "letmein-please\n");
  const auto short_msg = err("a.yaml", "name: m\nlisten: 0.0.0.0:443\naccess:\n  - {name: x, token_file: short.token}\n");
  CHECK_THAT(short_msg, Contains("access[0].token_file: the token is 14 bytes; use at least 16"));
  CHECK_THAT(short_msg, !Contains("letmein"));
  CHECK_THAT(err("b.yaml", "name: m\nlisten: 0.0.0.0:443\naccess_window: 1m\n"),
             Contains("access_window: only used with access"));
  CHECK_THAT(err("c.yaml", "name: m\nlisten: 0.0.0.0:443\nnext_hop_access: {name: m, token_file: m1.token}\n"),
             Contains("next_hop_access: only used with next_hop"));
  CHECK_THAT(err("d.yaml", "name: m\nlisten: 0.0.0.0:443\naccess:\n  - {name: x, token_file: alice.token}\n"
                           "  - {name: x, token_file: m1.token}\n"),
             Contains("credential x is listed twice"));
  CHECK_THAT(err("e.yaml", "name: m\nlisten: 0.0.0.0:443\naccess:\n  - {name: x}\n"),
             Contains("missing key \"token_file\" or \"token_env\""));
  CHECK_THAT(err("f.yaml", "name: m\nlisten: 0.0.0.0:443\naccess:\n  - {name: x, token_file: alice.token, tunnels: [\"a b\"]}\n"),
             Contains("access[0].tunnels[0]: expected 1 to 64 characters"));
  CHECK_THAT(err("g.yaml", "name: m\nlisten: 0.0.0.0:443\naccess: []\n"), Contains("expected a list of credentials"));
  ::unsetenv("LSTP_CONFIG_TEST_BOB");
}

TEST_CASE("hardening limits refuse values that would break the tunnel") {
  temp_dir dir;
  dir.write("t.secret", "0123456789abcdef0123\n");
  dir.write("a.token", "alice-token-0123456789abcdef\n");
  const auto end_err = [&](const std::string& limits) {
    const auto path = dir.write("e.yaml", "name: x\nrole: client\nsocks:\n  listen: 127.0.0.1:1\ntunnel:\n  name: t\n"
                                          "  secret_file: t.secret\n  middle: m:1\nlimits:\n" + limits);
    return error_from([&] { config::load_end(path); });
  };
  CHECK_THAT(end_err("  max_tunnel_buffer: 512KiB\n"),
             Contains("limits.max_tunnel_buffer: must be at least 1MiB (four channels' first windows)"));
  CHECK_THAT(end_err("  max_openings: 0\n"), Contains("limits.max_openings: must be greater than 0"));
  const auto path = dir.write("m.yaml", "name: m\nlisten: 0.0.0.0:443\naccess:\n  - {name: a, token_file: a.token}\n"
                                        "access_window: 500ms\n");
  CHECK_THAT(error_from([&] { config::load_middle(path); }), Contains("access_window: must be at least 1s"));
}

namespace {
// A client end's file in `dir` with these `limits:` lines (and its secret).
std::string client_with_limits(temp_dir& dir, const std::string& limits) {
  dir.write("t.secret", "0123456789abcdef0123\n");
  return dir.write("e.yaml", "name: x\nrole: client\nsocks:\n  listen: 127.0.0.1:1\ntunnel:\n  name: t\n"
                             "  secret_file: t.secret\n  middle: m:1\nlimits:\n" + limits);
}
}  // namespace

TEST_CASE("resumption limits: on or off, a window, a replay buffer of at least 1 MiB") {
  temp_dir dir;
  const auto end_path = [&](const std::string& limits) { return client_with_limits(dir, limits); };
  const auto defaults = config::load_end(end_path("  keepalive: 20s\n"));
  CHECK(defaults.limit.resumption);  // on by default
  CHECK(defaults.limit.resume_window == std::chrono::seconds(60));
  CHECK(defaults.limit.replay_buffer == 16 * 1024 * 1024);
  const auto c = config::load_end(end_path("  resumption: off\n  resume_window: 30s\n  replay_buffer: 8MiB\n"));
  CHECK_FALSE(c.limit.resumption);
  CHECK(c.limit.resume_window == std::chrono::seconds(30));
  CHECK(c.limit.replay_buffer == 8 * 1024 * 1024);
  const auto p1 = end_path("  resumption: maybe\n");
  CHECK_THAT(error_from([&] { config::load_end(p1); }),
             Contains("limits.resumption: expected one of on, off, true, false, got \"maybe\""));
  const auto p2 = end_path("  replay_buffer: 512KiB\n");
  CHECK_THAT(error_from([&] { config::load_end(p2); }), Contains("limits.replay_buffer: must be at least 1MiB"));
}

TEST_CASE("key update limits: on by default, sooner allowed, later refused") {
  temp_dir dir;
  const auto end_path = [&](const std::string& limits) { return client_with_limits(dir, limits); };
  const auto defaults = config::load_end(end_path("  keepalive: 20s\n"));
  CHECK(defaults.limit.key_updates);
  CHECK(defaults.limit.key_update_after == (std::size_t{1} << 34));
  CHECK(defaults.limit.key_update_interval == std::chrono::hours(1));
  const auto c = config::load_end(end_path("  key_updates: off\n  key_update_after: 1GiB\n  key_update_interval: 10m\n"));
  CHECK_FALSE(c.limit.key_updates);
  CHECK(c.limit.key_update_after == std::size_t{1} << 30);
  CHECK(c.limit.key_update_interval == std::chrono::minutes(10));
  CHECK_THAT(error_from([&] { config::load_end(end_path("  key_update_after: 32GiB\n")); }),
             Contains("limits.key_update_after: must be between 64KiB and 16GiB"));
  CHECK_THAT(error_from([&] { config::load_end(end_path("  key_update_after: 1KiB\n")); }),
             Contains("must be between 64KiB and 16GiB"));
  CHECK_THAT(error_from([&] { config::load_end(end_path("  key_update_interval: 2h\n")); }),
             Contains("limits.key_update_interval: must be between 1s and 1h"));
}
