#include "transport/poll_hop.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <botan/system_rng.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <set>

#include "runtime/broadcast.hpp"
#include "runtime/log.hpp"
#include "runtime/source_address.hpp"
#include "runtime/task_group.hpp"
#include "runtime/watchdog.hpp"
#include "transport/poll_session.hpp"

namespace transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {

// Writes a head and a body with one gather write, bounded by `timeout`.
// The head is taken by value: a coroutine keeps its parameters, and a
// reference to a caller's temporary would dangle once it suspends.
asio::awaitable<void> send_message(tcp::socket& s, std::string head, std::span<const std::uint8_t> body,
                                   clock::duration timeout, boost::system::error_code& ec) {
  runtime::watchdog limit(s, timeout);
  const std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(body.data(), body.size())};
  co_await asio::async_write(s, parts, asio::redirect_error(asio::use_awaitable, ec));
}

std::string answer_head(int status, std::size_t length, bool keep_alive) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " +
                  std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\r\n";
  h += "Content-Type: application/octet-stream\r\nCache-Control: no-store\r\n";
  h += "Content-Length: " + std::to_string(length) + "\r\n";
  if (!keep_alive) h += "Connection: close\r\n";
  h += "\r\n";
  return h;
}

// ======================== client ==========================================

struct client_state {
  client_state(poll_client_options o, std::string id)
      : options(std::move(o)), session_id(std::move(id)), rng(Botan::system_rng().next_byte() * 0x1000193u ^ 0x9e3779b9u) {}
  poll_client_options options;
  std::string session_id;
  poll::client_session session;
  runtime::broadcast changed;
  std::mt19937_64 rng;  // the cache breaker r=; not a secret
  bool closed = false;
  bool shut = false;  // the hop's stream to the middle ended
  std::uint64_t cancels = 0;

  std::optional<boost::system::error_code> read_failure() const {
    if (session.failed()) return boost::system::error_code(asio::error::connection_reset);
    return std::nullopt;
  }
  bool write_refused() const { return session.failed() || shut; }

  std::string head_of(const poll::request& r, unsigned lane) {
    const std::string method = r.what == poll::request::kind::up ? "POST" : "GET";
    const auto target = options.target_prefix + poll::make_target(r, session_id, options.path, rng());
    std::string h = method + " " + target + " HTTP/1.1\r\nHost: " + options.host + "\r\n";
    if (options.authorization) {
      const auto credential = options.authorization(lane, method, target);
      if (!credential.empty()) h += "Proxy-Authorization: " + credential + "\r\n";
    }
    h += "Cache-Control: no-store\r\nPragma: no-cache\r\n";
    if (r.what == poll::request::kind::up) {
      h += "Content-Type: application/octet-stream\r\n";
      h += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    }
    h += "\r\n";
    return h;
  }
};

// One keep-alive connection and the request on it.
struct lane {
  unsigned id = 0;  // which login it uses
  std::optional<tcp::socket> socket;
  beast::flat_buffer buffer;
  clock::time_point last_used{};
};

struct exchange_result {
  bool answered = false;
  int status = 0;
  std::vector<std::uint8_t> body;
  bool keep_alive = false;
  bool timed_out = false;
  std::string failure;
  std::vector<std::string> proxy_authenticate;  // a 407's challenges
};

// Sends one request on the lane's connection and reads its answer.
asio::awaitable<exchange_result> exchange(lane& l, std::string head, std::span<const std::uint8_t> body,
                                          clock::duration timeout) {
  exchange_result out;
  boost::system::error_code ec;
  runtime::watchdog limit(*l.socket, timeout);
  const std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(body.data(), body.size())};
  co_await asio::async_write(*l.socket, parts, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    http::response_parser<http::vector_body<std::uint8_t>> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(poll::max_chunk);
    co_await http::async_read(*l.socket, l.buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      auto res = parser.release();
      out.answered = true;
      out.status = static_cast<int>(res.result_int());
      out.keep_alive = res.keep_alive();
      out.body = std::move(res.body());
      for (auto [it, end] = res.equal_range(http::field::proxy_authenticate); it != end; ++it)
        out.proxy_authenticate.emplace_back(it->value());
      co_return out;
    }
  }
  out.timed_out = limit.fired();
  out.failure = out.timed_out ? "no answer in time" : ec.message();
  co_return out;
}

