// The frames an end sent that its peer has not acknowledged yet
// (PROTOCOL.md 3.8): kept in order, plaintext, headers included, so they can
// be sent again on a new hop after the old one was lost. Sans-I/O.
//
// Kept in fixed-size chunks: keeping a frame is its one copy, and an
// acknowledgement frees whole chunks without moving what is still kept (a
// single growing buffer moved the kept bytes down on every drop, which
// showed as 2% of a bulk transfer's CPU). Emptied chunks are kept for reuse
// while anything is kept, so a steady stream allocates nothing (with one
// spare, the sender of a 2 GiB download took 16,000 page faults for fresh
// chunks); once everything is acknowledged, one spare stays.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "lstp/wire.hpp"

namespace lstp {

class replay_buffer {
 public:
  static constexpr std::size_t chunk_size = 256 * 1024;

  // Keeps one frame: its header, then its payload.
  void push(byte_view head, byte_view body = {});
  // Forgets the `n` oldest frames (at most all of them).
  void drop(std::uint64_t n);
  std::size_t bytes_kept() const { return kept_; }
  std::uint64_t frames() const { return sizes_.size(); }
  // Every frame kept, oldest first, back to back, as spans in order; a
  // frame may straddle two of them.
  template <class F>
  void for_each_span(F&& f) const {
    std::size_t left = kept_;
    for (std::size_t i = 0; i < chunks_.size() && left > 0; ++i) {
      const std::size_t from = i == 0 ? head_ : 0;
      const std::size_t n = std::min(left, chunk_size - from);
      f(byte_view{chunks_[i].get() + from, n});
      left -= n;
    }
  }

 private:
  void append(byte_view b);

  std::deque<std::unique_ptr<std::uint8_t[]>> chunks_;
  std::vector<std::unique_ptr<std::uint8_t[]>> spares_;  // emptied chunks, for reuse
  std::size_t head_ = 0;                   // the oldest kept byte, in chunks_.front()
  std::size_t kept_ = 0;
  std::deque<std::uint32_t> sizes_;        // each kept frame's size, oldest first
};

}  // namespace lstp
