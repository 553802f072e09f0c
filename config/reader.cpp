#include "config/reader.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <system_error>

namespace config::reader {

bool is_ip_address(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool is_loopback_host(const std::string& s) {
  if (s == "localhost") return true;
  unsigned char buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) return buf[0] == 127;
  static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ::inet_pton(AF_INET6, s.c_str(), buf) == 1 && std::equal(buf, buf + 16, v6_loopback);
}

std::string quote(std::string_view s) { return uplink::quote(s); }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::uint64_t> to_unsigned(std::string_view digits) { return uplink::to_unsigned(digits); }

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

section sub_section(const source& src, const field& f, std::initializer_list<std::string_view> allowed) {
  return section(src, f.value, f.key.Mark(), f.path, allowed);
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

log_level read_log_level(const field& f) {
  return read_choice<log_level>(f, {{"debug", log_level::debug},
                                    {"info", log_level::info},
                                    {"warn", log_level::warn},
                                    {"error", log_level::error}});
}

log_format read_log_format(const field& f) {
  return read_choice<log_format>(f, {{"plain", log_format::plain}, {"json", log_format::json}});
}

const char* role_name(end_role r) {
  switch (r) {
    case end_role::client: return "client";
    case end_role::server: return "server";
    case end_role::both: return "both";
  }
  return "?";
}

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

// A stop must not hang a service manager: at most a minute of grace.
std::chrono::milliseconds read_shutdown_grace(const field& f) {
  const auto grace = read_duration(f);
  if (grace > std::chrono::minutes(1)) f.fail("must be at most 60s");
  return grace;
}

}  // namespace config::reader
