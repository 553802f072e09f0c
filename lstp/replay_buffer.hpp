// The frames an end sent that its peer has not acknowledged yet
// (PROTOCOL.md 3.8): kept in order, plaintext, headers included, so they can
// be sent again on a new hop after the old one was lost. One contiguous
// buffer, so keeping a frame is one copy and replaying them all is one span.
// Sans-I/O.
#pragma once

#include <cstdint>
#include <deque>

#include "lstp/wire.hpp"

namespace lstp {

class replay_buffer {
 public:
  // Keeps one frame: its header, then its payload.
  void push(byte_view head, byte_view body = {});
  // Forgets the `n` oldest frames (at most all of them).
  void drop(std::uint64_t n);
  std::size_t bytes_kept() const { return buf_.size() - head_; }
  std::uint64_t frames() const { return sizes_.size(); }
  // Every frame kept, oldest first, back to back.
  byte_view contents() const { return {buf_.data() + head_, buf_.size() - head_}; }

 private:
  bytes buf_;
  std::size_t head_ = 0;              // the oldest frame kept starts here
  std::deque<std::uint32_t> sizes_;   // each kept frame's size, oldest first
};

}  // namespace lstp
