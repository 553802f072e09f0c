#include "uplink/proxy_login.hpp"

#include <botan/auto_rng.h>
#include <botan/base64.h>
#include <botan/hash.h>
#include <botan/hex.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "uplink/negotiate_context.hpp"
#include "uplink/ntlm_message.hpp"

namespace uplink {

const std::string* auth_challenge::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

namespace {

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token68_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
         c == '/';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 9110 11.6.1: #challenge, where a challenge is a scheme followed by a
// token68 or by comma-separated auth-params. A comma separates both the
// parameters and the challenges: what follows a comma is a parameter when
// it is a token followed by "=", else the next challenge's scheme.
class challenge_reader {
 public:
  explicit challenge_reader(std::string_view s) : s_(s) {}

  bool read(std::vector<auth_challenge>& out) {
    for (;;) {
      while (true) {
        skip_ows();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        break;
      }
      if (i_ >= s_.size()) return true;
      auth_challenge c;
      c.scheme = lower(token());
      if (c.scheme.empty()) return false;
      const auto after_scheme = i_;
      skip_ows();
      if (i_ >= s_.size() || s_[i_] == ',') {
        out.push_back(std::move(c));
        continue;
      }
      if (i_ == after_scheme) return false;  // the scheme runs into something
      if (token68_ahead()) {
        const auto start = i_;
        while (i_ < s_.size() && is_token68_char(s_[i_])) ++i_;
        while (i_ < s_.size() && s_[i_] == '=') ++i_;
        c.token68 = std::string(s_.substr(start, i_ - start));
        out.push_back(std::move(c));
        continue;
      }
      if (!read_params(c)) return false;
      out.push_back(std::move(c));
    }
  }

