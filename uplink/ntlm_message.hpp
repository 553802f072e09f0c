// NTLM's two client messages (MS-NLMP 2.2.1.1 NEGOTIATE and 2.2.1.3
// AUTHENTICATE), base64 as Proxy-Authorization carries them, made by
// Debian's libntlm. The server's CHALLENGE is checked here before libntlm
// reads it: it comes from the network.
#pragma once

#include <optional>
#include <string>

namespace uplink {

// Type 1: "I want to log in as user (of domain)".
std::string ntlm_negotiate_message(const std::string& user, const std::string& domain);
// Type 3, answering the base64 type 2 `challenge`; nullopt with `why` when
// the challenge is not a well-formed NTLM CHALLENGE or a name is too long.
std::optional<std::string> ntlm_authenticate_message(const std::string& challenge, const std::string& user,
                                                     const std::string& domain, const std::string& password,
                                                     std::string& why);

}  // namespace uplink