clock::duration timeout_of(const client_state& st, const poll::request& r) {
  return r.what == poll::request::kind::down ? st.options.heartbeat + st.options.request_timeout
                                             : st.options.request_timeout;
}

// A connection idle this long may have been closed by the middle or a
// proxy: a new one is opened rather than a request lost on it.
constexpr auto lane_reuse_limit = std::chrono::seconds(15);

// Takes the session's next request whenever there is one, until the hop
// closes or the session fails. Owned by the hop's task group.
asio::awaitable<void> run_lane(std::shared_ptr<client_state> st, std::shared_ptr<lane> l) {
  for (;;) {
    if (st->closed || st->session.failed()) co_return;
    auto r = st->session.next();
    if (!r) {
      co_await st->changed.wait();
      continue;
    }
    if (l->socket && clock::now() - l->last_used > lane_reuse_limit) l->socket.reset();
    exchange_result res;
    // A kept connection the other side has closed meanwhile (a proxy that
    // says nothing of closing after each answer, as tinyproxy does) fails
    // the request at once: it goes again on a new connection, and that is
    // no failure of the carrier.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = l->socket.has_value();
      if (!l->socket) {
        std::string why;
        l->socket = co_await st->options.connect(why);
        l->buffer.clear();
      }
      if (!l->socket) break;
      auto step = exchange(*l, st->head_of(*r, l->id), r->body, timeout_of(*st, *r));
      res = co_await std::move(step);
      if (res.answered || !reused || res.timed_out || st->closed) break;
      l->socket.reset();
    }
    if (st->closed) co_return;
    if (!res.answered) {
      l->socket.reset();
      st->session.on_failed(*r);
      st->changed.notify_all();
      // A short pause grows with the failures in a row: a middle that is
      // briefly unreachable is not given up in a burst of refused connects.
      asio::steady_timer pause(co_await asio::this_coro::executor,
                               std::min<clock::duration>(std::chrono::milliseconds(200) * st->session.failures(),
                                                         std::chrono::seconds(2)));
      boost::system::error_code ignored;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    l->last_used = clock::now();
    if (!res.keep_alive) l->socket.reset();
    if (res.status == 407) {
      // The proxy wants a login (again: a Digest nonce went stale).
      std::string why = "the proxy wants a login (407)";
      if (st->options.challenged && st->options.challenged(l->id, res.proxy_authenticate, why)) {
        st->session.on_retry(*r);
      } else {
        st->session.give_up("the proxy answered 407 Proxy Authentication Required: " + why);
      }
      st->changed.notify_all();
      continue;
    }
    if (res.status == 503) {
      // The middle's reader is behind (or a proxy is busy): the request
      // goes again after a pause, not at once.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(300));
      boost::system::error_code ignored;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      if (st->closed) co_return;
    }
    if (r->what == poll::request::kind::up)
      st->session.on_up_answer(r->n, res.status);
    else
      st->session.on_down_answer(r->n, res.status, res.body);
    st->changed.notify_all();
  }
}

