#include "config/config.hpp"
#include "config/from_yaml.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include "policy/names.hpp"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>

namespace config {

namespace {

bool is_ip_address(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Values are echoed back in messages so the user sees what was read, but a
// pasted blob should not flood the terminal and control bytes should not
// reach it raw. Never called on a secret or a password.
std::string quote(std::string_view s) {
  constexpr std::size_t max_shown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max_shown) out += "...";
  out += '"';
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Digits only, no sign, no overflow; nullopt otherwise.
std::optional<std::uint64_t> to_unsigned(std::string_view digits) {
  if (!all_digits(digits)) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : digits) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

const char* describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a value";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

std::string join_path(const std::string& parent, std::string_view child) {
  return parent.empty() ? std::string(child) : parent + "." + std::string(child);
}

// One YAML file being read; knows how to turn a position into a message.
struct source {
  std::string file;

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path, const std::string& what) const {
    std::string msg = file;
    if (!mark.is_null()) msg += ":" + std::to_string(mark.line + 1);
    msg += ": ";
    if (!path.empty()) msg += path + ": ";
    msg += what;
    throw error(msg);
  }
};

// A key present in a map. Errors about it point at the value when that is
// a scalar (it may sit on its own line), otherwise at the key: a null value's
// mark is the start of the next line and a block's mark is its first entry.
struct field {
  const source* src = nullptr;
  YAML::Node key;
  YAML::Node value;
  std::string path;

  YAML::Mark mark() const {
    if (value.IsScalar() && !value.Mark().is_null()) return value.Mark();
    return key.Mark();
  }
  [[noreturn]] void fail(const std::string& what) const { src->fail(mark(), path, what); }
};

// A YAML map checked up front: every key must be a known, unique scalar.
// Unknown keys are refused because they are nearly always typos that would
// otherwise silently leave a default in place; duplicates because yaml-cpp
// keeps the first and drops the second without a word.
class section {
 public:
  // `where` is the mark to report section-level errors (missing keys) at:
  // the section's own key in its parent, or the document for the top level.
  section(const source& src, const YAML::Node& node, YAML::Mark where, std::string path,
          std::initializer_list<std::string_view> allowed)
      : src_(src), where_(where), path_(std::move(path)) {
    if (node.IsNull()) return;  // "limits:" with everything commented out
    if (!node.IsMap()) src_.fail(where_, path_, std::string("expected a map of settings, got ") + describe(node));
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) src_.fail(key.Mark(), path_, "keys must be plain names");
      const std::string& name = key.Scalar();
      const std::string p = join_path(path_, name);
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string list;
        for (auto a : allowed) {
          if (!list.empty()) list += ", ";
          list += a;
        }
        src_.fail(key.Mark(), join_path(path_, quote_key(name)), "unknown key (expected one of: " + list + ")");
      }
      for (const auto& f : fields_) {
        if (f.key.Scalar() == name) {
          src_.fail(key.Mark(), p, "duplicate key (first given on line " + std::to_string(f.key.Mark().line + 1) + ")");
        }
      }
      fields_.push_back(field{&src_, key, it->second, p});
    }
  }

  const field* find(std::string_view name) const {
    for (const auto& f : fields_) {
      if (f.key.Scalar() == name) return &f;
    }
    return nullptr;
  }

  const field& require(std::string_view name) const {
    if (const field* f = find(name)) return *f;
    fail("missing key \"" + std::string(name) + "\"");
  }

  [[noreturn]] void fail(const std::string& what) const { src_.fail(where_, path_, what); }
  const std::string& path() const { return path_; }

 private:
  // Unknown keys are shown as typed unless they contain something odd.
  static std::string quote_key(const std::string& name) {
    const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
    return plain ? name : quote(name);
  }

  const source& src_;
  YAML::Mark where_;
  std::string path_;
  std::vector<field> fields_;
};

section sub_section(const source& src, const field& f, std::initializer_list<std::string_view> allowed) {
  return section(src, f.value, f.key.Mark(), f.path, allowed);
}

