#include "transport/poll_session.hpp"

#include <algorithm>

namespace transport::poll {

bytes byte_queue::take(std::size_t n) {
  n = std::min(n, size());
  const auto from = bytes_.begin() + static_cast<std::ptrdiff_t>(head_);
  bytes out(from, from + static_cast<std::ptrdiff_t>(n));
  head_ += n;
  compact();
  return out;
}

// What was taken is dropped once it is most of the buffer: each byte is
// moved at most once more.
void byte_queue::compact() {
  if (head_ == bytes_.size()) {
    bytes_.clear();
    head_ = 0;
  } else if (head_ >= bytes_.size() / 2) {
    bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

std::size_t byte_queue::read(std::span<std::uint8_t> out) {
  const auto n = std::min(out.size(), size());
  std::copy_n(bytes_.begin() + static_cast<std::ptrdiff_t>(head_), n, out.begin());
  head_ += n;
  compact();
  return n;
}

// ---- targets -------------------------------------------------------------

namespace {

std::optional<std::uint64_t> decimal(std::string_view v) {
  if (v.empty() || v.size() > 15) return std::nullopt;  // below 2^53: enough for any session
  std::uint64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    x = x * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return x;
}

bool is_session_id(std::string_view v) {
  return v.size() == session_id_length &&
         std::all_of(v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::optional<target_fields> parse_target(std::string_view target, std::string_view path, std::string& why) {
  // Absolute-form, as a proxy forwards it: the path after the authority.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      const auto slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
      break;
    }
  }
  const auto question = target.find('?');
  const auto where = target.substr(0, question);
  target_fields f;
  if (where.size() > path.size() && where.substr(0, path.size()) == path && where.substr(path.size()) == "/up") {
    f.what = request::kind::up;
  } else if (where.size() > path.size() && where.substr(0, path.size()) == path &&
             where.substr(path.size()) == "/down") {
    f.what = request::kind::down;
  } else {
    why = "not an http carrier path";
    return std::nullopt;
  }
  bool has_s = false, has_n = false, has_a = false;
  std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const auto key = pair.substr(0, eq);
    const auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (key == "s") {
      if (!is_session_id(value)) {
        why = "a malformed session id";
        return std::nullopt;
      }
      f.session = std::string(value);
      has_s = true;
    } else if (key == "n" || key == "a") {
      const auto x = decimal(value);
      if (!x) {
        why = "a malformed number (" + std::string(key) + ")";
        return std::nullopt;
      }
      (key == "n" ? f.n : f.acknowledged) = *x;
      (key == "n" ? has_n : has_a) = true;
    } else if (key == "fin") {
      f.fin = value == "1";
    } else if (key == "close") {
      f.close = value == "1";
    }
    // r= and anything else: not ours to read (the cache breaker).
  }
  if (!has_s || !has_n || (f.what == request::kind::down && !has_a)) {
    why = f.what == request::kind::up ? "an up request without s= and n=" : "a down request without s=, n= and a=";
    return std::nullopt;
  }
  if (f.what == request::kind::down && f.acknowledged > f.n) {
    why = "a down request acknowledging chunks it did not ask for";
    return std::nullopt;
  }
  return f;
}

std::string make_target(const request& r, std::string_view session, std::string_view path, std::uint64_t random) {
  std::string t(path);
  t += r.what == request::kind::up ? "/up?s=" : "/down?s=";
  t += session;
  t += "&n=" + std::to_string(r.n);
  if (r.what == request::kind::down) t += "&a=" + std::to_string(r.acknowledged);
  static constexpr char hex[] = "0123456789abcdef";
  t += "&r=";
  for (int i = 0; i < 12; ++i) t += hex[(random >> (i * 4)) & 0xf];
  if (r.fin) t += "&fin=1";
  if (r.close) t += "&close=1";
  return t;
}

// ---- client --------------------------------------------------------------

client_session::client_session() {
  chunks_[0] = up_chunk{};
  next_up_ = 1;
}

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
  // A new chunk only within the window above the lowest one not yet held
  // by the server: one further ahead would be refused (409).
  const bool in_window = chunks_.empty() || next_up_ < chunks_.begin()->first + window;
  if (up_in_flight < window && in_window && (!unsent_.empty() || fin_due)) {
    up_chunk c;
    c.body = unsent_.take(max_chunk);
    c.fin = shutdown_ && unsent_.empty();
    if (c.fin) fin_cut_ = true;
    c.in_flight = true;
    const auto n = next_up_++;
    auto& placed = chunks_[n] = std::move(c);
    return request{request::kind::up, n, 0, placed.fin, placed.body};
  }
  // Down: chunks next_down_ and next_down_ + 1, unless the session is not
  // open yet, the reader is behind or the stream has ended.
  if (!opened_ || peer_finished_ || received_.size() >= max_buffered) return std::nullopt;
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
    if (n == 0) opened_ = true;
    chunks_.erase(it);
    return;
  }
  it->second.in_flight = false;
  if (status == 404) {
    why_ = "the middle proxy no longer knows this carrier session";
    return;
  }
  // 503: the middle's reader is behind (it held the POST a while first).
  // Back-pressure, not a failure: the chunk goes again.
  if (status == 503) return;
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
    received_.append(it->second);
    early_.erase(it);
    ++next_down_;
  }
  if (down_end_ && next_down_ >= *down_end_) peer_finished_ = true;
}

void client_session::on_retry(const request& r) {
  if (r.what == request::kind::up) {
    if (auto it = chunks_.find(r.n); it != chunks_.end()) it->second.in_flight = false;
  } else {
    down_in_flight_.erase(r.n);
  }
}

void client_session::on_failed(const request& r) {
  on_retry(r);
  failure("a request got no answer");
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
  received_.append(body);
  if (fin) peer_finished_ = true;
  ++next_up_;
  for (auto it = early_.find(next_up_); it != early_.end(); it = early_.find(next_up_)) {
    received_.append(it->second.first);
    if (it->second.second) peer_finished_ = true;
    early_.erase(it);
    ++next_up_;
  }
  return 204;
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
