#include "lstp/replay_buffer.hpp"

#include <cstring>

namespace lstp {

void replay_buffer::append(byte_view b) {
  while (!b.empty()) {
    // The tail chunk ends where the kept bytes end.
    if (head_ + kept_ == chunks_.size() * chunk_size)  // every chunk full (or none yet)
    {
      if (spares_.empty()) {
        chunks_.push_back(std::make_unique_for_overwrite<std::uint8_t[]>(chunk_size));
      } else {
        chunks_.push_back(std::move(spares_.back()));
        spares_.pop_back();
      }
    }
    const std::size_t used = (head_ + kept_) % chunk_size;
    const std::size_t n = std::min(b.size(), chunk_size - used);
    std::memcpy(chunks_.back().get() + used, b.data(), n);
    kept_ += n;
    b = b.subspan(n);
  }
}

void replay_buffer::push(byte_view head, byte_view body) {
  append(head);
  append(body);
  sizes_.push_back(static_cast<std::uint32_t>(head.size() + body.size()));
}

void replay_buffer::drop(std::uint64_t n) {
  for (; n > 0 && !sizes_.empty(); --n) {
    head_ += sizes_.front();
    kept_ -= sizes_.front();
    sizes_.pop_front();
  }
  // Whole chunks before the oldest kept byte are free; when nothing is
  // kept, the last chunk is too.
  while (!chunks_.empty() && (head_ >= chunk_size || kept_ == 0)) {
    spares_.push_back(std::move(chunks_.front()));
    chunks_.pop_front();
    head_ = head_ >= chunk_size ? head_ - chunk_size : 0;
  }
  if (kept_ == 0) {
    head_ = 0;
    if (spares_.size() > 1) spares_.resize(1);  // an idle tunnel holds one chunk
  }
}

}  // namespace lstp