// The free parse_* functions report without a location; this adds it.
template <typename Parse>
auto with_location(const field& f, Parse&& parse) {
  try {
    return parse();
  } catch (const error& e) {
    f.fail(e.what());
  }
}

std::string read_string(const field& f) {
  if (!f.value.IsScalar()) f.fail(std::string("expected a string, got ") + describe(f.value));
  return f.value.Scalar();
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string read_name(const field& f) {
  std::string s = read_string(f);
  if (!valid_name(s)) f.fail("expected 1 to 64 characters of A-Z a-z 0-9 . _ -, got " + quote(s));
  return s;
}

endpoint read_endpoint(const field& f) {
  const std::string s = read_string(f);
  return with_location(f, [&] { return parse_endpoint(s); });
}

// A single endpoint or a non-empty list of them, in order, without repeats.
std::vector<endpoint> read_endpoints(const source& src, const field& f) {
  if (f.value.IsScalar()) return {read_endpoint(f)};
  if (!f.value.IsSequence()) f.fail(std::string("expected host:port or a list of them, got ") + describe(f.value));
  if (f.value.size() == 0) f.fail("expected at least one host:port");
  std::vector<endpoint> out;
  std::size_t i = 0;
  for (auto it = f.value.begin(); it != f.value.end(); ++it, ++i) {
    const YAML::Node item = *it;
    // Mark the item itself; the key is of no use in a long list.
    field item_field{&src, item, item, f.path + "[" + std::to_string(i) + "]"};
    endpoint ep = read_endpoint(item_field);
    if (std::find(out.begin(), out.end(), ep) != out.end()) item_field.fail("listed twice: " + ep.to_string());
    out.push_back(std::move(ep));
  }
  return out;
}

std::chrono::milliseconds read_duration(const field& f) {
  const std::string s = read_string(f);
  auto d = with_location(f, [&] { return parse_duration(s); });
  if (d.count() <= 0) f.fail("must be greater than 0, got " + quote(s));
  return d;
}

std::size_t read_size(const field& f) {
  const std::string s = read_string(f);
  return with_location(f, [&] { return parse_size(s); });
}

// Counts must be written as plain numbers: a quoted "1024" or a negative one
// is more likely a mistake than an intent, and the message says which.
std::size_t read_count(const field& f) {
  const std::string s = read_string(f);
  if (f.value.Tag() != "?") f.fail("expected a positive integer, got the string " + quote(s) + " (remove the quotes)");
  if (!all_digits(s)) f.fail("expected a positive integer, got " + quote(s));
  const auto v = to_unsigned(s);
  if (!v || *v > std::numeric_limits<std::size_t>::max()) f.fail("too large: " + quote(s));
  if (*v == 0) f.fail("must be greater than 0");
  return static_cast<std::size_t>(*v);
}

template <typename E>
E read_choice(const field& f, std::initializer_list<std::pair<std::string_view, E>> choices) {
  const std::string s = read_string(f);
  std::string names;
  for (const auto& [name, value] : choices) {
    if (s == name) return value;
    if (!names.empty()) names += ", ";
    names += name;
  }
  f.fail("expected one of " + names + ", got " + quote(s));
}

log_level read_log_level(const field& f) {
  return read_choice<log_level>(f, {{"debug", log_level::debug},
                                    {"info", log_level::info},
                                    {"warn", log_level::warn},
                                    {"error", log_level::error}});
}

const char* role_name(end_role r) {
  switch (r) {
    case end_role::client: return "client";
    case end_role::server: return "server";
    case end_role::both: return "both";
  }
  return "?";
}

std::string size_text(std::size_t n) { return std::to_string(n) + " bytes"; }

std::string duration_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// Reads the whole file ourselves rather than via YAML::LoadFile so that an
// unreadable file reports the OS reason, not yaml-cpp's "bad file".
std::string read_file_text(const std::string& path, std::string& why) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    why = "is a directory";
    return {};
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = errno != 0 ? std::strerror(errno) : "cannot open";
    return {};
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    why = "read error";
    return {};
  }
  why.clear();
  return text;
}

