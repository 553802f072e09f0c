// Secrets and access credentials read from a configuration: a file
// (relative to the YAML file, bounded in size) or an environment variable,
// a generated key or a passphrase of at least 16 bytes, never readable by
// others; messages give a secret's length and where it came
// from, never the secret. Internal to config/.
#pragma once

#include <string>
#include <string_view>

#include "config/reader.hpp"
#include "lstp/secrets.hpp"

namespace config::reader {

// Under systemd (packaging/systemd), key files come through LoadCredential=:
// readable by the service's dynamic user alone, in the directory systemd
// names. A file name starting with ${CREDENTIALS_DIRECTORY} is taken from
// there; only this one variable is expanded.
std::string with_credentials_directory(const field& f, std::string name);

struct secret_value {
  lstp::parsed_secret value;
  std::string source;       // "file /etc/lstp/secret" or "environment LSTP_SECRET"
  std::string environment;  // the variable's name, when read from one
};
// `use` says what it is for: messages name it, and a generated key must be
// one made for that use.
secret_value read_secret(const source& src, const section& t, lstp::key_use use, std::string_view file_key,
                         std::string_view env_key);
// {name, token_file | token_env} from a section that allows those keys.
access_credential credential_from(const source& src, const section& a);
// {name, token_file | token_env}: what an end, or a middle for its next hop, shows.
access_credential read_access_credential(const source& src, const field& f);
// One entry of a middle's access list: a credential and, optionally, the
// tunnels it may serve.
access_grant read_access_grant(const source& src, const field& item);

// The `admin:` section: listen, token_file | token_env. A listener off
// loopback needs a token (everything there asks for it).
admin_config read_admin(const source& src, const field& f);

}  // namespace config::reader
