// The middle proxy's configuration: listeners, access list, next hop, TLS
// identity, limits.
#include <filesystem>

#include "config/config.hpp"
#include "config/from_yaml.hpp"
#include "config/reader.hpp"
#include "config/secrets.hpp"

namespace config {

using namespace reader;

middle_config load_middle(const std::string& path) {
  const source src{path};
  return middle_from_yaml(load_document(src), path);
}

middle_config middle_from_yaml(const YAML::Node& root, const std::string& path) {
  const source src{path};
  const section top(src, root, root.Mark(), "",
                    {"name", "listen", "public_address", "access", "access_window", "next_hop", "next_hop_way",
                     "next_hop_access", "websocket_path", "tls_certificate", "tls_private_key", "limits", "log_level", "log_format", "admin"});
  middle_config cfg;
  cfg.file = path;
  cfg.name = read_name(top.require("name"));
  cfg.listen = read_endpoints(src, top.require("listen"));
  if (const field* f = top.find("public_address")) {
    cfg.public_address = read_string(*f);
    if (cfg.public_address.empty()) f->fail("must not be empty (leave it out to show the address a hop arrived on)");
    if (cfg.public_address.size() > 255) f->fail("too long (at most 255 characters)");
    const bool printable = std::all_of(cfg.public_address.begin(), cfg.public_address.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u != 0x7f;
    });
    if (!printable) f->fail("contains control characters: " + quote(cfg.public_address));
  }
  if (const field* af = top.find("access")) {
    if (!af->value.IsSequence()) af->fail("expected a list of credentials, got " + std::string(describe(af->value)));
    for_each_item(src, *af, "expected a list of credentials, each {name, token_file or token_env, tunnels (optional)}, got ",
                  [&](const field& item) {
                    auto g = read_access_grant(src, item);
                    for (auto& prev : cfg.access)
                      if (prev.credential.name == g.credential.name)
                        item.fail("credential " + g.credential.name + " is listed twice");
                    cfg.access.push_back(std::move(g));
                  });
  }
  if (const field* f = top.find("access_window")) {
    if (cfg.access.empty()) f->fail("only used with access");
    cfg.access_window = std::chrono::duration_cast<std::chrono::seconds>(read_duration(*f));
    if (cfg.access_window < std::chrono::seconds(1)) f->fail("must be at least 1s");
  }
  if (const field* f = top.find("next_hop")) cfg.next_hop = read_endpoint(*f);
  if (const field* f = top.find("next_hop_access")) {
    if (!cfg.next_hop) f->fail("only used with next_hop");
    cfg.next_hop_access = read_access_credential(src, *f);
  }
  if (const field* f = top.find("next_hop_way")) {
    if (!cfg.next_hop) f->fail("only used with next_hop");
    cfg.next_hop_way = read_way(*f);
  }
  if (const field* f = top.find("websocket_path")) cfg.websocket_path = read_websocket_path(*f);
  const field* cert_f = top.find("tls_certificate");
  const field* key_f = top.find("tls_private_key");
  if ((cert_f == nullptr) != (key_f == nullptr)) top.fail("give both tls_certificate and tls_private_key, or neither");
  if (cert_f) {
    for (auto [f, out] : {std::pair{cert_f, &cfg.tls_certificate}, std::pair{key_f, &cfg.tls_private_key}}) {
      std::filesystem::path p(with_credentials_directory(*f, read_string(*f)));
      if (p.empty()) f->fail("expected a PEM file name");
      if (p.is_relative()) p = std::filesystem::path(src.file).parent_path() / p;
      std::error_code ec;
      if (!std::filesystem::is_regular_file(p, ec)) f->fail("cannot read " + p.string());
      *out = p.string();
    }
  }
  if (const field* lf = top.find("limits")) {
    const section l = sub_section(src, *lf, {"setup_timeout", "waiting_timeout", "max_waiting",
                                             "max_waiting_per_source", "max_connections", "max_openings",
                                             "max_openings_per_source", "shutdown_grace"});
    if (const field* f = l.find("setup_timeout")) cfg.limit.setup_timeout = read_duration(*f);
    if (const field* f = l.find("waiting_timeout")) cfg.limit.waiting_timeout = read_duration(*f);
    if (const field* f = l.find("max_waiting")) cfg.limit.max_waiting = read_count(*f);
    if (const field* f = l.find("max_waiting_per_source")) cfg.limit.max_waiting_per_source = read_count(*f);
    if (const field* f = l.find("max_connections")) cfg.limit.max_connections = read_count(*f);
    if (const field* f = l.find("max_openings")) cfg.limit.max_openings = read_count(*f);
    if (const field* f = l.find("max_openings_per_source")) cfg.limit.max_openings_per_source = read_count(*f);
    if (const field* f = l.find("shutdown_grace")) cfg.limit.shutdown_grace = read_shutdown_grace(*f);
  }
  if (const field* f = top.find("log_level")) cfg.log = read_log_level(*f);
  if (const field* f = top.find("log_format")) cfg.format = read_log_format(*f);
  if (const field* f = top.find("admin")) cfg.admin = read_admin(src, *f);
  return cfg;
}

}  // namespace config