// The hop_stream side both poll hops share: bytes read from and written
// to their session, waits on its broadcast. `State` has `session` (read,
// readable, peer_finished, write), `changed`, `closed`, `shut`, `cancels`,
// and says what ends reading (`read_failure`: an error once nothing more
// will come) and writing (`write_refused`).
template <class State>
class session_hop : public hop_stream {
 public:
  session_hop(asio::any_io_executor ex, std::shared_ptr<State> st) : ex_(std::move(ex)), st_(std::move(st)) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    // Read before the post: a cancel() while it is queued still counts.
    const auto epoch = st_->cancels;
    co_await asio::post(ex_, asio::use_awaitable);
    if (buf.size() == 0) {
      ec = {};
      co_return 0;
    }
    auto waiting = wait_for_bytes(epoch, ec);
    if (!co_await std::move(waiting)) co_return 0;
    const auto n = st_->session.read({static_cast<std::uint8_t*>(buf.data()), buf.size()});
    st_->changed.notify_all();  // room again: a lane may ask for more, a held POST may go on
    co_return n;
  }

  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    const auto epoch = st_->cancels;
    co_await asio::post(ex_, asio::use_awaitable);
    auto waiting = wait_for_bytes(epoch, ec);
    co_await std::move(waiting);
  }

  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    const auto epoch = st_->cancels;
    co_await asio::post(ex_, asio::use_awaitable);
    ec = {};
    std::span<const std::uint8_t> left(static_cast<const std::uint8_t*>(buf.data()), buf.size());
    while (!left.empty()) {
      if (st_->closed || st_->cancels != epoch) {
        ec = asio::error::operation_aborted;
        co_return;
      }
      if (st_->write_refused()) {
        ec = asio::error::broken_pipe;
        co_return;
      }
      const auto n = st_->session.write(left);
      left = left.subspan(n);
      if (n > 0) st_->changed.notify_all();
      if (!left.empty()) co_await st_->changed.wait();
    }
  }

  void shutdown_send() override {
    st_->shut = true;
    st_->session.shutdown();
    st_->changed.notify_all();
  }

  std::string kind() const override { return "http"; }
  asio::any_io_executor get_executor() override { return ex_; }
  void cancel(boost::system::error_code& ec) override {
    ec = {};
    ++st_->cancels;
    st_->changed.notify_all();
  }

 protected:
  asio::any_io_executor ex_;
  std::shared_ptr<State> st_;

 private:
  // Until there is something to read (true), or why not (false, ec set).
  asio::awaitable<bool> wait_for_bytes(std::uint64_t epoch, boost::system::error_code& ec) {
    ec = {};
    for (;;) {
      if (st_->closed || st_->cancels != epoch) {
        ec = asio::error::operation_aborted;
        co_return false;
      }
      if (st_->session.readable() > 0) co_return true;
      if (st_->session.peer_finished()) {
        ec = asio::error::eof;
        co_return false;
      }
      if (auto failure = st_->read_failure()) {
        ec = *failure;
        co_return false;
      }
      co_await st_->changed.wait();
    }
  }
};

class client_poll_hop final : public session_hop<client_state> {
 public:
  client_poll_hop(asio::any_io_executor ex, std::shared_ptr<client_state> st)
      : session_hop(std::move(ex), std::move(st)), lanes_(ex_, [](std::string_view, std::string_view) {}) {}
  ~client_poll_hop() override { close(); }

  void start(std::shared_ptr<lane> first) {
    for (unsigned i = 0; i < std::max(1u, st_->options.lanes); ++i) {
      auto l = i == 0 ? first : std::make_shared<lane>();
      l->id = i;
      lanes_.spawn("http carrier lane", [st = st_, l] { return run_lane(st, l); });
    }
  }

  void close() override {
    if (st_->closed) return;
    st_->closed = true;
    lanes_.cancel();
    st_->changed.notify_all();
    // Tell the middle, as a TCP close would, so it ends the pair now (not
    // after the session's idle timeout). Bounded in time and owned by the
    // session's state alone: it outlives this hop by at most that long.
    if (st_->session.opened() && !st_->session.failed())
      asio::co_spawn(ex_, say_goodbye(st_), [](std::exception_ptr e) {
        // Its own owner (it holds the session's state): an exception is
        // heard and told, never lost; the goodbye is best effort.
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          runtime::log_warn("http", "the goodbye of an http carrier session failed: ", x.what());
        } catch (...) {
          runtime::log_warn("http", "the goodbye of an http carrier session failed");
        }
      });
  }

 private:
  static asio::awaitable<void> say_goodbye(std::shared_ptr<client_state> st) {
    std::string why;
    lane l;
    l.socket = co_await st->options.connect(why);
    if (!l.socket) co_return;
    poll::request bye{poll::request::kind::up, 0, 0, false, {}, true};
    auto step = exchange(l, st->head_of(bye, 0), {}, std::chrono::seconds(2));
    co_await std::move(step);
  }

  runtime::task_group lanes_;
};