// Configuration files are small text. Checking that before yaml-cpp sees the
// bytes keeps it away from inputs it handles badly: yaml-cpp 0.7 can spin for
// a long time on invalid UTF-8 (found by tests/fuzz/config_fuzz.cpp).
constexpr std::size_t max_config_file = 1024 * 1024;

void check_text(const source& src, const std::string& text) {
  if (text.size() > max_config_file)
    throw error(src.file + ": the file is " + std::to_string(text.size()) + " bytes; a configuration is at most " +
                std::to_string(max_config_file));
  std::size_t line = 1;
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len != 0 && i + len <= text.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (!ok) throw error(src.file + ":" + std::to_string(line) + ": the file is not valid UTF-8 text");
    if (len == 1 && c < 0x20 && c != '\n' && c != '\t' && c != '\r')
      throw error(src.file + ":" + std::to_string(line) + ": control character " + std::to_string(c) +
                  " in the file; a configuration is text");
    if (c == '\n') ++line;
    i += len;
  }
}

// yaml-cpp 0.7 can spin, allocating without end, on some inputs the config
// fuzzer found: a YAML tag such as "!l,is", a ',' outside any [ ] or { }
// that starts a token (",\n"), and text right after a quoted string other
// than what may follow one (':', a comment, and in [ ] or { } ',' ']' '}'):
// "\"a\", b", "\"\"!,". None belongs in an lstp configuration
// (tags mean nothing here; such a ',' is not valid YAML), so both are refused
// before yaml-cpp sees the text. Quoted strings and comments may hold either
// character, and so may a plain value in its middle ("password: a,b!").
void refuse_unsupported_yaml(const source& src, const std::string& text) {
  std::size_t line = 1;
  char quote = 0;
  bool comment = false;
  int flow_depth = 0;
  char prev = ' ';  // last character that is not a space, on this line
  bool after_quoted = false;  // the last such character closed a quoted string
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      comment = false;
      if (quote == '\'') quote = 0;  // plain YAML lets quotes span lines; we do not need that
      prev = ' ';
      after_quoted = false;
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (c == quote) {
        quote = 0;
        after_quoted = true;
      } else if (c == '\\' && quote == '"') {
        ++i;
      }
      continue;
    }
    if (after_quoted && c != ' ' && c != '\t' && c != '\r' && c != ':' && c != '#' &&
        !(flow_depth > 0 && (c == ',' || c == ']' || c == '}')))
      throw error(src.file + ":" + std::to_string(line) + ": YAML syntax error: unexpected '" + std::string(1, c) +
                  "' after a quoted string");
    const bool token_start = prev == ' ' || prev == ':' || prev == '-' || prev == '[' || prev == '{' ||
                             prev == ',' || prev == '?';
    const bool after_space = i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n';
    if (c == '#' && after_space) comment = true;
    else if ((c == '"' || c == '\'') && token_start) quote = c;
    else if (c == '!' && token_start && after_space)
      throw error(src.file + ":" + std::to_string(line) +
                  ": YAML tags (!...) are not used in lstp configurations; quote the value if it starts with !");
    else if ((c == '&' || c == '*') && token_start && after_space)
      // Anchors and aliases: yaml-cpp spun on "&!\"66...6," too.
      throw error(src.file + ":" + std::to_string(line) +
                  ": YAML anchors and aliases (& and *) are not used in lstp configurations; quote the value if it "
                  "starts with & or *");
    else if (c == '[' || c == '{') ++flow_depth;
    else if ((c == ']' || c == '}') && flow_depth > 0) --flow_depth;
    else if (c == ',' && flow_depth == 0 &&
             (token_start || !(std::isalnum(static_cast<unsigned char>(prev)) ||
                               (prev != '\0' && std::strchr("._-/", prev) != nullptr))))
      // Outside [ ] and { } a ',' is kept only in the middle of a plain value
      // after a letter, digit or one of . _ - / ("a,b"); yaml-cpp spun on the
      // others the fuzzer tried ("&!\",").
      throw error(src.file + ":" + std::to_string(line) +
                  ": YAML syntax error: unexpected ',' (quote a value that holds one)");
    if (c != ' ' && c != '\t') {
      prev = c;
      after_quoted = false;
    }
  }
}

