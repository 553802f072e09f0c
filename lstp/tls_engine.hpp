// End-to-end TLS between the two end proxies (PROTOCOL.md 3.3), without I/O.
// Botan's TLS channel is driven by hand: ciphertext from the hop goes into
// `received`, plaintext to send goes into `send`, and the engine calls the
// sink back synchronously with ciphertext to write, plaintext that arrived,
// and the end of the handshake. Not thread-safe: one engine per tunnel, used
// from one thread (as is the RNG it is given).
#pragma once

#include <array>
#include <memory>
#include <optional>

#include "lstp/messages.hpp"
#include "lstp/secrets.hpp"

namespace Botan {
class RandomNumberGenerator;
}

namespace lstp {

class tls_sink {
 public:
  virtual ~tls_sink() = default;
  virtual void tls_ciphertext(byte_view data) = 0;  // copy now: the span dies on return
  virtual void tls_plaintext(byte_view data) = 0;   // copy now: the span dies on return
  virtual void tls_activated(std::string_view cipher) = 0;
  virtual void tls_closed() = 0;  // the peer sent close_notify
};

class tls_engine {
 public:
  // The client (the elected master) sends its ClientHello from the constructor.
  tls_engine(bool client, const secret_bytes& psk, Botan::RandomNumberGenerator& rng, tls_sink& sink);
  ~tls_engine();
  tls_engine(const tls_engine&) = delete;
  tls_engine& operator=(const tls_engine&) = delete;

  // Feeds ciphertext. Returns an error when the TLS session failed; the
  // engine may have emitted an alert to send first.
  std::optional<error_info> received(byte_view ciphertext);
  // Encrypts plaintext; only once activated.
  std::optional<error_info> send(byte_view plaintext);
  void close();
  bool active() const;
  // RFC 5705 keying material from the active session (nullopt before).
  std::optional<secret_bytes> export_keying_material(const std::string& label, std::size_t length) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace lstp
