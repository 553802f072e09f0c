// The toolkit the configuration readers share: a YAML file as a source
// of messages with line numbers, a map checked for unknown and duplicate
// keys, and readers for the value types (names, endpoints, durations,
// sizes, counts, ways). Internal to config/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace config::reader {

// Values are echoed back in messages so the user sees what was read, but a
// pasted blob should not flood the terminal and control bytes should not
// reach it raw. Never called on a secret or a password.
std::string quote(std::string_view s);

const char* describe(const YAML::Node& n);

std::string join_path(const std::string& parent, std::string_view child);

bool is_ip_address(const std::string& s);
// 127.0.0.0/8, ::1 or "localhost": only this host reaches a listener there.
bool is_loopback_host(const std::string& s);

bool all_digits(std::string_view s);

// Digits only, no sign, no overflow; nullopt otherwise.
std::optional<std::uint64_t> to_unsigned(std::string_view digits);

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

section sub_section(const source& src, const field& f, std::initializer_list<std::string_view> allowed);

std::string read_string(const field& f);

bool valid_name(std::string_view s);

std::string read_name(const field& f);

endpoint read_endpoint(const field& f);

// A single endpoint or a non-empty list of them, in order, without repeats.
std::vector<endpoint> read_endpoints(const source& src, const field& f);

std::chrono::milliseconds read_duration(const field& f);

std::size_t read_size(const field& f);

// Counts must be written as plain numbers: a quoted "1024" or a negative one
// is more likely a mistake than an intent, and the message says which.
std::size_t read_count(const field& f);

log_level read_log_level(const field& f);
log_format read_log_format(const field& f);

const char* role_name(end_role r);

// The single top-level map of the file.
YAML::Node load_document(const source& src);

way read_way(const field& f);

std::string read_websocket_path(const field& f);

// A stop must not hang a service manager: at most a minute of grace.
std::chrono::milliseconds read_shutdown_grace(const field& f);

// The free parse_* functions report without a location; this adds it.
template <typename Parse>
auto with_location(const field& f, Parse&& parse) {
  try {
    return parse();
  } catch (const error& e) {
    f.fail(e.what());
  }
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

}  // namespace config::reader
