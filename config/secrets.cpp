#include "config/secrets.hpp"

#include <botan/mem_ops.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace config::reader {

// Bounded so that pointing secret_file at /dev/zero or a large file fails
// instead of hanging or eating memory.
constexpr std::size_t max_secret_file = 64 * 1024;

namespace {

std::string mode_text(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777U);
  return buf;
}

}  // namespace

lstp::secret_bytes read_secret_file(const field& f, const std::filesystem::path& resolved) {
  std::error_code ec;
  if (std::filesystem::is_directory(resolved, ec)) f.fail("cannot read " + quote(resolved.string()) + ": is a directory");
  // The mode is read from the file opened (fstat), not from its name, so
  // the file read is the file checked.
  errno = 0;
  const int fd = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) f.fail("cannot read " + quote(resolved.string()) + ": " + std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_fd{fd};
  // As OpenSSH does for private keys: a secret others can read is no secret.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    f.fail(quote(resolved.string()) + " may be read by group or others (mode " + mode_text(st.st_mode) +
           "): run chmod 600 " + resolved.string());
  }
  lstp::secret_bytes secret(max_secret_file + 1, 0);
  std::size_t got = 0;
  while (got < secret.size()) {
    const auto n = ::read(fd, secret.data() + got, secret.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) f.fail("cannot read " + quote(resolved.string()) + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  secret.resize(got);
  if (secret.size() > max_secret_file) f.fail("the secret file is larger than 64 KiB; expected a short secret");
  return secret;
}

void strip_trailing_space(lstp::secret_bytes& s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n' ||
                        s.back() == '\v' || s.back() == '\f')) {
    s.pop_back();
  }
}

// A secret read from a file (relative to the YAML file) or an environment
// variable, trailing white space removed: a generated key (lstp/secrets.hpp)
// or a passphrase of at least 16 bytes. Messages give its length and where
// it came from, never the secret.
std::string with_credentials_directory(const field& f, std::string name) {
  constexpr std::string_view credentials = "${CREDENTIALS_DIRECTORY}";
  if (name.rfind(credentials, 0) != 0) return name;
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0')
    f.fail("CREDENTIALS_DIRECTORY is not set: " + std::string(credentials) +
           " works when systemd passes the file with LoadCredential= (run --check with it set)");
  return dir + name.substr(credentials.size());
}

secret_value read_secret(const source& src, const section& t, lstp::key_use use, std::string_view file_key,
                         std::string_view env_key) {
  const std::string what = use == lstp::key_use::tunnel_secret ? "secret" : "token";
  const std::string how_to_make =
      use == lstp::key_use::tunnel_secret ? "endproxy --new-secret FILE" : "middleproxy --new-token FILE";
  const field* file_f = t.find(file_key);
  const field* env_f = t.find(env_key);
  if (file_f && env_f) t.fail("give only one of " + std::string(file_key) + " and " + std::string(env_key));
  if (!file_f && !env_f) t.fail("missing key \"" + std::string(file_key) + "\" or \"" + std::string(env_key) + "\"");
  const field& secret_f = file_f ? *file_f : *env_f;
  secret_value out;
  lstp::secret_bytes text;
  if (file_f) {
    const std::string name = with_credentials_directory(*file_f, read_string(*file_f));
    if (name.empty()) file_f->fail("expected a file name, got \"\"");
    std::filesystem::path p(name);
    // Relative to the YAML file so that a config directory can be moved as a whole.
    if (p.is_relative()) p = std::filesystem::path(src.file).parent_path() / p;
    text = read_secret_file(*file_f, p);
    out.source = "file " + p.string();
  } else {
    const std::string name = read_string(*env_f);
    if (name.empty() || name.find('=') != std::string::npos) {
      env_f->fail("expected an environment variable name, got " + quote(name));
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) env_f->fail("the environment variable " + name + " is not set");
    if (*value == '\0') env_f->fail("the environment variable " + name + " is empty");
    text.assign(value, value + std::strlen(value));
    out.source = "environment " + name;
    out.environment = name;
  }
  strip_trailing_space(text);
  out.value = lstp::parse_secret(use, text);
  if (!out.value.problem.empty()) secret_f.fail("the " + what + " from " + out.source + " is unusable: " + out.value.problem);
  if (!out.value.is_key && out.value.bytes.size() < lstp::min_secret_size) {
    // The length only: the secret itself must never reach a message or a log.
    secret_f.fail("the " + what + " is " + std::to_string(out.value.bytes.size()) +
                  " bytes; use at least 16, or better a generated key (" + how_to_make + ")");
  }
  return out;
}

