// Negotiate (RFC 4559): a SPNEGO/Kerberos security context toward the
// proxy's service principal HTTP@host, made by MIT krb5's GSSAPI from the
// user's ticket cache (KRB5CCNAME, or the default one). No password is
// involved. step() may block: the first one asks the KDC for a service
// ticket, so callers run it off the I/O thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace uplink {

class negotiate_context {
 public:
  negotiate_context();
  ~negotiate_context();
  negotiate_context(const negotiate_context&) = delete;
  negotiate_context& operator=(const negotiate_context&) = delete;

  // The next token (base64) toward HTTP@host, given the server's last one
  // (base64; empty at the first step); nullopt with `why` in GSSAPI's words.
  std::optional<std::string> step(const std::string& host, const std::string& server_token, std::string& why);

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace uplink
