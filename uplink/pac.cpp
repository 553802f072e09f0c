#include "uplink/pac.hpp"

#include <algorithm>
#include <cctype>

namespace uplink {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::vector<pac_route> parse_pac_answer(std::string_view answer, std::vector<std::string>* skipped) {
  std::vector<pac_route> out;
  auto note = [&](std::string why) {
    if (skipped) skipped->push_back(std::move(why));
  };
  while (!answer.empty()) {
    const auto semi = answer.find(';');
    const auto item = trim(answer.substr(0, semi));
    answer = semi == std::string_view::npos ? std::string_view() : answer.substr(semi + 1);
    if (item.empty()) continue;
    const auto space = item.find_first_of(" \t");
    const auto word = upper(item.substr(0, space));
    const auto where = space == std::string_view::npos ? std::string_view() : trim(item.substr(space));
    if (word == "DIRECT") {
      if (std::find(out.begin(), out.end(), pac_route{}) == out.end()) out.push_back(pac_route{});
      continue;
    }
    proxy p;
    if (word == "PROXY" || word == "HTTP")
      p.kind = proxy_kind::http;
    else if (word == "SOCKS" || word == "SOCKS5")
      p.kind = proxy_kind::socks5;
    else if (word == "SOCKS4")
      p.kind = proxy_kind::socks4a;
    else {
      note(quote(std::string(item)) + " (lstp does not speak " + quote(word) + " proxies)");
      continue;
    }
    try {
      p.at = parse_endpoint(std::string(where));
    } catch (const bad_way&) {
      note(quote(std::string(item)) + " (expected host:port)");
      continue;
    }
    // A host name or an address, nothing a URL would read otherwise.
    if (p.at.host.empty() || !std::all_of(p.at.host.begin(), p.at.host.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ':' || c == '_';
        })) {
      note(quote(std::string(item)) + " (expected host:port)");
      continue;
    }
    pac_route r{p};
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(std::move(r));
  }
  return out;
}

pac_query pac_query_for(const endpoint& middle, carrier how) {
  const bool plain = is_plain_web(how);
  const bool default_port = middle.port == (plain ? 80 : 443);
  std::string host = middle.host.find(':') != std::string::npos ? "[" + middle.host + "]" : middle.host;
  std::string url = (plain ? "http://" : "https://") + host;
  if (!default_port) url += ":" + std::to_string(middle.port);
  return {url + "/", middle.host};
}

std::vector<pac_source> wpad_sources(std::string_view resolv_conf) {
  std::vector<std::string> domains;
  while (!resolv_conf.empty()) {
    const auto nl = resolv_conf.find('\n');
    auto line = trim(resolv_conf.substr(0, nl));
    resolv_conf = nl == std::string_view::npos ? std::string_view() : resolv_conf.substr(nl + 1);
    const auto space = line.find_first_of(" \t");
    if (space == std::string_view::npos) continue;
    const auto key = line.substr(0, space);
    if (key != "search" && key != "domain") continue;
    // The last of search/domain wins (resolv.conf(5)).
    domains.clear();
    auto rest = trim(line.substr(space));
    while (!rest.empty()) {
      const auto sp = rest.find_first_of(" \t");
      auto d = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view() : trim(rest.substr(sp));
      while (!d.empty() && d.back() == '.') d.remove_suffix(1);
      const bool name = !d.empty() && std::all_of(d.begin(), d.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
      });
      if (name && std::find(domains.begin(), domains.end(), d) == domains.end()) domains.emplace_back(d);
    }
  }
  std::vector<pac_source> out;
  for (const auto& d : domains) {
    pac_source s;
    s.host = "wpad." + d;
    s.target = "/wpad.dat";
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace uplink
