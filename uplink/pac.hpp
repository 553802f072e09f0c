// Proxy discovery by PAC file (seeds 001, 003): what a PAC file's
// FindProxyForURL answers, as ways out, and where WPAD looks for one.
// Sans-I/O; fetching (pac_fetch.hpp) and evaluating (pac_evaluator.hpp)
// are the edges.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "uplink/ways.hpp"

namespace uplink {

// One answer of FindProxyForURL: DIRECT, or a proxy to go through.
struct pac_route {
  std::optional<uplink::proxy> through;  // empty: DIRECT
  bool operator==(const pac_route&) const = default;
};

// "PROXY a:8080; SOCKS b:1080; DIRECT" -> the routes in order. PROXY and
// HTTP are HTTP proxies (CONNECT), SOCKS and SOCKS5 SOCKS5, SOCKS4 SOCKS4a;
// HTTPS proxies (TLS to the proxy) are skipped, with a note in `skipped`.
// An answer that says nothing usable is an empty list.
std::vector<pac_route> parse_pac_answer(std::string_view answer, std::vector<std::string>* skipped = nullptr);

// The URL and host a PAC file is asked about for a middle: the hop looks
// like HTTPS except on the ws carrier (plain HTTP).
struct pac_query {
  std::string url;
  std::string host;
  bool operator==(const pac_query&) const = default;
};
pac_query pac_query_for(const uplink::endpoint& middle, uplink::carrier how);

// WPAD (the DNS form): http://wpad.<domain>/wpad.dat for each search
// domain of resolv.conf ("search" and "domain" lines), in order, once each.
std::vector<pac_source> wpad_sources(std::string_view resolv_conf);

}  // namespace uplink