// An access credential for a middle proxy (PROTOCOL.md 3.6): name and
// token_file | token_env, read from a section that allows those keys.
access_credential credential_from(const source& src, const section& a) {
  access_credential c;
  c.name = read_name(a.require("name"));
  auto token = read_secret(src, a, lstp::key_use::access_token, "token_file", "token_env");
  c.token = std::move(token.value);
  c.token_source = std::move(token.source);
  c.token_environment = std::move(token.environment);
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

admin_config read_admin(const source& src, const field& f) {
  const section a = sub_section(src, f, {"listen", "token_file", "token_env"});
  admin_config cfg;
  const field& listen_f = a.require("listen");
  cfg.listen = read_endpoint(listen_f);
  if (a.find("token_file") || a.find("token_env")) {
    auto token = read_secret(src, a, lstp::key_use::access_token, "token_file", "token_env");
    // Compared with what a client sends: the text as the file holds it.
    if (token.value.is_key) {
      auto text = lstp::key_text(lstp::key_use::access_token, token.value.bytes);
      cfg.token = lstp::secret_bytes(text.begin(), text.end());
      Botan::secure_scrub_memory(text.data(), text.size());
    } else {
      cfg.token = std::move(token.value.bytes);
    }
    cfg.token_source = std::move(token.source);
    cfg.token_environment = std::move(token.environment);
  }
  if (!cfg.token && !is_loopback_host(cfg.listen->host))
    listen_f.fail(cfg.listen->to_string() +
                  " is not a loopback address: an admin server reachable from elsewhere needs token_file (make one with "
                  "endproxy --new-token FILE)");
  return cfg;
}

}  // namespace config::reader

namespace config {

std::vector<std::string> secret_environment_variables(const end_config& cfg) {
  std::vector<std::string> names;
  for (auto& t : cfg.tunnels) {
    if (!t.secret_environment.empty()) names.push_back(t.secret_environment);
    if (t.access && !t.access->token_environment.empty()) names.push_back(t.access->token_environment);
  }
  if (!cfg.admin.token_environment.empty()) names.push_back(cfg.admin.token_environment);
  return names;
}

std::vector<std::string> secret_environment_variables(const middle_config& cfg) {
  std::vector<std::string> names;
  for (auto& g : cfg.access)
    if (!g.credential.token_environment.empty()) names.push_back(g.credential.token_environment);
  if (cfg.next_hop_access && !cfg.next_hop_access->token_environment.empty())
    names.push_back(cfg.next_hop_access->token_environment);
  if (!cfg.admin.token_environment.empty()) names.push_back(cfg.admin.token_environment);
  return names;
}

void write_new_key_file(const std::string& path, lstp::key_use use) {
  // O_EXCL: a key in use is never replaced by accident; O_NOFOLLOW: nor is
  // a file a symbolic link points to.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    if (e == EEXIST)
      throw error(path + " already exists: not overwritten (a key in use would be lost); remove it first or "
                         "choose another name");
    throw error("cannot create " + path + ": " + std::strerror(e));
  }
  std::string text = lstp::new_key_text(use) + "\n";
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  Botan::secure_scrub_memory(text.data(), text.size());
  if (!ok) {
    ::unlink(path.c_str());
    throw error("cannot write " + path + ": " + std::strerror(e));
  }
}

int new_key_command(std::string_view program, lstp::key_use use, const std::string& path) {
  try {
    write_new_key_file(path, use);
  } catch (const error& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
  const bool secret = use == lstp::key_use::tunnel_secret;
  std::cout << "wrote a new " << (secret ? "tunnel secret" : "access token") << " to " << path << " (mode 0600); "
            << (secret ? "copy it to the other end of the tunnel (secret_file)"
                       : "list it in the middle proxy's access and give a copy to whoever may use it (token_file)")
            << ", over a channel you trust\n";
  return 0;
}

}  // namespace config
