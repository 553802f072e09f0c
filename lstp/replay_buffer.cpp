#include "lstp/replay_buffer.hpp"

namespace lstp {

void replay_buffer::push(byte_view head, byte_view body) {
  buf_.insert(buf_.end(), head.begin(), head.end());
  buf_.insert(buf_.end(), body.begin(), body.end());
  sizes_.push_back(static_cast<std::uint32_t>(head.size() + body.size()));
}

void replay_buffer::drop(std::uint64_t n) {
  for (; n > 0 && !sizes_.empty(); --n) {
    head_ += sizes_.front();
    sizes_.pop_front();
  }
  if (sizes_.empty()) {
    buf_.clear();
    head_ = 0;
  } else if (head_ > buf_.size() / 2) {
    // Move the kept frames down only when most of the buffer is dropped
    // ones: each byte moves at most once per buffer's worth of frames.
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

}  // namespace lstp