// yaml-cpp 0.7 spins, allocating without end, on more malformed shapes than
// the checks above can name (the fuzzer keeps finding new ones). So the text
// is parsed once in a child process first, which is killed if it takes
// longer than `limit`: a broken file then gets an error, never a hang. A
// valid configuration parses in milliseconds.
bool parses_in_time(const std::string& text, std::chrono::milliseconds limit) {
  const pid_t child = ::fork();
  if (child < 0) return true;  // cannot check: parse as before
  if (child == 0) {
    try {
      (void)YAML::LoadAll(text);
    } catch (...) {
    }
    ::_exit(0);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return false;
    }
    ::usleep(1000);
  }
  return true;
}

// The single top-level map of the file.
YAML::Node load_document(const source& src) {
  std::string why;
  const std::string text = read_file_text(src.file, why);
  if (!why.empty()) throw error(src.file + ": cannot read: " + why);
  check_text(src, text);
  refuse_unsupported_yaml(src, text);
  if (!parses_in_time(text, std::chrono::seconds(2)))
    throw error(src.file + ": YAML syntax error: the YAML parser did not finish within 2 s on this text (a known "
                "yaml-cpp fault with some malformed files); check quotes, commas and special characters");
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    // e.what() carries yaml-cpp's own prefix; rebuild it in our format.
    throw error(src.file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                ": YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw error(src.file + ": cannot read: " + e.msg);
  }
  if (docs.empty() || docs[0].IsNull()) throw error(src.file + ":1: the file is empty; expected a map of settings");
  // A second document would be ignored silently; say so instead.
  if (docs.size() > 1) src.fail(docs[1].Mark(), "", "expected one YAML document, found " + std::to_string(docs.size()));
  if (!docs[0].IsMap()) src.fail(docs[0].Mark(), "", std::string("expected a map of settings, got ") + describe(docs[0]));
  return docs[0];
}

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

way read_way(const field& f) {
  const std::string s = read_string(f);
  return with_location(f, [&] { return parse_way(s); });
}

std::string read_websocket_path(const field& f) {
  std::string p = read_string(f);
  const bool ok = !p.empty() && p.front() == '/' && p.size() <= 200 && std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("/-._~").find(c) != std::string_view::npos;
  });
  if (!ok) f.fail("expected a path like /lstp (letters, digits and /-._~), got " + quote(p));
  return p;
}

// One value or a non-empty list of them: `one` is called for each, with a
// field whose path names its index ("tunnel.ways[1]").
template <class One>
void for_each_item(const source& src, const field& f, const std::string& expected, One&& one) {
  if (f.value.IsScalar()) {
    one(f);
  } else if (f.value.IsSequence() && f.value.size() > 0) {
    std::size_t i = 0;
    for (auto it = f.value.begin(); it != f.value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      one(field{&src, item, item, f.path + "[" + std::to_string(i) + "]"});
    }
  } else {
    f.fail(expected + describe(f.value));
  }
}

// A secret read from a file (relative to the YAML file) or an environment
// variable, trailing white space removed, at least 16 bytes. Messages give
// its length and where it came from, never the secret.
struct secret_value {
  std::string value;
  std::string source;  // "file /etc/lstp/secret" or "environment LSTP_SECRET"
};
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