 private:
  void skip_ows() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  std::string_view token() {
    const auto start = i_;
    while (i_ < s_.size() && is_tchar(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // A token68 runs to the end or to a comma; "name=value" does not.
  bool token68_ahead() const {
    auto t = i_;
    while (t < s_.size() && is_token68_char(s_[t])) ++t;
    if (t == i_) return false;
    while (t < s_.size() && s_[t] == '=') ++t;
    while (t < s_.size() && (s_[t] == ' ' || s_[t] == '\t')) ++t;
    return t >= s_.size() || s_[t] == ',';
  }
  // After a comma: is the next item a parameter (token BWS "=")?
  bool param_after(std::size_t k) const {
    auto m = k;
    while (m < s_.size() && is_tchar(s_[m])) ++m;
    if (m == k) return false;
    while (m < s_.size() && (s_[m] == ' ' || s_[m] == '\t')) ++m;
    return m < s_.size() && s_[m] == '=';
  }

  bool read_params(auth_challenge& c) {
    for (;;) {
      auto name = lower(token());
      if (name.empty()) return false;
      skip_ows();
      if (i_ >= s_.size() || s_[i_] != '=') return false;
      ++i_;
      skip_ows();
      std::string value;
      if (i_ < s_.size() && s_[i_] == '"') {
        ++i_;
        bool closed = false;
        while (i_ < s_.size()) {
          char ch = s_[i_++];
          if (ch == '"') {
            closed = true;
            break;
          }
          if (ch == '\\') {
            if (i_ >= s_.size()) return false;
            ch = s_[i_++];
          }
          value.push_back(ch);
        }
        if (!closed) return false;
      } else {
        value = std::string(token());
        if (value.empty()) return false;
      }
      c.params.emplace_back(std::move(name), std::move(value));
      skip_ows();
      if (i_ >= s_.size()) return true;
      if (s_[i_] != ',') return false;
      auto k = i_;
      while (k < s_.size() && (s_[k] == ',' || s_[k] == ' ' || s_[k] == '\t')) ++k;
      if (k >= s_.size()) {
        i_ = k;
        return true;
      }
      if (!param_after(k)) {
        i_ = k;  // the next challenge
        return true;
      }
      i_ = k;
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string base64(std::string_view s) {
  return Botan::base64_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

std::string random_cnonce() {
  Botan::AutoSeeded_RNG rng;
  std::uint8_t b[16];
  rng.randomize(b, sizeof b);
  return Botan::base64_encode(b, sizeof b);
}

bool offers(const std::vector<auth_challenge>& offered, std::string_view scheme) {
  return std::any_of(offered.begin(), offered.end(), [&](const auth_challenge& c) { return c.scheme == scheme; });
}

const auth_challenge* find(const std::vector<auth_challenge>& offered, std::string_view scheme) {
  for (const auto& c : offered)
    if (c.scheme == scheme) return &c;
  return nullptr;
}

// "DOMAIN\user" names a Windows domain; anything else is the user alone.
std::pair<std::string, std::string> domain_and_user(const std::string& name) {
  const auto slash = name.find('\\');
  if (slash == std::string::npos) return {"", name};
  return {name.substr(0, slash), name.substr(slash + 1)};
}

}  // namespace

login_hooks default_login_hooks() {
  login_hooks h;
  h.cnonce = random_cnonce;
  auto context = std::make_shared<negotiate_context>();
  h.negotiate = [context](const std::string& host, const std::string& server_token, std::string& why) {
    return context->step(host, server_token, why);
  };
  return h;
}

bool parse_challenges(std::string_view value, std::vector<auth_challenge>& out) {
  return challenge_reader(value).read(out);
}

std::optional<std::string> digest_authorization(const auth_challenge& c, const std::string& username,
                                                const std::string& password, const std::string& method,
                                                const std::string& uri, const std::string& cnonce,
                                                std::string& why, std::uint32_t count) {
  const auto* realm = c.param("realm");
  const auto* nonce = c.param("nonce");
  if (!realm || !nonce) {
    why = "its Digest challenge has no realm or nonce";
    return std::nullopt;
  }
  const auto* algorithm_param = c.param("algorithm");
  auto algorithm = lower(algorithm_param ? *algorithm_param : "MD5");
  bool sess = false;
  if (algorithm.size() > 5 && algorithm.ends_with("-sess")) {
    sess = true;
    algorithm.resize(algorithm.size() - 5);
  }
  std::string hash_name;
  if (algorithm == "md5")
    hash_name = "MD5";
  else if (algorithm == "sha-256")
    hash_name = "SHA-256";
  else if (algorithm == "sha-512-256")
    hash_name = "SHA-512-256";
  else {
    why = "its Digest challenge asks for an unknown algorithm " + quote(algorithm_param ? *algorithm_param : "");
    return std::nullopt;
  }
  auto hash = Botan::HashFunction::create(hash_name);
  if (!hash) {
    why = "this build has no " + hash_name + " for Digest";
    return std::nullopt;
  }
  auto h = [&](const std::string& s) {
    hash->update(s);
    const auto d = hash->final();
    return Botan::hex_encode(d.data(), d.size(), false);
  };

  std::string qop;
  if (const auto* offered = c.param("qop")) {
    // A list such as "auth, auth-int": only auth (no body to sign).
    std::string_view rest = *offered;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (lower(item) == "auth") qop = "auth";
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (qop.empty()) {
      why = "its Digest challenge offers only qop " + quote(*offered) + " (lstp signs with qop=auth)";
      return std::nullopt;
    }
  }

  const bool userhash = c.param("userhash") && lower(*c.param("userhash")) == "true";
  char nc_text[9];
  std::snprintf(nc_text, sizeof nc_text, "%08x", count);
  const std::string nc = nc_text;
  std::string ha1 = h(username + ":" + *realm + ":" + password);
  if (sess) ha1 = h(ha1 + ":" + *nonce + ":" + cnonce);
  const std::string ha2 = h(method + ":" + uri);
  const std::string response =
      qop.empty() ? h(ha1 + ":" + *nonce + ":" + ha2) : h(ha1 + ":" + *nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2);

  std::string out = "Digest username=" + quoted(userhash ? h(username + ":" + *realm) : username) +
                    ", realm=" + quoted(*realm) + ", uri=" + quoted(uri);
  if (algorithm_param) out += ", algorithm=" + *algorithm_param;
  out += ", nonce=" + quoted(*nonce);
  if (!qop.empty()) out += ", nc=" + nc + ", cnonce=" + quoted(cnonce) + ", qop=" + qop;
  out += ", response=" + quoted(response);
  if (const auto* opaque = c.param("opaque")) out += ", opaque=" + quoted(*opaque);
  if (userhash) out += ", userhash=true";
  return out;
}

proxy_login::proxy_login(const uplink::proxy& proxy, std::string target, login_hooks hooks)
    : proxy_(proxy), target_(std::move(target)), hooks_(std::move(hooks)) {}

proxy_login::next proxy_login::fail(std::string why) {
  why_ = std::move(why);
  header_.clear();
  return next::give_up;
}

proxy_login::next proxy_login::answer(const std::vector<auth_challenge>& offered) {
  // Every scheme ends in a few legs (NTLM: two; Digest: one, plus one for a
  // stale nonce); a proxy that keeps asking is refusing.
  if (++rounds_ > 4) return fail("it keeps asking for a login (" + scheme_ + ")");
  if (scheme_.empty()) {
    if (offers(offered, "negotiate") && hooks_.negotiate) {
      // Tried first, as browsers do: it needs no password at all. Without a
      // ticket the login goes on with the next scheme offered (compute()).
      scheme_ = "negotiate";
      offered_ = offered;
      negotiate_server_token_.clear();
      return next::compute;
    }
    return choose(offered, {});
  }
  if (scheme_ == "ntlm") {
    const auto* c = find(offered, "ntlm");
    if (rounds_ == 2 && c && !c->token68.empty()) {
      const auto [domain, user] = domain_and_user(proxy_.username);
      std::string why;
      auto msg = ntlm_authenticate_message(c->token68, user, domain, proxy_.password, why);
      if (!msg) return fail("its NTLM challenge is not usable: " + why);
      header_ = "NTLM " + *msg;
      return next::send;
    }
    return fail("it refused the NTLM login (user name, domain or password)");
  }
  if (scheme_ == "digest") {
    const auto* c = find(offered, "digest");
    // stale=true: the nonce expired, the password was right (RFC 7616 3.3).
    if (c && c->param("stale") && lower(*c->param("stale")) == "true" && rounds_ <= 3) return digest(*c);
    return fail("it refused the user name or password (Digest)");
  }
  if (scheme_ == "negotiate") {
    const auto* c = find(offered, "negotiate");
    if (c && !c->token68.empty()) {
      negotiate_server_token_ = c->token68;
      return next::compute;
    }
    return fail("it refused the Kerberos ticket (Negotiate)");
  }
  return fail("it refused the user name or password (Basic)");
}

// The first answer, by a scheme that needs no GSSAPI step.
proxy_login::next proxy_login::choose(const std::vector<auth_challenge>& offered, const std::string& kerberos_why) {
  const bool has_user = !proxy_.username.empty();
  if (has_user && offers(offered, "ntlm")) {
    scheme_ = "ntlm";
    const auto [domain, user] = domain_and_user(proxy_.username);
    header_ = "NTLM " + ntlm_negotiate_message(user, domain);
    return next::send;
  }
  if (has_user && offers(offered, "digest")) {
    scheme_ = "digest";
    return digest(*find(offered, "digest"));
  }
  if (has_user && offers(offered, "basic")) {
    scheme_ = "basic";
    header_ = "Basic " + base64(proxy_.username + ":" + proxy_.password);
    return next::send;
  }
  scheme_.clear();
  if (offered.empty()) return fail(has_user ? "it refused the login" : "it wants a login but names no scheme");
  std::string names;
  for (const auto& c : offered) names += (names.empty() ? "" : ", ") + quote(c.scheme);
  std::string msg = "it wants a login by " + names;
  if (!kerberos_why.empty()) msg += " (Kerberos: " + kerberos_why + ")";
  if (!has_user)
    msg += offers(offered, "negotiate") && !hooks_.negotiate ? "; this build has no Kerberos"
                                                             : "; give a user name and password in the proxy URL";
  else
    msg += ", none of which lstp can use";
  return fail(msg);
}

void proxy_login::compute() {
  std::string why;
  auto token = hooks_.negotiate ? hooks_.negotiate(proxy_.at.host, negotiate_server_token_, why) : std::nullopt;
  if (token) {
    header_ = "Negotiate " + *token;
    return;
  }
  if (why.empty()) why = "no token";
  // No ticket at the first leg: another scheme the proxy offered, if any.
  if (rounds_ == 1) {
    choose(offered_, why);
    return;
  }
  fail("Kerberos: " + why);
}

proxy_login::next proxy_login::digest(const auth_challenge& c) {
  std::string why;
  auto value = digest_authorization(c, proxy_.username, proxy_.password, "CONNECT", target_,
                                    hooks_.cnonce ? hooks_.cnonce() : random_cnonce(), why);
  if (!value) return fail(why);
  header_ = std::move(*value);
  return next::send;
}

}  // namespace uplink

namespace uplink {

request_login::request_login(const uplink::proxy& proxy, login_hooks hooks)
    : proxy_(proxy), hooks_(std::move(hooks)) {}

bool request_login::challenged(const std::vector<std::string>& proxy_authenticate) {
  std::vector<auth_challenge> offered;
  for (const auto& v : proxy_authenticate) parse_challenges(v, offered);
  if (proxy_.username.empty()) {
    why_ = "it wants a login; give a user name and password in the proxy URL (the http carrier logs in by Basic or "
           "Digest)";
    return false;
  }
  // A Digest answer refused for a stale nonce is answered again, with the
  // new nonce; a login refused once more is refused for good.
  const auto* d = find(offered, "digest");
  const bool stale = d && d->param("stale") && lower(*d->param("stale")) == "true";
  if (!scheme_.empty() && !(scheme_ == "digest" && stale && stale_retries_++ < 3)) {
    why_ = "it refused the user name or password (" + std::string(scheme_ == "digest" ? "Digest" : "Basic") + ")";
    return false;
  }
  if (d) {
    std::string why;
    // Checked now, so a challenge lstp cannot answer is told at once.
    if (!digest_authorization(*d, proxy_.username, proxy_.password, "GET", "/", "x", why)) {
      why_ = why;
      return false;
    }
    scheme_ = "digest";
    digest_ = *d;
    count_ = 0;
    cnonce_ = hooks_.cnonce ? hooks_.cnonce() : "lstp";
    return true;
  }
  if (offers(offered, "basic")) {
    scheme_ = "basic";
    return true;
  }
  std::string names;
  for (const auto& c : offered) names += (names.empty() ? "" : ", ") + quote(c.scheme);
  why_ = "it wants a login by " + (names.empty() ? std::string("no scheme it names") : names) +
         "; the http carrier logs in by Basic or Digest only (NTLM and Kerberos sign a connection, and its requests "
         "go on any)";
  return false;
}

std::string request_login::authorization(std::string_view method, std::string_view uri) {
  if (scheme_ == "basic") return "Basic " + base64(proxy_.username + ":" + proxy_.password);
  if (scheme_ != "digest") return {};
  std::string why;
  auto h = digest_authorization(digest_, proxy_.username, proxy_.password, std::string(method), std::string(uri),
                                cnonce_, why, ++count_);
  return h ? *h : std::string();
}

}  // namespace uplink
