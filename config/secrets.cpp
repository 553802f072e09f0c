#include "config/secrets.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace config::reader {

// Bounded so that pointing secret_file at /dev/zero or a large file fails
// instead of hanging or eating memory.
constexpr std::size_t max_secret_file = 64 * 1024;

std::string read_secret_file(const field& f, const std::filesystem::path& resolved) {
  std::error_code ec;
  if (std::filesystem::is_directory(resolved, ec)) f.fail("cannot read " + quote(resolved.string()) + ": is a directory");
  errno = 0;
  std::ifstream in(resolved, std::ios::binary);
  if (!in) {
    f.fail("cannot read " + quote(resolved.string()) + ": " + (errno != 0 ? std::strerror(errno) : "cannot open"));
  }
  std::string secret(max_secret_file + 1, '\0');
  in.read(secret.data(), static_cast<std::streamsize>(secret.size()));
  if (in.bad()) f.fail("cannot read " + quote(resolved.string()) + ": read error");
  secret.resize(static_cast<std::size_t>(in.gcount()));
  if (secret.size() > max_secret_file) f.fail("the secret file is larger than 64 KiB; expected a short secret");
  return secret;
}

void strip_trailing_space(std::string& s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n' ||
                        s.back() == '\v' || s.back() == '\f')) {
    s.pop_back();
  }
}

// A secret read from a file (relative to the YAML file) or an environment
// variable, trailing white space removed, at least 16 bytes. Messages give
// its length and where it came from, never the secret.
secret_value read_secret(const source& src, const section& t, std::string_view what, std::string_view file_key,
                         std::string_view env_key, std::string_view how_to_make) {
  const field* file_f = t.find(file_key);
  const field* env_f = t.find(env_key);
  if (file_f && env_f) t.fail("give only one of " + std::string(file_key) + " and " + std::string(env_key));
  if (!file_f && !env_f) t.fail("missing key \"" + std::string(file_key) + "\" or \"" + std::string(env_key) + "\"");
  const field& secret_f = file_f ? *file_f : *env_f;
  secret_value out;
  if (file_f) {
    const std::string name = read_string(*file_f);
    if (name.empty()) file_f->fail("expected a file name, got \"\"");
    std::filesystem::path p(name);
    // Relative to the YAML file so that a config directory can be moved as a whole.
    if (p.is_relative()) p = std::filesystem::path(src.file).parent_path() / p;
    out.value = read_secret_file(*file_f, p);
    out.source = "file " + p.string();
  } else {
    const std::string name = read_string(*env_f);
    if (name.empty() || name.find('=') != std::string::npos) {
      env_f->fail("expected an environment variable name, got " + quote(name));
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) env_f->fail("the environment variable " + name + " is not set");
    if (*value == '\0') env_f->fail("the environment variable " + name + " is empty");
    out.value = value;
    out.source = "environment " + name;
  }
  strip_trailing_space(out.value);
  if (out.value.size() < 16) {
    // The length only: the secret itself must never reach a message or a log.
    secret_f.fail("the " + std::string(what) + " is " + std::to_string(out.value.size()) +
                  " bytes; use at least 16 (e.g. " + std::string(how_to_make) + ")");
  }
  return out;
}

// An access credential for a middle proxy (PROTOCOL.md 3.6): name and
// token_file | token_env, read from a section that allows those keys.
access_credential credential_from(const source& src, const section& a) {
  access_credential c;
  c.name = read_name(a.require("name"));
  auto token = read_secret(src, a, "token", "token_file", "token_env", "head -c 32 /dev/urandom | base64");
  c.token = std::move(token.value);
  c.token_source = std::move(token.source);
  return c;
}

// {name, token_file | token_env}: what an end, or a middle for its next hop, shows.
access_credential read_access_credential(const source& src, const field& f) {
  return credential_from(src, sub_section(src, f, {"name", "token_file", "token_env"}));
}

// One entry of a middle's access list: a credential and, optionally, the
// tunnels it may serve.
access_grant read_access_grant(const source& src, const field& item) {
  const section a(src, item.value, item.value.Mark(), item.path, {"name", "token_file", "token_env", "tunnels"});
  if (!item.value.IsMap()) a.fail("expected a map with name and token_file (or token_env)");
  access_grant g;
  g.credential = credential_from(src, a);
  if (const field* tf = a.find("tunnels"))
    for_each_item(src, *tf, "expected a tunnel name or a list of them, got ",
                  [&](const field& name) { g.tunnels.push_back(read_name(name)); });
  return g;
}

}  // namespace config::reader
