#include "uplink/environment_proxy.hpp"

#include <algorithm>
#include <cctype>

#include "policy/names.hpp"
#include "uplink/ip_literal.hpp"

namespace uplink {

namespace {

using policy::ascii_lower;

bool cidr_contains(const std::string& entry, const std::string& host) {
  const auto slash = entry.find('/');
  if (slash == std::string::npos) return false;
  const auto ip = parse_ip_literal(host);
  const auto net_addr = parse_ip_literal(entry.substr(0, slash));
  if (!ip || !net_addr || ip->v6 != net_addr->v6) return false;
  const auto bits_text = entry.substr(slash + 1);
  if (bits_text.empty() || bits_text.size() > 3 ||
      !std::all_of(bits_text.begin(), bits_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const auto bits = static_cast<std::size_t>(std::stoi(bits_text));
  auto prefix_equal = [bits](const auto& x, const auto& y) {
    if (bits > x.size() * 8) return false;
    for (std::size_t i = 0; i < bits; ++i) {
      const auto mask = static_cast<std::uint8_t>(0x80 >> (i % 8));
      if ((x[i / 8] & mask) != (y[i / 8] & mask)) return false;
    }
    return true;
  };
  return prefix_equal(ip->bytes, net_addr->bytes);
  return false;
}

}  // namespace

bool no_proxy_matches(const std::string& list, const std::string& host_in) {
  const std::string host = ascii_lower(host_in);
  std::size_t i = 0;
  while (i < list.size()) {
    auto j = list.find_first_of(", ", i);
    if (j == std::string::npos) j = list.size();
    std::string entry = ascii_lower(list.substr(i, j - i));
    i = j + 1;
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (entry.find('/') != std::string::npos) {
      if (cidr_contains(entry, host)) return true;
      continue;
    }
    if (entry.front() == '[' && entry.back() == ']') entry = entry.substr(1, entry.size() - 2);
    if (entry.front() == '.') entry.erase(0, 1);
    if (host == entry) return true;
    // A domain matches its subdomains: "example.com" covers "a.example.com".
    if (host.size() > entry.size() && host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
        host[host.size() - entry.size() - 1] == '.')
      return true;
  }
  return false;
}

environment_proxy proxy_from_environment(const std::string& host, bool plain_http, const env_lookup& getenv) {
  environment_proxy out;
  auto value = [&](const char* name) -> std::string {
    const char* v = getenv(name);
    return v ? std::string(v) : std::string();
  };
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    const auto list = value(name);
    if (!list.empty()) {
      if (no_proxy_matches(list, host)) {
        out.source = std::string(name) + " matches " + host;
        return out;
      }
      break;  // curl reads the first one set
    }
  }
  std::vector<const char*> names;
  if (plain_http)
    names = {"http_proxy"};
  else
    names = {"https_proxy", "HTTPS_PROXY"};
  names.push_back("all_proxy");
  names.push_back("ALL_PROXY");
  for (const char* name : names) {
    const auto url = value(name);
    if (url.empty()) continue;
    try {
      out.proxy = uplink::parse_proxy_url(url);
      out.source = name;
    } catch (const uplink::bad_way& e) {
      out.problem = std::string(name) + ": " + e.what();
    }
    return out;
  }
  out.source = "no proxy variable is set";
  return out;
}

}  // namespace uplink
