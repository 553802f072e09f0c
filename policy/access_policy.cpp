#include "policy/access_policy.hpp"
#include "policy/names.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace policy {

namespace {

std::string lower(std::string_view s) { return normal_host(s); }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

unsigned to_number(std::string_view s, unsigned max, std::string_view what, std::string_view text) {
  if (!all_digits(s) || s.size() > 5) throw rule_error(std::string("bad ") + std::string(what) + " in \"" + std::string(text) + "\"");
  unsigned v = 0;
  for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
  if (v > max) throw rule_error(std::string(what) + " out of range in \"" + std::string(text) + "\"");
  return v;
}

std::vector<port_range> parse_ports(std::string_view s, std::string_view text) {
  std::vector<port_range> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    auto item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    auto dash = item.find('-');
    port_range r;
    if (dash == std::string_view::npos) {
      r.first = r.last = static_cast<std::uint16_t>(to_number(item, 65535, "port", text));
    } else {
      r.first = static_cast<std::uint16_t>(to_number(item.substr(0, dash), 65535, "port", text));
      r.last = static_cast<std::uint16_t>(to_number(item.substr(dash + 1), 65535, "port", text));
    }
    if (r.first == 0 || r.first > r.last) throw rule_error("bad port range in \"" + std::string(text) + "\"");
    out.push_back(r);
  }
  if (out.empty()) throw rule_error("no ports after ':' in \"" + std::string(text) + "\"");
  return out;
}

// "addr" or "addr/prefix" into the rule; false when it is not an address.
bool parse_network(std::string_view s, rule& r, std::string_view text) {
  auto slash = s.find('/');
  std::string addr(s.substr(0, slash));
  std::array<std::uint8_t, 16> buf{};
  if (::inet_pton(AF_INET, addr.c_str(), buf.data()) == 1) {
    r.v6 = false;
  } else if (::inet_pton(AF_INET6, addr.c_str(), buf.data()) == 1) {
    r.v6 = true;
  } else {
    if (slash != std::string_view::npos) throw rule_error("bad network in \"" + std::string(text) + "\"");
    return false;
  }
  r.what = rule::kind::network;
  r.net = buf;
  const unsigned max = r.v6 ? 128 : 32;
  r.prefix = slash == std::string_view::npos ? max : to_number(s.substr(slash + 1), max, "prefix length", text);
  return true;
}

bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

}  // namespace

bool rule::matches_port(std::uint16_t port) const {
  if (ports.empty()) return true;
  return std::any_of(ports.begin(), ports.end(), [&](auto& r) { return port >= r.first && port <= r.last; });
}

bool rule::matches_name(std::string_view host) const {
  if (what == kind::any) return true;
  if (what != kind::name) return false;
  if (!subdomains) return host == name;
  return host.size() > name.size() + 1 && host.compare(host.size() - name.size(), name.size(), name) == 0 &&
         host[host.size() - name.size() - 1] == '.';
}

bool rule::matches_address(bool is_v6, const std::uint8_t* bytes) const {
  if (what == kind::any) return true;
  if (what != kind::network || is_v6 != v6) return false;
  for (unsigned i = 0; i < prefix; ++i) {
    const auto mask = static_cast<std::uint8_t>(0x80u >> (i % 8));
    if ((bytes[i / 8] & mask) != (net[i / 8] & mask)) return false;
  }
  return true;
}

rule parse_rule(std::string_view text) {
  rule r;
  r.text = std::string(text);
  std::string_view s = text;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) throw rule_error("empty rule");
  std::string_view host = s;
  std::string_view ports;
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) throw rule_error("missing ']' in \"" + r.text + "\"");
    host = s.substr(1, close - 1);
    auto rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw rule_error("expected ':ports' after ']' in \"" + r.text + "\"");
      ports = rest.substr(1);
      r.ports = parse_ports(ports, text);
    }
    if (!parse_network(host, r, text) || !r.v6) throw rule_error("expected an IPv6 address inside [] in \"" + r.text + "\"");
    return r;
  }
  // A bare IPv6 network has several colons and takes no ports.
  if (std::count(s.begin(), s.end(), ':') >= 2) {
    if (!parse_network(s, r, text)) throw rule_error("bad IPv6 network in \"" + r.text + "\" (use [addr]:ports for ports)");
    return r;
  }
  if (auto colon = s.find(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    r.ports = parse_ports(s.substr(colon + 1), text);
  }
  if (host == "*" || host == "any") {
    r.what = rule::kind::any;
    return r;
  }
  if (parse_network(host, r, text)) return r;
  r.what = rule::kind::name;
  if (host.substr(0, 2) == "*.") {
    r.subdomains = true;
    host.remove_prefix(2);
  }
  r.name = lower(host);
  if (!valid_name(r.name)) throw rule_error("expected a network, a host name or *.domain in \"" + r.text + "\"");
  return r;
}

access_policy::access_policy(std::vector<rule> allow, std::vector<rule> deny)
    : allow_(std::move(allow)), deny_(std::move(deny)) {}

namespace {
std::string quoted(const rule& r, const char* list) { return std::string(list) + " rule \"" + r.text + "\""; }
}  // namespace

