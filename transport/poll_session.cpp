#include "transport/poll_session.hpp"

#include <algorithm>

namespace transport::poll {

bytes byte_queue::take(std::size_t n) {
  n = std::min(n, size());
  const auto from = bytes_.begin() + static_cast<std::ptrdiff_t>(head_);
  bytes out(from, from + static_cast<std::ptrdiff_t>(n));
  head_ += n;
  // What was taken is dropped once it is most of the buffer: each byte is
  // moved at most once more.
  if (head_ == bytes_.size()) {
    bytes_.clear();
    head_ = 0;
  } else if (head_ >= bytes_.size() / 2) {
    bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  return out;
}

// ---- client --------------------------------------------------------------

std::size_t client_session::held_up() const {
  std::size_t n = unsent_.size();
  for (const auto& [_, c] : chunks_) n += c.body.size();
  return n;
}

std::size_t client_session::room() const {
  const auto held = held_up();
  return held >= max_buffered || shutdown_ ? 0 : max_buffered - held;
}

std::size_t client_session::write(std::span<const std::uint8_t> data) {
  const auto take = std::min(data.size(), room());
  unsent_.append(data.first(take));
  return take;
}

void client_session::shutdown() { shutdown_ = true; }

void client_session::failure(const std::string& what) {
  if (++failures_ >= max_failures && why_.empty())
    why_ = what + " (" + std::to_string(failures_) + " times in a row)";
}

std::optional<request> client_session::next() {
  if (failed()) return std::nullopt;
  // Up: a chunk to send again first (it lost its answer), else a new one.
  std::size_t up_in_flight = 0;
  for (const auto& [_, c] : chunks_) up_in_flight += c.in_flight ? 1 : 0;
  for (auto& [n, c] : chunks_) {
    if (c.in_flight) continue;
    c.in_flight = true;
    return request{request::kind::up, n, 0, c.fin, c.body};
  }
  const bool fin_due = shutdown_ && !fin_cut_;
  if (up_in_flight < window && (!unsent_.empty() || fin_due)) {
    up_chunk c;
    c.body = unsent_.take(max_chunk);
    c.fin = shutdown_ && unsent_.empty();
    if (c.fin) fin_cut_ = true;
    c.in_flight = true;
    const auto n = next_up_++;
    auto& placed = chunks_[n] = std::move(c);
    return request{request::kind::up, n, 0, placed.fin, placed.body};
  }
  // Down: chunks next_down_ and next_down_ + 1, unless the reader is behind
  // or the stream has ended.
  if (peer_finished_ || received_.size() >= max_buffered) return std::nullopt;
  for (std::uint64_t n = next_down_; n < next_down_ + window; ++n) {
    if (down_end_ && n >= *down_end_) break;
    if (early_.count(n) || down_in_flight_.count(n)) continue;
    down_in_flight_[n] = true;
    return request{request::kind::down, n, next_down_, false, {}};
  }
  return std::nullopt;
}

void client_session::on_up_answer(std::uint64_t n, int status) {
  auto it = chunks_.find(n);
  if (it == chunks_.end()) return;  // a repeated answer
  if (status == 204 || status == 200) {
    failures_ = 0;
    if (it->second.fin) fin_sent_ = true;
    chunks_.erase(it);
    return;
  }
  it->second.in_flight = false;
  if (status == 404) {
    why_ = "the middle proxy no longer knows this carrier session";
    return;
  }
  failure("the middle proxy answered " + std::to_string(status) + " to a POST");
}

void client_session::on_down_answer(std::uint64_t n, int status, std::span<const std::uint8_t> body) {
  down_in_flight_.erase(n);
  if (n < next_down_) return;  // had it already
  if (status == 410) {
    failures_ = 0;
    down_end_ = std::min(down_end_.value_or(n), n);
  } else if (status == 200) {
    failures_ = 0;
    if (!body.empty()) early_[n] = bytes(body.begin(), body.end());
    // An empty answer is the heartbeat: ask again.
  } else if (status == 404) {
    why_ = "the middle proxy no longer knows this carrier session";
    return;
  } else {
    failure("the middle proxy answered " + std::to_string(status) + " to a GET");
    return;
  }
  // Deliver what is now in order.
  for (auto it = early_.find(next_down_); it != early_.end(); it = early_.find(next_down_)) {
    received_.insert(received_.end(), it->second.begin(), it->second.end());
    early_.erase(it);
    ++next_down_;
  }
  if (down_end_ && next_down_ >= *down_end_) peer_finished_ = true;
}

void client_session::on_failed(const request& r) {
  if (r.what == request::kind::up) {
    if (auto it = chunks_.find(r.n); it != chunks_.end()) it->second.in_flight = false;
  } else {
    down_in_flight_.erase(r.n);
  }
  failure("a request got no answer");
}

bytes client_session::take_received() {
  bytes out;
  out.swap(received_);
  return out;
}

// ---- server --------------------------------------------------------------

int server_session::on_up(std::uint64_t n, std::span<const std::uint8_t> body, bool fin) {
  if (n < next_up_) return 204;             // held before: the answer was lost
  if (n >= next_up_ + window) return 409;   // beyond the window
  if (body.size() > max_chunk) return 413;
  if (received_.size() + body.size() > max_buffered) return 503;  // the reader is behind
  if (n != next_up_) {
    early_[n] = {bytes(body.begin(), body.end()), fin};  // one ahead: kept until the gap is filled
    return 204;
  }
  received_.insert(received_.end(), body.begin(), body.end());
  if (fin) peer_finished_ = true;
  ++next_up_;
  for (auto it = early_.find(next_up_); it != early_.end(); it = early_.find(next_up_)) {
    received_.insert(received_.end(), it->second.first.begin(), it->second.first.end());
    if (it->second.second) peer_finished_ = true;
    early_.erase(it);
    ++next_up_;
  }
  return 204;
}

bytes server_session::take_received() {
  bytes out;
  out.swap(received_);
  return out;
}

std::size_t server_session::room() const {
  std::size_t held = pending_.size();
  for (const auto& [_, c] : cut_) held += c.size();
  return held >= max_buffered || shutdown_ ? 0 : max_buffered - held;
}

std::size_t server_session::write(std::span<const std::uint8_t> data) {
  const auto take = std::min(data.size(), room());
  pending_.append(data.first(take));
  return take;
}

void server_session::shutdown() { shutdown_ = true; }

server_session::answer server_session::on_down(std::uint64_t n, std::uint64_t acknowledged) {
  // The client holds every chunk below `acknowledged`: forget them.
  cut_.erase(cut_.begin(), cut_.lower_bound(std::min(acknowledged, next_cut_)));
  // Chunks are cut in order, as far as the one asked for.
  while (next_cut_ <= n && !pending_.empty()) cut_[next_cut_++] = pending_.take(max_chunk);
  if (auto it = cut_.find(n); it != cut_.end()) return {answer::kind::chunk, 200, it->second};
  // Acknowledged and forgotten: a stale repeat, which the client ignores.
  if (n < next_cut_) return {answer::kind::chunk, 200, {}};
  if (shutdown_ && pending_.empty()) return {answer::kind::ended, 410, {}};
  return {answer::kind::wait, 200, {}};
}

}  // namespace transport::poll
