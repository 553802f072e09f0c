#include "lstp/tls_engine.hpp"

#include <botan/credentials_manager.h>
#include <botan/rng.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_policy.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>

namespace lstp {

namespace {

constexpr const char* psk_identity_name = "lstp/1";

// ECDHE_PSK only (forward secrecy, no certificates), AEAD ciphers only,
// TLS 1.2 (the newest Botan 2 speaks). AES-128/GCM first: fastest here.
class psk_policy final : public Botan::TLS::Policy {
 public:
  std::vector<std::string> allowed_key_exchange_methods() const override { return {"ECDHE_PSK"}; }
  std::vector<std::string> allowed_ciphers() const override {
    return {"AES-128/GCM", "AES-256/GCM", "ChaCha20Poly1305"};
  }
  std::vector<std::string> allowed_macs() const override { return {"AEAD"}; }
  bool allow_tls10() const override { return false; }
  bool allow_tls11() const override { return false; }
  bool allow_dtls10() const override { return false; }
  bool allow_dtls12() const override { return false; }
  bool allow_insecure_renegotiation() const override { return false; }
  bool allow_client_initiated_renegotiation() const override { return false; }
  bool allow_server_initiated_renegotiation() const override { return false; }
  bool hide_unknown_users() const override { return true; }
  uint32_t session_ticket_lifetime() const override { return 0; }
};

class psk_credentials final : public Botan::Credentials_Manager {
 public:
  explicit psk_credentials(const secret_bytes& psk) : psk_(psk) {}
  std::string psk_identity_hint(const std::string&, const std::string&) override { return psk_identity_name; }
  std::string psk_identity(const std::string&, const std::string&, const std::string&) override {
    return psk_identity_name;
  }
  Botan::SymmetricKey psk(const std::string& type, const std::string&, const std::string& identity) override {
    if (type == "tls-server" && identity != psk_identity_name)
      throw Botan::TLS::TLS_Exception(Botan::TLS::Alert::UNKNOWN_PSK_IDENTITY, "unknown PSK identity");
    return Botan::SymmetricKey(psk_);
  }

 private:
  Botan::secure_vector<std::uint8_t> psk_;
};

}  // namespace

struct tls_engine::impl final : Botan::TLS::Callbacks {
  impl(tls_sink& s, const secret_bytes& psk) : sink(s), creds(psk) {}

  void tls_emit_data(const std::uint8_t data[], std::size_t size) override { sink.tls_ciphertext({data, size}); }
  void tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) override {
    sink.tls_plaintext({data, size});
  }
  void tls_alert(Botan::TLS::Alert alert) override {
    if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) {
      sink.tls_closed();
      return;
    }
    if (alert.is_fatal()) peer_alert = alert.type_string();
  }
  bool tls_session_established(const Botan::TLS::Session& session) override {
    cipher = session.ciphersuite().to_string();
    return false;  // never cache: every tunnel does a full ECDHE_PSK handshake
  }
  void tls_session_activated() override { sink.tls_activated(cipher); }

  std::optional<error_info> translate(const std::exception& e, bool during_handshake) {
    std::string what = e.what();
    const bool mac_failure = what.find("MAC") != std::string::npos || what.find("bad_record_mac") != std::string::npos ||
                             what.find("authentication tag") != std::string::npos ||
                             peer_alert.find("bad_record_mac") != std::string::npos ||
                             peer_alert.find("decrypt_error") != std::string::npos;
    if (during_handshake && mac_failure)
      return error_info{wire_error::auth_failed, "the two ends do not share the same secret"};
    if (!peer_alert.empty()) return error_info{wire_error::protocol_error, "peer sent TLS alert " + peer_alert};
    return error_info{during_handshake ? wire_error::auth_failed : wire_error::protocol_error,
                      std::string("TLS failed: ") + what};
  }

  tls_sink& sink;
  psk_credentials creds;
  psk_policy policy;
  Botan::TLS::Session_Manager_Noop sessions;
  std::unique_ptr<Botan::TLS::Channel> channel;
  std::string peer_alert;
  std::string cipher;
};

tls_engine::tls_engine(bool client, const secret_bytes& psk, Botan::RandomNumberGenerator& rng,
                       tls_sink& sink)
    : impl_(std::make_unique<impl>(sink, psk)) {
  if (client) {
    impl_->channel = std::make_unique<Botan::TLS::Client>(*impl_, impl_->sessions, impl_->creds, impl_->policy, rng,
                                                          Botan::TLS::Server_Information(),
                                                          Botan::TLS::Protocol_Version::TLS_V12);
  } else {
    impl_->channel =
        std::make_unique<Botan::TLS::Server>(*impl_, impl_->sessions, impl_->creds, impl_->policy, rng, false);
  }
}

tls_engine::~tls_engine() = default;

std::optional<error_info> tls_engine::received(byte_view ciphertext) {
  const bool handshaking = !impl_->channel->is_active();
  try {
    impl_->channel->received_data(ciphertext.data(), ciphertext.size());
  } catch (const std::exception& e) {
    return impl_->translate(e, handshaking);
  }
  if (!impl_->peer_alert.empty()) {
    std::runtime_error e("peer sent alert " + impl_->peer_alert);
    return impl_->translate(e, handshaking);
  }
  return std::nullopt;
}

std::optional<error_info> tls_engine::send(byte_view plaintext) {
  try {
    impl_->channel->send(plaintext.data(), plaintext.size());
  } catch (const std::exception& e) {
    return impl_->translate(e, false);
  }
  return std::nullopt;
}

std::optional<secret_bytes> tls_engine::export_keying_material(const std::string& label, std::size_t length) const {
  if (!impl_->channel->is_active()) return std::nullopt;
  try {
    return impl_->channel->key_material_export(label, "", length).bits_of();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void tls_engine::close() {
  try {
    if (!impl_->channel->is_closed()) impl_->channel->close();
  } catch (const std::exception&) {
    // Closing a failed channel may throw; the hop is going away anyway.
  }
}

bool tls_engine::active() const { return impl_->channel->is_active(); }

}  // namespace lstp