std::string random_session_id() {
  std::array<std::uint8_t, poll::session_id_length / 2> raw{};
  Botan::system_rng().randomize(raw.data(), raw.size());
  static constexpr char hex[] = "0123456789abcdef";
  std::string id;
  for (auto b : raw) {
    id += hex[b >> 4];
    id += hex[b & 0xf];
  }
  return id;
}

}  // namespace

asio::awaitable<hop_ptr> open_poll_hop(asio::any_io_executor ex, poll_client_options options,
                                       clock::duration timeout, std::string& why) {
  const auto deadline = clock::now() + timeout;
  auto st = std::make_shared<client_state>(std::move(options), random_session_id());
  auto first = std::make_shared<lane>();
  first->socket = co_await st->options.connect(why);
  if (!first->socket) co_return nullptr;
  // The first POST (chunk 0, empty) opens the session: its answer says
  // whether a middle speaks this carrier at all, and a proxy's refusal is
  // told now, as a way that does not work.
  auto r = st->session.next();
  if (!r || r->n != 0) {
    why = "internal: the session's first request is not its opening";
    co_return nullptr;
  }
  exchange_result res;
  // A proxy that wants a login answers 407 first (and again for a stale
  // Digest nonce): the opening goes again with the login, a few times.
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (!first->socket) {
      first->socket = co_await st->options.connect(why);
      first->buffer.clear();
      if (!first->socket) co_return nullptr;
    }
    auto step = exchange(*first, st->head_of(*r, first->id), r->body,
                         std::max<clock::duration>(deadline - clock::now(), {}));
    res = co_await std::move(step);
    if (!res.answered) {
      why = "the first request got no answer: " + res.failure;
      co_return nullptr;
    }
    if (!res.keep_alive) first->socket.reset();
    if (res.status != 407 || !st->options.challenged) break;
    std::string login_why;
    if (!st->options.challenged(first->id, res.proxy_authenticate, login_why)) {
      why = "the proxy answered 407 Proxy Authentication Required: " + login_why;
      co_return nullptr;
    }
  }
  if (res.status != 204) {
    why = "the first request was answered " + std::to_string(res.status) + " " +
          std::string(http::obsolete_reason(static_cast<http::status>(res.status)));
    if (res.status == 407) why += " (the proxy wants a login: give a user name and password in the proxy URL)";
    if (res.status == 404) why += " (not a middle proxy, or one without the http carrier)";
    co_return nullptr;
  }
  st->session.on_up_answer(0, 204);
  first->last_used = clock::now();
  auto hop = std::make_unique<client_poll_hop>(ex, st);
  hop->start(first);
  co_return hop;
}

// ======================== server ==========================================

namespace {

struct session_state {
  poll::server_session session;
  runtime::broadcast changed;
  clock::time_point last_request = clock::now();
  bool closed = false;    // the middle closed the hop
  bool shut = false;      // ... after ending its stream (what is left is delivered)
  bool expired = false;   // no request for session_idle: gone
  std::uint64_t cancels = 0;
  std::string source;  // where its opening came from (runtime::source_of)

  bool aborted = false;  // the client said it closed the hop
  std::optional<boost::system::error_code> read_failure() const {
    if (aborted) return boost::system::error_code(asio::error::connection_reset);
    if (expired) return boost::system::error_code(asio::error::timed_out);
    return std::nullopt;
  }
  bool write_refused() const { return expired || shut; }
  // Gone for the client: unknown from now on (404). A closed hop's
  // session stays until its last chunks and the end (410) are fetched.
  bool gone() const { return expired; }
  // Closed, everything delivered, and nobody asked for a while: forgotten.
  bool finished(clock::time_point now) const {
    return closed && session.all_delivered() && now - last_request > std::chrono::seconds(10);
  }
};

class server_poll_hop final : public session_hop<session_state> {
 public:
  using session_hop::session_hop;
  ~server_poll_hop() override { close(); }

