// Logging in to an HTTP proxy that answers 407 (RFC 9110 11): the proxy
// names the schemes it takes in Proxy-Authenticate, and the login answers
// the strongest it can: Negotiate (Kerberos through GSSAPI, from the user's
// ticket cache), NTLM (libntlm), Digest (RFC 7616: MD5, SHA-256,
// SHA-512-256, and their -sess forms) or Basic.
//
// Sans-I/O: answer() takes the challenges of one 407 and gives the value of
// the next request's Proxy-Authorization. Negotiate may block on the KDC,
// so its step is separate (compute(), run off the I/O thread).
// Nothing here writes a credential anywhere but into that header value.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uplink/ways.hpp"

namespace uplink {

// One challenge of a Proxy-Authenticate field: a scheme (lower case) with
// either a token68 or name=value parameters (names lower case, values
// unquoted).
struct auth_challenge {
  std::string scheme;
  std::string token68;
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* param(std::string_view name) const;
};

// Every challenge of one field value ("Digest realm=\"x\", nonce=\"y\",
// Basic realm=\"z\""), appended to `out`. False when the value does not
// parse (what parsed before the fault is kept).
bool parse_challenges(std::string_view value, std::vector<auth_challenge>& out);

// The hooks a login needs from outside: random bytes (a Digest cnonce) and
// a GSSAPI step. Tests replace them.
struct login_hooks {
  std::function<std::string()> cnonce;  // default: 16 random bytes, base64
  // Negotiate: given the service's host and the server's last token (empty
  // at the first leg), the next token, or nullopt with `why` set.
  std::function<std::optional<std::string>(const std::string& host, const std::string& server_token,
                                           std::string& why)>
      negotiate;
};
login_hooks default_login_hooks();

class proxy_login {
 public:
  // `target` is the request target of the CONNECT (host:port): Digest signs
  // it.
  proxy_login(const uplink::proxy& proxy, std::string target, login_hooks hooks = default_login_hooks());

  enum class next { send, compute, give_up };
  // The challenges of a 407 (or of a 401 from a proxy that uses it). send:
  // header() is ready; compute: call compute() (it may block), then
  // header() is ready or failed; give_up: why() says why, in words an
  // operator can act on, never with a credential.
  next answer(const std::vector<auth_challenge>& offered);
  // Negotiate's blocking step (a ticket from the KDC).
  void compute();
  bool failed() const { return !why_.empty(); }
  const std::string& header() const { return header_; }
  const std::string& why() const { return why_; }
  // The scheme in use ("basic", "digest", "ntlm", "negotiate"), empty
  // before the first 407.
  const std::string& scheme() const { return scheme_; }
  // NTLM's legs (and Negotiate's, past the first) belong to one
  // connection: the answer ready now must go on the connection that
  // carried the challenge.
  bool needs_same_connection() const { return (scheme_ == "ntlm" || scheme_ == "negotiate") && rounds_ >= 2; }

 private:
  next fail(std::string why);
  next choose(const std::vector<auth_challenge>& offered, const std::string& kerberos_why);
  next digest(const auth_challenge& c);
  next ntlm(const auth_challenge& c);

  uplink::proxy proxy_;
  std::string target_;
  login_hooks hooks_;
  std::string scheme_;
  std::string header_;
  std::string why_;  // not empty: the login failed
  int rounds_ = 0;
  std::string negotiate_server_token_;
  std::vector<auth_challenge> offered_;  // the first 407's, while Negotiate is tried
};

// Digest's response (RFC 7616 3.4.1) for tests and for proxy_login.
// Fields of the header are returned whole.
std::optional<std::string> digest_authorization(const auth_challenge& challenge, const std::string& username,
                                                const std::string& password, const std::string& method,
                                                const std::string& uri, const std::string& cnonce,
                                                std::string& why, std::uint32_t count = 1);

// Logging in to a proxy that forwards plain requests (the http carrier):
// every request carries its own Proxy-Authorization, made from the last
// 407's challenge. Basic and Digest only: NTLM and Negotiate authenticate
// a connection, and the carrier's requests go on any connection.
// Sans-I/O; no credential leaves but in header values.
class request_login {
 public:
  explicit request_login(const uplink::proxy& proxy, login_hooks hooks = default_login_hooks());
  // The Proxy-Authenticate values of a 407: true when the next request can
  // answer them; false, why() says why.
  bool challenged(const std::vector<std::string>& proxy_authenticate);
  // The value of one request's Proxy-Authorization; empty before any 407.
  std::string authorization(std::string_view method, std::string_view uri);
  const std::string& why() const { return why_; }

 private:
  uplink::proxy proxy_;
  login_hooks hooks_;
  std::string scheme_;  // "basic" or "digest", once challenged
  auth_challenge digest_;
  std::uint32_t count_ = 0;  // Digest's nc: one more for every request
  std::string cnonce_;
  int stale_retries_ = 0;
  std::string why_;
};

}  // namespace uplink
