// The outer TLS of `tls` and `wss` hops: OpenSSL driven directly on the
// hop's non-blocking TCP socket, with Asio only waiting for readiness.
//
// Why not Asio's ssl::stream: its engine moves every record through a
// 17 KiB BIO pair, copies it twice more on the way, and reads and writes one
// record per system call and per asynchronous operation. A middle passing a
// tls hop's bytes on spent most of its time there, not in the cipher. Here:
//  - reads: OpenSSL reads ahead straight from the socket into its record
//    buffer (up to `read_ahead_bytes` per recv), and one read_some returns as
//    many records' plaintext as are already there and fit;
//  - writes: a whole write is sealed into records at once, appended to a
//    buffer of ours (never blocking), and sent with one write.
// Bytes that OpenSSL writes while reading (the answer to a peer's
// KeyUpdate) wait in that buffer and go out before the next write's
// records, which is when TLS 1.3 requires them; a peer that makes it write
// more than `max_unsent_from_reads` that way fails the hop. One read step
// takes at most `max_read_per_step` from the socket, then yields, so a peer
// sending records that carry no data cannot hold the thread.
//
// Both a coroutine interface (for the hop) and the AsyncReadStream /
// AsyncWriteStream pair (so Beast's WebSocket runs on it directly, for wss)
// use the same non-waiting steps (try_read, seal, next_to_send).
//
// Single-threaded, like every hop: one read and one write may be pending.
#pragma once

#include <boost/asio/append.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>

#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace transport {