void load_tunnel(const source& src, const field& tf, end_config& cfg) {
  const section t = sub_section(src, tf, {"name", "secret_file", "secret_env", "access", "middle", "ways", "proxy", "state_file",
                                          "websocket_path", "retry_interval", "retry_max", "way_timeout",
                                          "reprobe_interval"});
  cfg.tunnel_name = read_name(t.require("name"));
  if (cfg.tunnel_name == routing::direct || cfg.tunnel_name == routing::refuse)
    t.require("name").fail("a tunnel may not be called \"" + cfg.tunnel_name + "\" (a word of the routes)");

  const auto secret = read_secret(src, t, "secret", "secret_file", "secret_env",
                                  "head -c 32 /dev/urandom | base64");
  cfg.secret = secret.value;
  cfg.secret_source = secret.source;
  if (const field* f = t.find("access")) cfg.access = read_access_credential(src, *f);

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
    if (text == "env")
      cfg.proxy_from_environment = true;
    else
      cfg.ways_proxy = with_location(*f, [&] { return parse_proxy_url(text); });
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
    cfg.state_file = default_state_file(cfg.name);
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
  const section s = sub_section(src, sf, {"listen", "users", "timeout"});
  cfg.socks_listen = read_endpoints(src, s.require("listen"));
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
}

// A stop must not hang a service manager: at most a minute of grace.
std::chrono::milliseconds read_shutdown_grace(const field& f) {
  const auto grace = read_duration(f);
  if (grace > std::chrono::minutes(1)) f.fail("must be at most 60s");
  return grace;
}

void load_end_limits(const source& src, const field& lf, limits& lim) {
  const section l = sub_section(src, lf,
                                {"high_watermark", "low_watermark", "pause_slack", "max_channels", "max_connections",
                                 "max_openings", "max_tunnel_buffer", "keepalive", "dead_after", "handshake_timeout",
                                 "shutdown_grace"});
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

namespace {
// uplink reports a bad way without our error type; the message is the same.
template <typename Parse>
auto as_config_error(Parse&& parse) {
  try {
    return parse();
  } catch (const uplink::bad_way& e) {
    throw error(e.what());
  }
}
}  // namespace

endpoint parse_endpoint(const std::string& text) {
  return as_config_error([&] { return uplink::parse_endpoint(text); });
}
proxy parse_proxy_url(const std::string& text) {
  return as_config_error([&] { return uplink::parse_proxy_url(text); });
}
way parse_way(const std::string& text) {
  return as_config_error([&] { return uplink::parse_way(text); });
}

std::chrono::milliseconds parse_duration(const std::string& text) {
  const auto bad = [&]() -> error { return error("expected a duration like 10s or 250ms, got " + quote(text)); };
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::string_view digits = std::string_view(text).substr(0, i);
  const std::string_view unit = std::string_view(text).substr(i);
  if (digits.empty()) throw bad();
  std::uint64_t ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60 * 1000;
  } else if (unit == "h") {
    ms_per_unit = 60 * 60 * 1000;
  } else {
    throw bad();
  }
  // A year is far beyond any sensible timeout and keeps now() + d far from
  // overflowing a clock's representation.
  constexpr std::uint64_t max_ms = 365ULL * 24 * 60 * 60 * 1000;
  const auto n = to_unsigned(digits);
  if (!n || *n > max_ms / ms_per_unit) throw error("too long (at most 8760h): " + quote(text));
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*n * ms_per_unit));
}

std::size_t parse_size(const std::string& text) {
  const auto bad = [&]() -> error { return error("expected a size like 65536, 64KiB or 8MiB, got " + quote(text)); };
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::string_view digits = std::string_view(text).substr(0, i);
  const std::string_view unit = std::string_view(text).substr(i);
  if (digits.empty()) throw bad();
  std::uint64_t mult = 0;
  if (unit.empty()) {
    mult = 1;
  } else if (unit == "KiB") {
    mult = 1ULL << 10;
  } else if (unit == "MiB") {
    mult = 1ULL << 20;
  } else if (unit == "GiB") {
    mult = 1ULL << 30;
  } else {
    throw bad();  // "KB"/"MB" are refused rather than guessed at (1000 or 1024?)
  }
  const auto n = to_unsigned(digits);
  if (!n || *n > std::numeric_limits<std::size_t>::max() / mult) throw error("too large: " + quote(text));
  return static_cast<std::size_t>(*n * mult);
}

middle_config load_middle(const std::string& path) {
  const source src{path};
  return middle_from_yaml(load_document(src), path);
}