verdict access_policy::check_name(std::string_view host_in, std::uint16_t port) const {
  const auto host = lower(host_in);
  for (auto& r : deny_) {
    if (r.what == rule::kind::name && r.matches_name(host) && r.matches_port(port)) return {false, true, quoted(r, "deny")};
  }
  const bool any_network_rule = std::any_of(allow_.begin(), allow_.end(), [](auto& r) { return r.what == rule::kind::network; });
  for (auto& r : allow_) {
    if (r.what != rule::kind::network && r.matches_name(host) && r.matches_port(port)) {
      // Allowed by name; its addresses still meet the deny rules.
      return {true, false, quoted(r, "allow")};
    }
  }
  if (any_network_rule) return {false, false, {}};  // depends on what it resolves to
  return {false, true, "no allow rule matches"};
}

namespace {

// Destinations that are this host, its link or a group rather than one
// far machine: reached only where a rule names their network.
struct special_range {
  bool v6;
  std::array<std::uint8_t, 16> net;
  unsigned prefix;
  const char* what;
};

const special_range specials[] = {
    {false, {0, 0, 0, 0}, 8, "unspecified (0.0.0.0/8)"},
    {false, {127, 0, 0, 0}, 8, "loopback"},
    {false, {169, 254, 0, 0}, 16, "link-local"},
    {false, {224, 0, 0, 0}, 4, "multicast"},
    {false, {255, 255, 255, 255}, 32, "broadcast"},
    {true, {}, 128, "unspecified (::)"},
    {true, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {true, {0xfe, 0x80}, 10, "link-local"},
    {true, {0xff}, 8, "multicast"},
};

const special_range* special(bool is_v6, const std::uint8_t* address) {
  for (const auto& sp : specials) {
    rule r;
    r.what = rule::kind::network;
    r.v6 = sp.v6;
    r.net = sp.net;
    r.prefix = sp.prefix;
    if (r.matches_address(is_v6, address)) return &sp;
  }
  return nullptr;
}

// IPv6 addresses that carry an IPv4 address: what they embed and how.
enum class embedding { none, mapped, nat64, six_to_four };

embedding embedded_v4(const std::uint8_t* a, std::uint8_t* v4) {
  static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr std::uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(mapped, mapped + 12, a)) {
    std::copy(a + 12, a + 16, v4);
    return embedding::mapped;
  }
  if (std::equal(nat64, nat64 + 12, a)) {
    std::copy(a + 12, a + 16, v4);
    return embedding::nat64;
  }
  if (a[0] == 0x20 && a[1] == 0x02) {
    std::copy(a + 2, a + 6, v4);
    return embedding::six_to_four;
  }
  return embedding::none;
}

}  // namespace

std::optional<std::string> access_policy::refusal(const std::optional<std::string>& name, bool is_v6,
                                                  const std::uint8_t* address, std::uint16_t port) const {
  for (auto& r : deny_) {
    if (!r.matches_port(port)) continue;
    if (r.matches_address(is_v6, address) || (name && r.what == rule::kind::name && r.matches_name(*name)))
      return quoted(r, "deny");
  }
  if (const auto* sp = special(is_v6, address)) {
    // Only a network rule inside that range names it: "*", a name or
    // 0.0.0.0/0 do not.
    bool any_allows = false;
    for (auto& r : allow_) {
      if (!r.matches_port(port)) continue;
      if (r.what == rule::kind::network && r.prefix >= sp->prefix && r.matches_address(is_v6, address))
        return std::nullopt;
      any_allows = any_allows || r.matches_address(is_v6, address) ||
                   (name && r.what == rule::kind::name && r.matches_name(*name));
    }
    // Said when a broader rule would have let it through.
    if (!any_allows) return std::string("no allow rule matches");
    return std::string(sp->what) + " addresses are reached only where an allow rule names their network";
  }
  return std::nullopt;
}

verdict access_policy::check(std::optional<std::string_view> name_in, bool is_v6, const std::uint8_t* address,
                             std::uint16_t port) const {
  const auto name = name_in ? std::optional(lower(*name_in)) : std::nullopt;
  if (is_v6) {
    std::array<std::uint8_t, 4> v4{};
    switch (embedded_v4(address, v4.data())) {
      case embedding::mapped:
        // ::ffff:a.b.c.d is that IPv4 address: its rules decide.
        return check(name_in, false, v4.data(), port);
      case embedding::nat64:
      case embedding::six_to_four:
        // A gateway would carry it on to the IPv4 address it embeds: that
        // address must not be refused by the IPv4 rules.
        if (auto why = refusal(name, false, v4.data(), port))
          return {false, true, *why + " (embedded in the IPv6 address)"};
        break;
      case embedding::none: break;
    }
  }
  if (auto why = refusal(name, is_v6, address, port)) return {false, true, *why};
  for (auto& r : allow_) {
    if (!r.matches_port(port)) continue;
    if (r.matches_address(is_v6, address) || (name && r.what == rule::kind::name && r.matches_name(*name)))
      return {true, true, quoted(r, "allow")};
  }
  return {false, true, "no allow rule matches"};
}

}  // namespace policy