class tls_stream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  enum class side { client, server };

  // At most this much is sealed per send; a longer write is sent in parts.
  static constexpr std::size_t max_sealed_per_send = 256 * 1024;
  // What OpenSSL may write while reading before the next write sends it.
  static constexpr std::size_t max_unsent_from_reads = 64 * 1024;
  // What one read step takes from the socket before it yields.
  static constexpr std::size_t max_read_per_step = 256 * 1024;
  // The most plaintext one TLS record carries.
  static constexpr std::size_t record_plaintext = 16 * 1024;

  // `already_read`: bytes taken from the socket before (sniffed on a
  // middle's port, read past a proxy's answer), read first. `server_name`
  // goes into SNI on the client side when it is a host name.
  tls_stream(boost::asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read,
             std::shared_ptr<boost::asio::ssl::context> context, side role, const std::string& server_name);
  tls_stream(tls_stream&&) noexcept;
  tls_stream& operator=(tls_stream&&) = delete;
  ~tls_stream();

  executor_type get_executor();
  boost::asio::ip::tcp::socket& socket();

  // --- the coroutine interface ---
  boost::asio::awaitable<void> handshake(boost::system::error_code& ec);
  boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer buf, boost::system::error_code& ec);
  boost::asio::awaitable<void> write(boost::asio::const_buffer buf, boost::system::error_code& ec);
  // Completes when a read would not wait (bytes, an end, a failure).
  boost::asio::awaitable<void> wait_readable(boost::system::error_code& ec);

  // Pending operations complete with operation_aborted, and reads stop
  // (a read may sit between two steps; the flag stops the next one too).
  void cancel(boost::system::error_code& ec);
  void close();
  // Why the handshake or a later read or write failed, in words.
  const std::string& failure() const;
  // The ALPN protocol chosen, empty when none (for tests and logs).
  std::string alpn() const;
  // "TLSv1.3" and the like.
  std::string version() const;
  // Bytes sealed and not yet sent (for tests).
  std::size_t unsent() const;
  // OpenSSL's session (for tests that act as a peer would).
  SSL* native_handle();
  // The cipher suite agreed on ("TLS_AES_128_GCM_SHA256").
  std::string cipher() const;

  // --- the non-waiting steps ---
  enum class step { ready, want_read, yield };
  // Takes what is readable without waiting: `ready` with n > 0, or with ec
  // set (eof at the end, a failure); `want_read` when the socket has to
  // become readable first; `yield` when this step read its share and the
  // next should come after other work.
  step try_read(boost::asio::mutable_buffer buf, std::size_t& n, boost::system::error_code& ec);
  // Seals up to max_sealed_per_send bytes of `pieces` into records waiting
  // to be sent; returns how many bytes. Several pieces are joined as far
  // as one full record, so a WebSocket frame's header does not become a
  // record of its own.
  // `ec` is would_block when OpenSSL must read first (the rest of a peer's
  // post-handshake message): wait until readable and seal again.
  std::size_t seal(std::span<const boost::asio::const_buffer> pieces, boost::system::error_code& ec);
  // The records waiting, handed over to be sent (null when none); sent()
  // with how many bytes went out: a send cut short (a cancel) keeps the
  // rest in front of what comes next, so no record is lost or reordered.
  std::vector<std::uint8_t>* next_to_send();
  void sent(std::size_t bytes);

  // --- AsyncReadStream / AsyncWriteStream ---
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::mutable_buffer b = *it;
      if (b.size() > 0) {
        first = b;
        break;
      }
    }
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(read_op{this, first},
                                                                                           token, socket());
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    write_op op{this};
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && op.count < op.pieces.size(); ++it) {
      const boost::asio::const_buffer b = *it;
      if (b.size() > 0) op.pieces[op.count++] = b;
    }
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(std::move(op), token,
                                                                                           socket());
  }

 private:
  struct read_op {
    tls_stream* s;
    boost::asio::mutable_buffer buf;
    bool waited = false;
    bool done = false;
    std::size_t n = 0;
    boost::system::error_code result;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (done) return self.complete(result, n);
      if (ec) return self.complete(ec, 0);  // the wait failed: cancelled, closed
      switch (s->try_read(buf, n, result)) {
        case step::want_read:
          waited = true;
          s->socket().async_wait(boost::asio::ip::tcp::socket::wait_read, std::move(self));
          return;
        case step::yield:
          waited = true;
          boost::asio::post(s->get_executor(), std::move(self));
          return;
        case step::ready: break;
      }
      if (waited) return self.complete(result, n);
      done = true;  // never complete inside the initiation
      boost::asio::post(s->get_executor(), std::move(self));
    }
  };

  struct write_op {
    tls_stream* s;
    std::array<boost::asio::const_buffer, 8> pieces{};
    std::size_t count = 0;
    std::size_t sealed = 0;
    // 0 sealing, 1 sending, 2 completing after a post, 3 waiting to read
    int state = 0;
    bool waited = false;
    boost::system::error_code result;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t bytes = 0) {
      if (state == 2) return self.complete(result, sealed);
      if (state == 3) {
        if (ec) return self.complete(ec, 0);
        state = 0;
      }
      if (state == 0) {
        sealed = s->seal(std::span(pieces.data(), count), result);
        if (result == boost::asio::error::would_block) {
          state = 3;
          waited = true;
          return s->socket().async_wait(boost::asio::ip::tcp::socket::wait_read, std::move(self));
        }
        if (result || sealed == 0) {
          if (waited) return self.complete(result, sealed);
          state = 2;  // never complete inside the initiation
          return boost::asio::post(s->get_executor(), std::move(self));
        }
        state = 1;
      } else {
        s->sent(bytes);
        if (ec) return self.complete(ec, 0);
      }
      if (auto* out = s->next_to_send()) {
        boost::asio::async_write(s->socket(), boost::asio::buffer(*out), std::move(self));
        return;
      }
      self.complete({}, sealed);
    }
  };

  boost::asio::awaitable<void> flush(boost::system::error_code& ec);
  std::size_t seal_bytes(const void* data, std::size_t size, boost::system::error_code& ec);

 public:
  struct impl;  // the socket and OpenSSL's session; in the .cpp (its BIO reaches it)

 private:
  std::unique_ptr<impl> im_;
};

// Beast's WebSocket closes its next layer through these (found by ADL).
void beast_close_socket(tls_stream& s);
void teardown(boost::beast::role_type, tls_stream& s, boost::system::error_code& ec);

template <class Handler>
void async_teardown(boost::beast::role_type, tls_stream& s, Handler&& handler) {
  s.close();
  boost::asio::post(s.get_executor(), boost::asio::append(std::forward<Handler>(handler), boost::system::error_code{}));
}

}  // namespace transport