middle_config middle_from_yaml(const YAML::Node& root, const std::string& path) {
  const source src{path};
  const section top(src, root, root.Mark(), "",
                    {"name", "listen", "public_address", "access", "access_window", "next_hop", "next_hop_way",
                     "next_hop_access", "websocket_path", "tls_certificate", "tls_private_key", "limits", "log_level"});
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
      std::filesystem::path p(read_string(*f));
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
  return cfg;
}

namespace {
// Each further tunnel is the end's config with its own tunnel fields copied
// in, by this list. A field added to end_config changes its size: then check
// whether it belongs to a tunnel (copy it here) and update the number.
static_assert(sizeof(void*) != 8 || sizeof(end_config) == 936,
              "end_config changed: does copy_tunnel_fields need the new field?");
void copy_tunnel_fields(end_config& into, const end_config& from) {
  into.tunnel_name = from.tunnel_name;
  into.secret = from.secret;
  into.secret_source = from.secret_source;
  into.access = from.access;
  into.middles = from.middles;
  into.ways = from.ways;
  into.ways_proxy = from.ways_proxy;
  into.proxy_from_environment = from.proxy_from_environment;
  into.state_file = from.state_file;
  into.websocket_path = from.websocket_path;
  into.retry_interval = from.retry_interval;
  into.retry_max = from.retry_max;
  into.way_timeout = from.way_timeout;
  into.reprobe_interval = from.reprobe_interval;
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
                     "limits", "log_level"});
  end_config cfg;
  cfg.file = path;
  cfg.name = read_name(top.require("name"));
  cfg.role = read_choice<end_role>(top.require("role"), {{"client", end_role::client},
                                                         {"server", end_role::server},
                                                         {"both", end_role::both}});
  // One tunnel, or a list of them (routes then choose per request).
  std::vector<end_config> tunnel_list;
  const field* one_tunnel = top.find("tunnel");
  const field* tunnels = top.find("tunnels");
  if (one_tunnel && tunnels) top.fail("give either \"tunnel\" or \"tunnels\" (a list), not both");
  if (!one_tunnel && !tunnels) top.fail("missing key \"tunnel\" (or \"tunnels\", a list of them)");
  if (one_tunnel) {
    load_tunnel(src, *one_tunnel, cfg);
  } else {
    if (!tunnels->value.IsSequence() || tunnels->value.size() == 0)
      tunnels->fail("expected a list of tunnels, each with name, secret_file or secret_env, and middle");
    std::size_t i = 0;
    for (auto it = tunnels->value.begin(); it != tunnels->value.end(); ++it, ++i) {
      const YAML::Node item = *it;
      const field item_field{&src, item, item, tunnels->path + "[" + std::to_string(i) + "]"};
      end_config t;
      t.name = cfg.name;
      load_tunnel(src, item_field, t);
      // Routes and host.<tunnel>.lstp names compare tunnel names in any letter case.
      for (auto& prev : tunnel_list)
        if (policy::ascii_lower(prev.tunnel_name) == policy::ascii_lower(t.tunnel_name))
          item_field.fail("tunnel " + t.tunnel_name + " is listed twice (names are compared in any letter case)");
      // Each tunnel remembers its ways in a file of its own.
      if (!item["state_file"]) t.state_file = default_state_file(cfg.name + "." + t.tunnel_name);
      tunnel_list.push_back(std::move(t));
    }
    copy_tunnel_fields(cfg, tunnel_list.front());
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

  // Routes name tunnels, so they come once every tunnel is known.
  std::vector<std::string> names{cfg.tunnel_name};
  for (std::size_t i = 1; i < tunnel_list.size(); ++i) names.push_back(tunnel_list[i].tunnel_name);
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

  for (std::size_t i = 1; i < tunnel_list.size(); ++i) {
    end_config more = cfg;
    more.more_tunnels.clear();
    copy_tunnel_fields(more, tunnel_list[i]);
    cfg.more_tunnels.push_back(std::move(more));
  }
  return cfg;
}

}  // namespace config
