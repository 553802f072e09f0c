#include "admin/request_rules.hpp"

#include <botan/hash.h>
#include <botan/mem_ops.h>

#include <charconv>

namespace admin {

namespace {

bool token_matches(std::string_view authorization, const std::optional<Botan::secure_vector<std::uint8_t>>& token) {
  if (!token || token->empty()) return false;
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size() || authorization.substr(0, scheme.size()) != scheme) return false;
  auto given = authorization.substr(scheme.size());
  // Compared as hashes, in constant time: the length and the first wrong
  // byte give nothing away.
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  auto a = h->process(reinterpret_cast<const std::uint8_t*>(given.data()), given.size());
  auto b = h->process(token->data(), token->size());
  return Botan::constant_time_compare(a.data(), b.data(), a.size());
}

decision fail(int status, std::string message) {
  decision d;
  d.status = status;
  d.message = std::move(message);
  return d;
}

bool digits_only(std::string_view s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::uint64_t to_number(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    unsigned v = 0;
    auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (r.ec != std::errc{} || r.ptr != s.data() + i + 3) return std::nullopt;
    if (v == 0) return std::nullopt;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

bool is_loopback_host_header(std::string_view host) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    auto end = name.find(']');
    if (end == std::string_view::npos) return false;
    name = name.substr(1, end - 1);
    return name == "::1";
  }
  if (auto colon = name.rfind(':'); colon != std::string_view::npos) name = name.substr(0, colon);
  if (name == "localhost") return true;
  // 127.0.0.0/8 written as a dotted quad.
  if (name.substr(0, 4) != "127.") return false;
  int dots = 0;
  for (char c : name) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3;
}

decision decide(const request_facts& r, const access_settings& s) {
  auto path = r.target;
  std::string_view query;
  if (auto q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }

  decision d;
  bool action = false;
  if (path == "/" || path == "/index.html") d.what = endpoint::page;
  else if (path == "/healthz") d.what = endpoint::healthz;
  else if (path == "/readyz") d.what = endpoint::readyz;
  else if (path == "/metrics") d.what = endpoint::metrics;
  else if (path == "/api/v1/status") d.what = endpoint::status;
  else if (path == "/api/v1/events") {
    d.what = endpoint::events;
    for (std::size_t at = 0; at < query.size();) {
      auto amp = query.find('&', at);
      auto part = query.substr(at, amp == std::string_view::npos ? std::string_view::npos : amp - at);
      if (part.substr(0, 6) == "after=") {
        if (!digits_only(part.substr(6))) return fail(400, "after= takes an event number");
        d.after = to_number(part.substr(6));
      }
      if (amp == std::string_view::npos) break;
      at = amp + 1;
    }
  } else if (path.substr(0, 17) == "/api/v1/channels/" && path.size() > 23 && path.ends_with("/close")) {
    auto id = path.substr(17, path.size() - 17 - 6);
    if (!digits_only(id)) return fail(404, "no such channel: channel ids are numbers (GET /api/v1/status lists them)");
    d.what = endpoint::close_channel;
    d.channel = to_number(id);
    action = true;
  } else if (path.substr(0, 16) == "/api/v1/tunnels/" && path.size() > 21 && path.ends_with("/drop")) {
    auto name = percent_decode(path.substr(16, path.size() - 16 - 5));
    if (!name || name->empty() || name->find('/') != std::string::npos) return fail(404, "no such tunnel");
    d.what = endpoint::drop_tunnel;
    d.tunnel = *name;
    action = true;
  } else {
    return fail(404, "no such page: see / for the status page, /api/v1/status, /metrics, /healthz, /readyz");
  }

  const std::string_view wanted = action ? "POST" : "GET";
  if (r.method != wanted && !(r.method == "HEAD" && !action)) {
    auto out = fail(405, std::string(r.target.substr(0, 200)) + " takes " + std::string(wanted));
    out.allow = action ? "POST" : "GET, HEAD";
    return out;
  }

  if (action && !s.token)
    return fail(403, "actions need an admin token: set admin.token_file (made by --new-token FILE)");
  const bool has_token = token_matches(r.authorization, s.token);
  if (!r.authorization.empty() && !has_token) return fail(401, "wrong admin token");

  if (action) {
    if (!has_token) return fail(401, "actions need the admin token (Authorization: Bearer ...)");
    // A browser names the page that makes it act: only the admin page's own.
    if (!r.fetch_site.empty() && r.fetch_site != "same-origin" && r.fetch_site != "none")
      return fail(403, "actions are taken only from the admin page's own origin");
    if (!r.origin.empty() && r.origin != "http://" + std::string(r.host) && r.origin != "https://" + std::string(r.host))
      return fail(403, "actions are taken only from the admin page's own origin");
    return d;
  }
  if (has_token || d.what == endpoint::page) return d;
  if (!s.loopback_listener) return fail(401, "this admin server is not on loopback: every request needs the token");
  if (!is_loopback_host_header(r.host))
    return fail(403, "the Host header does not name this loopback admin server (a foreign page through DNS rebinding?)");
  return d;
}

}  // namespace admin
