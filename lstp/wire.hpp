// Big-endian byte writing and bounds-checked reading for LSTP payloads.
// The reader never throws and never reads past its span: every get_* returns
// false once the input is exhausted, and the caller turns that into a
// "truncated" error.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lstp {

using bytes = std::vector<std::uint8_t>;
using byte_view = std::span<const std::uint8_t>;

class wire_writer {
 public:
  explicit wire_writer(bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void u64(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void raw(byte_view v) { out_.insert(out_.end(), v.begin(), v.end()); }
  void raw(std::string_view v) { out_.insert(out_.end(), v.begin(), v.end()); }
  // Strings longer than the prefix allows are cut: callers validate lengths
  // before encoding (names are checked when the config is loaded).
  void str8(std::string_view v) {
    auto n = v.size() > 0xFF ? 0xFF : v.size();
    u8(static_cast<std::uint8_t>(n));
    raw(v.substr(0, n));
  }
  void str16(std::string_view v) {
    auto n = v.size() > 0xFFFF ? 0xFFFF : v.size();
    u16(static_cast<std::uint16_t>(n));
    raw(v.substr(0, n));
  }

 private:
  bytes& out_;
};

class wire_reader {
 public:
  explicit wire_reader(byte_view in) : in_(in) {}
  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = in_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>(in_[pos_] << 8 | in_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = static_cast<std::uint32_t>(in_[pos_]) << 24 | static_cast<std::uint32_t>(in_[pos_ + 1]) << 16 |
        static_cast<std::uint32_t>(in_[pos_ + 2]) << 8 | in_[pos_ + 3];
    pos_ += 4;
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | in_[pos_ + static_cast<std::size_t>(i)];
    pos_ += 8;
    return true;
  }
  template <std::size_t N>
  bool fixed(std::array<std::uint8_t, N>& v) {
    if (left() < N) return false;
    std::memcpy(v.data(), in_.data() + pos_, N);
    pos_ += N;
    return true;
  }
  bool str8(std::string& v) {
    std::uint8_t n = 0;
    return u8(n) && take_string(n, v);
  }
  bool str16(std::string& v) {
    std::uint16_t n = 0;
    return u16(n) && take_string(n, v);
  }
  std::size_t left() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }

 private:
  bool take_string(std::size_t n, std::string& v) {
    if (left() < n) return false;
    v.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  byte_view in_;
  std::size_t pos_ = 0;
};

}  // namespace lstp
