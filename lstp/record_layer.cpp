#include "lstp/record_layer.hpp"

#include "lstp/secrets.hpp"

#include <botan/aead.h>
#include <botan/exceptn.h>
#include <botan/kdf.h>

#include <cstring>

namespace lstp {

namespace {
std::unique_ptr<Botan::AEAD_Mode> make_aead(const record_keys& k, Botan::Cipher_Dir dir) {
  auto a = Botan::AEAD_Mode::create_or_throw("AES-128/GCM", dir);
  a->set_key(k.key.data(), k.key.size());
  return a;
}

// TLS 1.3's construction: the IV with the record's sequence number XORed
// into its last 8 bytes. Each direction has its own key and IV, and a
// sequence number never repeats within a tunnel.
std::array<std::uint8_t, 12> nonce_for(const std::array<std::uint8_t, 12>& iv, std::uint64_t seq) {
  auto n = iv;
  for (int i = 0; i < 8; ++i) n[static_cast<std::size_t>(11 - i)] ^= static_cast<std::uint8_t>(seq >> (8 * i));
  return n;
}

void put_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
}  // namespace

std::pair<record_keys, record_keys> split_record_keys(byte_view exported, bool master) {
  record_keys m, s;
  std::memcpy(m.key.data(), exported.data(), 16);
  std::memcpy(s.key.data(), exported.data() + 16, 16);
  std::memcpy(m.iv.data(), exported.data() + 32, 12);
  std::memcpy(s.iv.data(), exported.data() + 44, 12);
  return master ? std::pair{m, s} : std::pair{s, m};
}

record_keys next_record_keys(const record_keys& k) {
  secret_bytes both(k.key.begin(), k.key.end());
  both.insert(both.end(), k.iv.begin(), k.iv.end());
  auto hkdf = Botan::KDF::create_or_throw("HKDF-Expand(SHA-256)");
  constexpr std::string_view label = "lstp/1 key update";
  const auto v = hkdf->derive_key(k.key.size() + k.iv.size(), both.data(), both.size(), nullptr, 0,
                                  reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
  record_keys next;
  std::copy_n(v.begin(), next.key.size(), next.key.begin());
  std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(next.key.size()), next.iv.size(), next.iv.begin());
  return next;
}

record_sealer::record_sealer(const record_keys& k) : keys_(k), aead_(make_aead(k, Botan::ENCRYPTION)), iv_(k.iv) {}

void record_sealer::update_keys() {
  keys_ = next_record_keys(keys_);
  aead_ = make_aead(keys_, Botan::ENCRYPTION);
  iv_ = keys_.iv;
  under_key_ = 0;
}
record_sealer::~record_sealer() = default;

void record_sealer::seal(bytes& out, byte_view head, byte_view body) {
  const auto start = out.size();
  const auto text = head.size() + body.size();
  const auto length = static_cast<std::uint32_t>(text + record_tag_size);
  out.resize(start + record_header_size);
  put_u32(out.data() + start, length);
  out.insert(out.end(), head.begin(), head.end());
  out.insert(out.end(), body.begin(), body.end());
  const auto nonce = nonce_for(iv_, seq_++);
  under_key_ += text;
  // The length is authenticated: a middle cannot cut or splice records.
  aead_->set_associated_data(out.data() + start, record_header_size);
  aead_->start(nonce.data(), nonce.size());
  // The bulk in place; only the last partial block and the tag go through
  // Botan's final buffer.
  const auto at = start + record_header_size;
  const auto g = aead_->update_granularity();
  const auto bulk = text / g * g;
  if (bulk > 0) aead_->process(out.data() + at, bulk);
  tail_.assign(out.begin() + static_cast<std::ptrdiff_t>(at + bulk), out.end());
  aead_->finish(tail_);
  out.resize(at + bulk);
  out.insert(out.end(), tail_.begin(), tail_.end());
}

record_opener::record_opener(const record_keys& k) : keys_(k), aead_(make_aead(k, Botan::DECRYPTION)), iv_(k.iv) {}

void record_opener::update_keys() {
  keys_ = next_record_keys(keys_);
  aead_ = make_aead(keys_, Botan::DECRYPTION);
  iv_ = keys_.iv;
}
record_opener::~record_opener() = default;

std::span<std::uint8_t> record_opener::space(std::size_t want) {
  if (start_ == end_) start_ = end_ = 0;
  // Whatever room is left is offered while it holds a fair read; only then
  // the partial record at the front moves down (at most one record, once
  // per buffer's worth of input) or the buffer grows.
  const auto fair = std::min<std::size_t>(want, 64 * 1024);
  if (buf_.size() - end_ < fair) {
    if (start_ > 0) {
      std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (buf_.size() - end_ < want) buf_.resize(std::max(end_ + want, 2 * buf_.size()));
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void record_opener::append(byte_view in) {
  if (failed_) return;
  // space() promises only min(want, 64 KiB) of room: copy in pieces.
  while (!in.empty()) {
    auto room = space(in.size());
    const auto n = std::min(room.size(), in.size());
    std::memcpy(room.data(), in.data(), n);
    end_ += n;
    in = in.subspan(n);
  }
}

record_opener::opened record_opener::open_next() {
  if (failed_) return {status::failed, {}, failure_};
  if (end_ - start_ < record_header_size) return {};
  auto* h = buf_.data() + start_;
  const std::uint32_t length = static_cast<std::uint32_t>(h[0]) << 24 | static_cast<std::uint32_t>(h[1]) << 16 |
                               static_cast<std::uint32_t>(h[2]) << 8 | h[3];
  const auto give_up = [&](error_info e) {
    failed_ = true;
    failure_ = e;
    buf_ = {};
    start_ = end_ = 0;
    return opened{status::failed, {}, std::move(e)};
  };
  if (length < record_tag_size || length > max_record_plaintext + record_tag_size)
    return give_up({wire_error::frame_too_large, "record length " + std::to_string(length) + " out of range"});
  if (end_ - start_ < record_header_size + length) return {};
  const auto nonce = nonce_for(iv_, seq_++);
  aead_->set_associated_data(h, record_header_size);
  aead_->start(nonce.data(), nonce.size());
  auto* body = h + record_header_size;
  const std::size_t text = length - record_tag_size;
  const auto g = aead_->update_granularity();
  const auto bulk = text / g * g;
  if (bulk > 0) aead_->process(body, bulk);
  tail_.assign(body + bulk, body + length);
  try {
    aead_->finish(tail_);
  } catch (const Botan::Exception&) {
    // Forged, altered, cut, replayed or reordered: nothing of it is used.
    return give_up({wire_error::protocol_error, "a record failed authentication (altered on the way?)"});
  }
  std::memcpy(body + bulk, tail_.data(), tail_.size());
  start_ += record_header_size + length;
  return {status::record, byte_view(body, text), {}};
}

std::optional<error_info> record_opener::open_all(const std::function<bool(byte_view)>& plaintext) {
  for (;;) {
    auto r = open_next();
    if (r.state == status::need_more) return std::nullopt;
    if (r.state == status::failed) return r.error;
    if (!plaintext(r.plaintext)) return std::nullopt;
  }
}

std::optional<error_info> record_opener::receive(byte_view in, const std::function<bool(byte_view)>& plaintext) {
  if (failed_) return error_info{wire_error::protocol_error, "the record layer already failed"};
  append(in);
  return open_all(plaintext);
}

std::optional<error_info> record_opener::commit(std::size_t n, const std::function<bool(byte_view)>& plaintext) {
  if (failed_) return error_info{wire_error::protocol_error, "the record layer already failed"};
  commit(n);
  return open_all(plaintext);
}

}  // namespace lstp
