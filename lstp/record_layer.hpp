// The LSTP record layer (PROTOCOL.md 3.5): after the end-to-end TLS
// handshake and the verification inside it, both directions switch from
// TLS 1.2 records to these: AES-128-GCM with keys exported from the TLS
// session (RFC 5705), records up to 256 KiB, sealed and opened in place.
// Botan's TLS record layer copies every byte one at a time (its
// secure_vector inserts) and caps records at 16 KiB; this one does neither.
// Sans-I/O, like the rest of lstp/.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "lstp/messages.hpp"

namespace Botan {
class AEAD_Mode;
}

namespace lstp {

// What a record may hold: one maximal frame, with room to spare.
inline constexpr std::size_t max_record_plaintext = 12 + 262144 + 64;
inline constexpr std::size_t record_tag_size = 16;
inline constexpr std::size_t record_header_size = 4;
// COMMON_UNIQUE_INFO `features` bit: this end speaks the LSTP record layer.
inline constexpr std::uint32_t feature_record_layer = 0x1;
// RFC 5705 exporter label; 56 bytes: two keys, then two IVs (master's first).
inline constexpr const char* record_export_label = "EXPORTER-lstp/1 records";
inline constexpr std::size_t record_export_size = 2 * 16 + 2 * 12;

struct record_keys {
  std::array<std::uint8_t, 16> key{};
  std::array<std::uint8_t, 12> iv{};
};

// Splits exported key material into (ours to send, ours to receive).
std::pair<record_keys, record_keys> split_record_keys(byte_view exported, bool master);

class record_sealer {
 public:
  explicit record_sealer(const record_keys& k);
  ~record_sealer();
  // Appends one record holding `plaintext` (at most max_record_plaintext).
  void seal(bytes& out, byte_view plaintext);

 private:
  std::unique_ptr<Botan::AEAD_Mode> aead_;
  std::array<std::uint8_t, 12> iv_;
  std::uint64_t seq_ = 0;
};

class record_opener {
 public:
  explicit record_opener(const record_keys& k);
  ~record_opener();
  // Feeds bytes from the hop; `plaintext` is called with each record's
  // contents once its tag verified (the span dies on return). Returns an
  // error for an oversized or forged record; nothing after it is opened.
  std::optional<error_info> receive(byte_view in, const std::function<void(byte_view)>& plaintext);

 private:
  std::unique_ptr<Botan::AEAD_Mode> aead_;
  std::array<std::uint8_t, 12> iv_;
  std::uint64_t seq_ = 0;
  bytes buf_;
  bool failed_ = false;
};

}  // namespace lstp
