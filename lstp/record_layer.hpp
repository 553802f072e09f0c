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
#include <span>

#include "lstp/messages.hpp"

#include <botan/mem_ops.h>
#include <botan/secmem.h>

namespace Botan {
class AEAD_Mode;
}

namespace lstp {

// Room a record keeps beyond one maximal frame (PROTOCOL.md 3.5: 262220).
inline constexpr std::size_t record_spare = 64;
// What a record may hold: one maximal frame, with room to spare.
inline constexpr std::size_t max_record_plaintext = header_size + max_payload + record_spare;
static_assert(max_record_plaintext == 262220, "PROTOCOL.md 3.5 fixes the record size");
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
  record_keys() = default;
  record_keys(const record_keys&) = default;
  record_keys& operator=(const record_keys&) = default;
  // Keys are wiped where they were held, not left behind in freed memory.
  ~record_keys() { Botan::secure_scrub_memory(key.data(), key.size()); }
};

// Splits exported key material into (ours to send, ours to receive).
std::pair<record_keys, record_keys> split_record_keys(byte_view exported, bool master);
// The keys after a KEY_UPDATE (PROTOCOL.md 3.5): 28 bytes of
// HKDF-SHA256-Expand(key || iv, "lstp/1 key update"), the new key then IV.
record_keys next_record_keys(const record_keys& k);

class record_sealer {
 public:
  explicit record_sealer(const record_keys& k);
  ~record_sealer();
  // Appends one record holding `head` then `body` (together at most
  // max_record_plaintext): a frame's header and payload go straight from
  // where they are into the record, with no frame assembled first.
  void seal(bytes& out, byte_view head, byte_view body = {});
  // Moves to the next keys (next_record_keys): for the records after the
  // one that carried a KEY_UPDATE.
  void update_keys();
  // Plaintext bytes sealed under the current keys.
  std::uint64_t sealed_under_key() const { return under_key_; }

 private:
  record_keys keys_;
  std::unique_ptr<Botan::AEAD_Mode> aead_;
  std::array<std::uint8_t, 12> iv_;
  std::uint64_t seq_ = 0;
  std::uint64_t under_key_ = 0;
  Botan::secure_vector<std::uint8_t> tail_;  // the last partial block and the tag; reused
};

class record_opener {
 public:
  explicit record_opener(const record_keys& k);
  ~record_opener();
  // Zero-copy input: room for a read of up to `want` bytes from the hop
  // (at least min(want, 64 KiB)), to be read into directly and then handed
  // over with commit(). Records are opened in place there. Moves the
  // unopened bytes: plaintexts handed out before are gone.
  std::span<std::uint8_t> space(std::size_t want);
  void commit(std::size_t n) { end_ += n; }
  // Copies bytes from elsewhere in (all of them; the buffer grows).
  void append(byte_view in);

  enum class status { need_more, record, failed };
  struct opened {
    status state = status::need_more;
    byte_view plaintext;  // record: its contents, valid until space() or append()
    error_info error;     // failed: an oversized or forged record
  };
  // Opens the next whole record in place, if one has arrived. After a
  // failure nothing more is ever opened.
  opened open_next();
  // The peer's KEY_UPDATE was opened: records after it use the next keys.
  void update_keys();

  // Conveniences for tests and fuzzing: commit() or append(), then every
  // record that opens goes to `plaintext` (it returns false to stop).
  std::optional<error_info> commit(std::size_t n, const std::function<bool(byte_view)>& plaintext);
  std::optional<error_info> receive(byte_view in, const std::function<bool(byte_view)>& plaintext);
  std::size_t buffered() const { return end_ - start_; }

 private:
  std::optional<error_info> open_all(const std::function<bool(byte_view)>& plaintext);

  record_keys keys_;
  std::unique_ptr<Botan::AEAD_Mode> aead_;
  std::array<std::uint8_t, 12> iv_;
  std::uint64_t seq_ = 0;
  bytes buf_;               // records arrive in [start_, end_); room after end_
  std::size_t start_ = 0, end_ = 0;
  Botan::secure_vector<std::uint8_t> tail_;
  bool failed_ = false;
  error_info failure_;
};

}  // namespace lstp
