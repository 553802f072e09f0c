// LSTP framing (PROTOCOL.md 1): a 12-byte header and a bounded payload.
// `frame_decoder` is sans-I/O: it is given bytes and reports whether it needs
// more, holds a whole frame, or the input is invalid. Because the header is
// checked against the size limit before any payload is buffered, a peer can
// never make it hold more than one maximal frame.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "lstp/error.hpp"
#include "lstp/wire.hpp"

namespace lstp {

enum class frame_type : std::uint8_t {
  common_unique_info = 0x01,
  topology_exchange = 0x02,
  property_exchange = 0x03,
  access = 0x04,  // a hop's access proof to its middle (3.6); never relayed
  pairing_notice = 0x05,  // from a middle to a waiting setup: another id of its tunnel name waits (3.1)
  connection_request = 0x10,
  connection_ack = 0x11,
  connection_nack = 0x12,
  service_begin_request = 0x13,
  service_begin_ack = 0x14,
  service_begin_nack = 0x15,
  connection_peer = 0x16,  // BIND: the peer that connected (second reply)
  service_data = 0x20,
  service_data_pause = 0x21,
  service_data_resume = 0x22,
  service_free_request = 0x23,
  service_data_credit = 0x24,  // credit windows (feature 0x2): more bytes the sender may send
  shutdown = 0x30,
  error = 0x31,
  ping = 0x32,
  pong = 0x33,
  ack = 0x34,     // resumption (feature 0x4): reliable frames handled
  resume = 0x35,  // resumption: the first frame on a resumed tunnel
  key_update = 0x36,  // key updates (feature 0x8): records after this one use the next keys
};

bool is_known(frame_type t);
// Resumption (PROTOCOL.md 3.8): a frame that carries channel or tunnel
// state, counted, acknowledged and replayed after a lost hop. Only valid
// once the tunnel is up.
inline bool is_reliable(frame_type t) {
  return t != frame_type::ping && t != frame_type::pong && t != frame_type::ack && t != frame_type::resume &&
         t != frame_type::error && t != frame_type::key_update;
}
std::string_view to_string(frame_type t);

// SERVICE_DATA flag: the sender will send no more data on this channel.
inline constexpr std::uint8_t flag_fin = 0x01;

inline constexpr std::size_t header_size = 12;
inline constexpr std::size_t max_payload = 256 * 1024;
inline constexpr std::size_t max_setup_payload = 16 * 1024;
inline constexpr std::size_t max_data_payload = 64 * 1024;

struct frame_header {
  frame_type type{};
  std::uint8_t flags = 0;
  std::uint32_t channel = 0;
  std::uint32_t length = 0;
};

// Appends a header to `out`.
void write_header(bytes& out, const frame_header& h);
// A header's bytes, for a frame that is sealed from its parts.
std::array<std::uint8_t, header_size> header_bytes(const frame_header& h);
// Appends a whole frame (header and payload) to `out`.
void write_frame(bytes& out, frame_type t, std::uint32_t channel, byte_view payload, std::uint8_t flags = 0);

struct frame_view {
  frame_header header;
  byte_view payload;  // valid until the decoder is fed or consumed again
};

// Incremental decoder over a byte stream. Usage:
//   decoder.feed(bytes); while (auto r = decoder.next(); r.status == done) { use r.frame; }
// A frame's payload stays valid until the next call to feed() or next().
class frame_decoder {
 public:
  enum class status { need_more, done, invalid };
  struct result {
    status state = status::need_more;
    frame_view frame{};
    wire_error error = wire_error::ok;  // when invalid
    std::string reason;                 // when invalid: what was wrong, for the log
  };

  explicit frame_decoder(std::size_t payload_limit = max_payload) : limit_(payload_limit) {}

  void feed(byte_view in);
  // Like feed(), but frames are returned straight from `in` (no copy) when
  // nothing is buffered: the caller calls next() until need_more or invalid
  // while `in` is alive, then settle(), which copies only a trailing partial
  // frame. The data path's records hold whole frames, so it copies nothing.
  void feed_borrowed(byte_view in);
  void settle();
  result next();
  // Bytes fed but not yet returned as frames (e.g. TLS records that follow
  // the setup frames on the same hop).
  byte_view unread() const { return {buf_.data() + pos_, buf_.size() - pos_}; }
  std::size_t buffered() const { return buf_.size() - pos_ + borrowed_.size(); }

 private:
  result parse(byte_view avail);

  bytes buf_;
  std::size_t pos_ = 0;  // start of the first unreturned byte
  byte_view borrowed_;   // fed with feed_borrowed, not yet returned
  std::size_t limit_;
  bool failed_ = false;
  frame_decoder::result failure_;
};

}  // namespace lstp
