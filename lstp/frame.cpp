#include "lstp/frame.hpp"

namespace lstp {

bool is_known(frame_type t) { return to_string(t) != "unknown"; }

std::string_view to_string(frame_type t) {
  switch (t) {
    case frame_type::common_unique_info: return "COMMON_UNIQUE_INFO";
    case frame_type::topology_exchange: return "TOPOLOGY_EXCHANGE";
    case frame_type::property_exchange: return "PROPERTY_EXCHANGE";
    case frame_type::access: return "ACCESS";
    case frame_type::pairing_notice: return "PAIRING_NOTICE";
    case frame_type::key_update: return "KEY_UPDATE";
    case frame_type::connection_request: return "CONNECTION_REQUEST";
    case frame_type::connection_ack: return "CONNECTION_ACK";
    case frame_type::connection_nack: return "CONNECTION_NACK";
    case frame_type::service_begin_request: return "SERVICE_BEGIN_REQUEST";
    case frame_type::service_begin_ack: return "SERVICE_BEGIN_ACK";
    case frame_type::service_begin_nack: return "SERVICE_BEGIN_NACK";
    case frame_type::connection_peer: return "CONNECTION_PEER";
    case frame_type::service_data: return "SERVICE_DATA";
    case frame_type::service_data_pause: return "SERVICE_DATA_PAUSE";
    case frame_type::service_data_resume: return "SERVICE_DATA_RESUME";
    case frame_type::service_free_request: return "SERVICE_FREE_REQUEST";
    case frame_type::service_data_credit: return "SERVICE_DATA_CREDIT";
    case frame_type::shutdown: return "SHUTDOWN";
    case frame_type::error: return "ERROR";
    case frame_type::ping: return "PING";
    case frame_type::pong: return "PONG";
    case frame_type::ack: return "ACK";
    case frame_type::resume: return "RESUME";
  }
  return "unknown";
}

void write_header(bytes& out, const frame_header& h) {
  wire_writer w(out);
  w.u8(static_cast<std::uint8_t>(h.type));
  w.u8(h.flags);
  w.u16(0);
  w.u32(h.channel);
  w.u32(h.length);
}

std::array<std::uint8_t, header_size> header_bytes(const frame_header& h) {
  std::array<std::uint8_t, header_size> b{};
  b[0] = static_cast<std::uint8_t>(h.type);
  b[1] = h.flags;
  for (int i = 0; i < 4; ++i) {
    b[static_cast<std::size_t>(7 - i)] = static_cast<std::uint8_t>(h.channel >> (8 * i));
    b[static_cast<std::size_t>(11 - i)] = static_cast<std::uint8_t>(h.length >> (8 * i));
  }
  return b;
}

void write_frame(bytes& out, frame_type t, std::uint32_t channel, byte_view payload, std::uint8_t flags) {
  write_header(out, {t, flags, channel, static_cast<std::uint32_t>(payload.size())});
  out.insert(out.end(), payload.begin(), payload.end());
}

void frame_decoder::feed(byte_view in) {
  settle();  // borrowed bytes come first
  // Compact lazily: drop returned bytes only when they are most of the buffer,
  // so a stream of small frames does not memmove on every call.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 64 * 1024)) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), in.begin(), in.end());
}

void frame_decoder::feed_borrowed(byte_view in) {
  if (buf_.size() > pos_ || !borrowed_.empty()) return feed(in);  // a partial frame waits: join it
  borrowed_ = in;
}

void frame_decoder::settle() {
  if (borrowed_.empty()) return;
  const auto rest = borrowed_;
  borrowed_ = {};
  feed(rest);
}

frame_decoder::result frame_decoder::next() {
  if (failed_) return failure_;
  if (!borrowed_.empty()) {
    auto r = parse(borrowed_);
    if (r.state == status::done) {
      borrowed_ = borrowed_.subspan(header_size + r.frame.header.length);
      return r;
    }
    if (r.state == status::invalid) return r;
    settle();  // a partial frame: keep it until the rest comes
    return {};
  }
  auto r = parse({buf_.data() + pos_, buf_.size() - pos_});
  if (r.state == status::done) pos_ += header_size + r.frame.header.length;
  return r;
}

// One frame from the front of `avail`, checked before its payload is awaited.
frame_decoder::result frame_decoder::parse(byte_view avail) {
  if (avail.size() < header_size) return {};
  wire_reader r(avail.first(header_size));
  std::uint8_t type = 0, flags = 0;
  std::uint16_t reserved = 0;
  frame_header h;
  r.u8(type);
  r.u8(flags);
  r.u16(reserved);
  r.u32(h.channel);
  r.u32(h.length);
  h.type = static_cast<frame_type>(type);
  h.flags = flags;
  auto fail = [&](wire_error e, std::string why) {
    failed_ = true;
    borrowed_ = {};
    failure_ = {status::invalid, {}, e, std::move(why)};
    return failure_;
  };
  if (!is_known(h.type)) return fail(wire_error::unknown_type, "unknown frame type " + std::to_string(type));
  if (reserved != 0) return fail(wire_error::protocol_error, "reserved header field is not zero");
  if (h.length > limit_)
    return fail(wire_error::frame_too_large, std::string(to_string(h.type)) + " announces " +
                                                 std::to_string(h.length) + " bytes, limit is " +
                                                 std::to_string(limit_));
  if (avail.size() < header_size + h.length) return {};
  result ok;
  ok.state = status::done;
  ok.frame = {h, avail.subspan(header_size, h.length)};
  return ok;
}

}  // namespace lstp
