// What a server end lets the far side reach (issue 4, point 5): allow and
// deny rules over networks, host names and ports. Sans-I/O: the server end
// asks before it resolves a name and again for each address it would
// connect to. Deny rules win; what no allow rule matches is refused, so an
// empty policy allows nothing and no tunnel is an open relay by accident.
//
// Rule syntax (one string each), optionally followed by :ports
// ("22", "80,443", "8000-8100", combined with commas):
//   *                      any host                 *:443
//   10.0.0.0/8, 10.1.2.3   IPv4 network or address  10.0.0.0/8:22,80
//   [fd00::/8], [::1]      IPv6 (brackets needed when ports follow; bare
//                          fd00::/8 means all ports)
//   intranet.corp.example  that name exactly (any letter case)
//   *.corp.example         every name under corp.example (not itself)
//
// Loopback, link-local, multicast, broadcast and unspecified destinations
// are reached only where a network rule names them (127.0.0.0/8, [::1]...),
// whatever "*" or a name rule says: see check().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace policy {

class rule_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct port_range {
  std::uint16_t first = 1;
  std::uint16_t last = 65535;
};

struct rule {
  enum class kind { any, network, name };
  kind what = kind::any;
  bool v6 = false;
  std::array<std::uint8_t, 16> net{};  // network: the address bytes (4 used for IPv4)
  unsigned prefix = 0;                 // network: prefix length
  std::string name;                    // name: lower case, no trailing dot
  bool subdomains = false;             // name: "*.name"
  std::vector<port_range> ports;       // empty: every port
  std::string text;                    // as written, for logs

  bool matches_port(std::uint16_t port) const;
  bool matches_name(std::string_view host) const;  // host: lower case
  bool matches_address(bool is_v6, const std::uint8_t* bytes) const;
};

// Throws rule_error saying what is wrong.
rule parse_rule(std::string_view text);

struct verdict {
  bool allowed = false;
  bool decided = true;  // false: check_name cannot tell before resolving
  std::string why;      // "allow rule \"10.0.0.0/8\"", "deny rule \"...\"", "no allow rule matches"
};

class access_policy {
 public:
  access_policy() = default;
  access_policy(std::vector<rule> allow, std::vector<rule> deny);

  bool allows_nothing() const { return allow_.empty(); }

  // A request by name, before resolving it: refused when a deny rule names
  // it or nothing could allow it; allowed-by-name still has its addresses
  // checked against the deny rules after resolution (see check()).
  verdict check_name(std::string_view host, std::uint16_t port) const;
  // The address a connection would go to; `name` is what the request asked
  // for, if it was a name. Denied when a deny rule matches the address or
  // the name; allowed when an allow rule matches either. Special addresses
  // (unspecified, loopback, link-local, multicast, broadcast) are refused
  // unless an allow rule names their network (a network rule inside the
  // range: "*" or a name does not). An IPv4-mapped IPv6 address is checked
  // as the IPv4 address it is; a NAT64 (64:ff9b::/96) or 6to4 (2002::/16)
  // address is refused when the IPv4 address it embeds is.
  verdict check(std::optional<std::string_view> name, bool is_v6, const std::uint8_t* address,
                std::uint16_t port) const;

  const std::vector<rule>& allow_rules() const { return allow_; }
  const std::vector<rule>& deny_rules() const { return deny_; }

 private:
  // Why this address is refused whatever the allow rules say (a deny rule,
  // or a special address no rule names), or nothing.
  std::optional<std::string> refusal(const std::optional<std::string>& name, bool is_v6, const std::uint8_t* address,
                                     std::uint16_t port) const;

  std::vector<rule> allow_;
  std::vector<rule> deny_;
};

}  // namespace policy
