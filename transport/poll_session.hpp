// The `http` carrier's two sessions (PROTOCOL.md 9.1), without I/O: a hop
// carried by numbered POST bodies (up) and long-polled GET answers (down),
// over requests that a proxy may drop, repeat or delay. The client says
// which request to send next and takes the answers; the server takes the
// requests and says what to answer. Neither knows about sockets or time:
// the I/O layer times requests out (a failure) and holds a `down` request
// the server cannot answer yet, until data comes or the heartbeat passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace transport::poll {

using bytes = std::vector<std::uint8_t>;

// A chunk's body is at most this long.
inline constexpr std::size_t max_chunk = 256 * 1024;
// Bytes a side holds that the other has not acknowledged (or that its
// reader has not taken), at most.
inline constexpr std::size_t max_buffered = 1024 * 1024;
// Requests in flight each way.
inline constexpr std::uint64_t window = 2;
// Failed attempts in a row after which the hop is given up.
inline constexpr unsigned max_failures = 8;

// Bytes waiting to be cut into chunks: taken from the front without moving
// what stays (a front erase would move up to 1 MiB for every chunk).
class byte_queue {
 public:
  void append(std::span<const std::uint8_t> data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  std::size_t size() const { return bytes_.size() - head_; }
  bool empty() const { return size() == 0; }
  // Up to n bytes from the front.
  bytes take(std::size_t n);
  // Copies up to out.size() bytes from the front into `out`; returns how many.
  std::size_t read(std::span<std::uint8_t> out);
  // Everything, as one vector.
  bytes take_all() { return take(size()); }

 private:
  void compact();
  bytes bytes_;
  std::size_t head_ = 0;
};

struct request {
  enum class kind { up, down } what = kind::up;
  std::uint64_t n = 0;
  std::uint64_t acknowledged = 0;  // down: every chunk below it is held (A)
  bool fin = false;                // up: the stream ends after this chunk
  bytes body;                      // up
  bool close = false;              // up: the client closed the hop (its goodbye)
};

// What a request's target says (PROTOCOL.md 9.1):
// "<path>/up?s=S&n=N&r=R[&fin=1][&close=1]" or "<path>/down?s=S&n=N&a=A&r=R",
// origin-form or absolute-form ("http://host:port<path>/...").
struct target_fields {
  request::kind what = request::kind::up;
  std::string session;  // S: 32 lower-case hex digits
  std::uint64_t n = 0;
  std::uint64_t acknowledged = 0;
  bool fin = false;
  bool close = false;
};
inline constexpr std::size_t session_id_length = 32;
// The fields, or nullopt and why (for a 400).
std::optional<target_fields> parse_target(std::string_view target, std::string_view path, std::string& why);
// The origin-form target of a request; `random` goes into r= (no cache may
// answer it).
std::string make_target(const request& r, std::string_view session, std::string_view path, std::uint64_t random);

class client_session {
 public:
  // Chunk 0 is cut empty at once: its POST opens the session at the server,
  // and no GET goes before it is answered (a GET for a session the server
  // does not know yet would be answered 404).
  client_session();
  // Chunk 0 was answered: the server holds the session.
  bool opened() const { return opened_; }
  // Takes as much of `data` as there is room for; returns how much.
  std::size_t write(std::span<const std::uint8_t> data);
  std::size_t room() const;
  // The stream ends after what was written.
  void shutdown();

  // The next request to send, if the window allows one.
  std::optional<request> next();
  void on_up_answer(std::uint64_t n, int status);
  void on_down_answer(std::uint64_t n, int status, std::span<const std::uint8_t> body);
  // The request got no answer (connection failed, timed out): sent again.
  void on_failed(const request& r);
  // The request is to go again and that is no failure (a proxy asked for
  // its login first).
  void on_retry(const request& r);
  // The hop cannot go on, for a reason found outside (a refused login).
  void give_up(std::string why) { if (why_.empty()) why_ = std::move(why); }

  // What arrived, in order, once each.
  bytes take_received() { return received_.take_all(); }
  // The same into `out`: how many bytes were copied.
  std::size_t read(std::span<std::uint8_t> out) { return received_.read(out); }
  std::size_t readable() const { return received_.size(); }
  bool peer_finished() const { return peer_finished_ && received_.empty(); }
  // Everything written (and the end, after shutdown) is acknowledged.
  bool all_delivered() const { return unsent_.empty() && chunks_.empty() && (!shutdown_ || fin_sent_); }
  bool failed() const { return !why_.empty(); }
  const std::string& why() const { return why_; }
  // Failed attempts since the last answer that counted (for a pause before
  // the next).
  unsigned failures() const { return failures_; }

 private:
  struct up_chunk {
    bytes body;
    bool fin = false;
    bool in_flight = false;
  };
  void failure(const std::string& what);
  std::size_t held_up() const;

  // up
  byte_queue unsent_;
  std::map<std::uint64_t, up_chunk> chunks_;  // cut, not yet acknowledged
  std::uint64_t next_up_ = 0;
  bool shutdown_ = false;
  bool fin_sent_ = false;  // the chunk carrying fin was acknowledged
  bool fin_cut_ = false;
  // down
  std::uint64_t next_down_ = 0;  // the lowest chunk not received
  std::map<std::uint64_t, bytes> early_;  // chunks that came before a lower one
  std::optional<std::uint64_t> down_end_;  // the peer's stream ends before this chunk
  std::map<std::uint64_t, bool> down_in_flight_;
  byte_queue received_;
  bool peer_finished_ = false;
  bool opened_ = false;

  unsigned failures_ = 0;
  std::string why_;
};

class server_session {
 public:
  // A POST of chunk n: the status to answer (204, 409, or 503 when the
  // reader is behind: the client sends it again).
  int on_up(std::uint64_t n, std::span<const std::uint8_t> body, bool fin);
  // What arrived from the client, in order; the end once it came.
  bytes take_received() { return received_.take_all(); }
  std::size_t read(std::span<std::uint8_t> out) { return received_.read(out); }
  std::size_t readable() const { return received_.size(); }
  bool peer_finished() const { return peer_finished_ && received_.empty(); }
  // The stream to the client ended and the client holds all of it.
  bool all_delivered() const { return shutdown_ && pending_.empty() && cut_.empty(); }

  // Bytes for the client; returns how much was taken (bounded).
  std::size_t write(std::span<const std::uint8_t> data);
  std::size_t room() const;
  void shutdown();

  // A GET of chunk n, acknowledging every chunk below `acknowledged`.
  struct answer {
    enum class kind { chunk, wait, ended } what = kind::wait;
    int status = 200;  // chunk: 200; ended: 410
    std::span<const std::uint8_t> body;  // chunk: valid until the next call
  };
  answer on_down(std::uint64_t n, std::uint64_t acknowledged);

 private:
  // up
  std::uint64_t next_up_ = 0;
  std::map<std::uint64_t, std::pair<bytes, bool>> early_;
  byte_queue received_;
  bool peer_finished_ = false;
  // down
  byte_queue pending_;  // written, not cut into a chunk yet
  std::map<std::uint64_t, bytes> cut_;  // cut, not acknowledged
  std::uint64_t next_cut_ = 0;
  bool shutdown_ = false;
};

}  // namespace transport::poll