  // As a TCP close after a write: what was written is still delivered,
  // then the end (a refusal's ERROR frame reaches the client).
  void close() override {
    if (st_->closed) return;
    st_->closed = true;
    st_->shut = true;
    st_->session.shutdown();
    st_->changed.notify_all();
  }
};

class poll_server_impl final : public poll_server {
 public:
  poll_server_impl(asio::any_io_executor ex, options o, hop_handler on_hop)
      : ex_(std::move(ex)), options_(std::move(o)), on_hop_(std::move(on_hop)),
        tasks_(ex_, [](std::string_view, std::string_view) {}) {}

  void start() {
    tasks_.spawn("http carrier sweeper", [self = std::static_pointer_cast<poll_server_impl>(shared_from_this())] {
      return self->sweep();
    });
  }

  asio::awaitable<void> serve(tcp::socket socket, std::vector<std::uint8_t> first) override {
    beast::flat_buffer buffer;
    {
      auto space = buffer.prepare(first.size());
      std::memcpy(space.data(), first.data(), first.size());
      buffer.commit(first.size());
    }
    for (;;) {
      http::request_parser<http::vector_body<std::uint8_t>> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(poll::max_chunk);
      boost::system::error_code ec;
      {
        runtime::watchdog limit(socket, options_.connection_idle);
        co_await http::async_read(socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec) {
        // A connection that ends between requests is the normal end.
        if (ec == http::error::body_limit) co_await answer(socket, 413, {}, false);
        else if (parser.got_some() && ec != asio::error::operation_aborted && ec != http::error::end_of_stream &&
                 ec != asio::error::eof)
          co_await answer(socket, 400, {}, false);
        co_return;
      }
      auto req = parser.release();
      const bool keep_alive = req.keep_alive();
      std::string why;
      const auto target = std::string_view(req.target().data(), req.target().size());
      const auto fields = poll::parse_target(target, options_.path, why);
      int status = 0;
      std::vector<std::uint8_t> body;
      if (!fields) {
        status = why == "not an http carrier path" ? 404 : 400;
      } else if ((fields->what == poll::request::kind::up) != (req.method() == http::verb::post) ||
                 (fields->what == poll::request::kind::down && req.method() != http::verb::get)) {
        status = 405;
      } else if (fields->what == poll::request::kind::up) {
        auto step = on_up(*fields, req.body(), socket);
        status = co_await std::move(step);
      } else {
        auto step = on_down(*fields, body);
        status = co_await std::move(step);
      }
      if (!co_await answer(socket, status, body, keep_alive && status < 400)) co_return;
      if (!keep_alive || status >= 400) co_return;
    }
  }

  std::size_t sessions() const override { return sessions_.size(); }

  void close_all() override {
    tasks_.cancel();
    while (!sessions_.empty()) forget(sessions_.begin());
  }

 private:
  asio::awaitable<bool> answer(tcp::socket& s, int status, std::span<const std::uint8_t> body, bool keep_alive) {
    boost::system::error_code ec;
    auto step = send_message(s, answer_head(status, body.size(), keep_alive), body, options_.request_timeout, ec);
    co_await std::move(step);
    co_return !ec;
  }

  std::shared_ptr<session_state> find(const std::string& id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return nullptr;
    if (it->second->gone()) {
      forget(it);
      return nullptr;
    }
    return it->second;
  }

  void forget(std::map<std::string, std::shared_ptr<session_state>>::iterator it) {
    ended_.insert(it->first);
    ended_order_.push_back(it->first);
    // A repeated opening of an ended session is not a new session: its id
    // is remembered (bounded: the oldest are forgotten).
    while (ended_order_.size() > 4096) {
      ended_.erase(ended_order_.front());
      ended_order_.pop_front();
    }
    it->second->expired = true;
    it->second->changed.notify_all();
    sessions_.erase(it);
  }

  asio::awaitable<int> on_up(const poll::target_fields& f, const std::vector<std::uint8_t>& body, tcp::socket& socket) {
    auto st = find(f.session);
    if (f.close) {
      // The client closed its hop: the session ends at once, as a TCP
      // connection an end closes (the middle ends the pair now, not after
      // the idle timeout).
      if (!st) co_return 404;
      st->aborted = true;
      forget(sessions_.find(f.session));
      co_return 204;
    }
    if (!st) {
      if (f.n != 0 || ended_.count(f.session)) co_return 404;
      if (sessions_.size() >= options_.max_sessions) forget_finished(clock::now());
      boost::system::error_code ec;
      const auto from = socket.remote_endpoint(ec);
      const auto source = ec ? std::string() : runtime::source_of(from.address());
      const auto local = socket.local_endpoint(ec);
      if (sessions_.size() >= options_.max_sessions) co_return 503;
      // One source (an address, or a proxy many ends share) holds at most
      // a share of the table: a stranger cannot lock everyone else out.
      if (std::count_if(sessions_.begin(), sessions_.end(), [&](auto& e) { return e.second->source == source; }) >=
          static_cast<std::ptrdiff_t>(options_.max_sessions_per_source))
        co_return 503;
      st = std::make_shared<session_state>();
      st->source = source;
      sessions_[f.session] = st;
      on_hop_(std::make_unique<server_poll_hop>(ex_, st), from, local);
    }
    // The middle closed the hop: what comes is dropped, as by a closed
    // socket, and does not keep the session alive.
    if (st->closed) co_return 204;
    st->last_request = clock::now();
    // A reader behind: the POST waits a little for room rather than being
    // refused at once (a refusal costs the client a retry and counts as
    // a failure).
    const auto deadline = clock::now() + options_.request_timeout / 2;
    for (;;) {
      const int status = st->session.on_up(f.n, body, f.fin);
      if (status != 503 || clock::now() >= deadline || st->gone()) {
        if (status == 204) st->changed.notify_all();
        co_return status;
      }
      co_await st->changed.wait_until(deadline);
    }
  }

  asio::awaitable<int> on_down(const poll::target_fields& f, std::vector<std::uint8_t>& body) {
    auto st = find(f.session);
    if (!st) co_return 404;
    const auto deadline = clock::now() + options_.heartbeat;
    for (;;) {
      st->last_request = clock::now();
      if (st->gone()) co_return 404;
      const auto room_before = st->session.room();
      const auto a = st->session.on_down(f.n, f.acknowledged);
      // Acknowledged chunks make room for the writer. Only then: a held
      // request waking the other held one for nothing would ping-pong.
      if (st->session.room() != room_before) st->changed.notify_all();
      switch (a.what) {
        case poll::server_session::answer::kind::chunk: body.assign(a.body.begin(), a.body.end()); co_return 200;
        case poll::server_session::answer::kind::ended: co_return 410;
        case poll::server_session::answer::kind::wait: break;
      }
      if (clock::now() >= deadline) co_return 200;  // the heartbeat: empty
      co_await st->changed.wait_until(deadline);
    }
  }

  // Ends sessions nobody asks for any more.
  asio::awaitable<void> sweep() {
    asio::steady_timer timer(ex_);
    for (;;) {
      timer.expires_after(std::chrono::seconds(2));
      co_await timer.async_wait(asio::use_awaitable);
      forget_finished(clock::now());
    }
  }

  void forget_finished(clock::time_point now) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto next = std::next(it);
      if (it->second->gone() || it->second->finished(now) || now - it->second->last_request > options_.session_idle)
        forget(it);
      it = next;
    }
  }

  asio::any_io_executor ex_;
  options options_;
  hop_handler on_hop_;
  std::map<std::string, std::shared_ptr<session_state>> sessions_;
  std::set<std::string> ended_;
  std::deque<std::string> ended_order_;
  runtime::task_group tasks_;
};

}  // namespace

std::shared_ptr<poll_server> poll_server::make(asio::any_io_executor ex, options o, hop_handler on_hop) {
  auto s = std::make_shared<poll_server_impl>(std::move(ex), std::move(o), std::move(on_hop));
  s->start();
  return s;
}

}  // namespace transport
