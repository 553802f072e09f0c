#include "transport/tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace transport {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// How much OpenSSL reads from the socket at once: four full records. More
// saved no measurable time and costs memory per busy hop.
constexpr int read_ahead_bytes = 64 * 1024;
// A send buffer grown past this is given back once sent (a bulk burst must
// not leave every idle hop holding its largest write). Keeping up to 128 KiB
// measured the same CPU per GiB (4 rounds, tls and wss, one sitting).
constexpr std::size_t kept_send_capacity = 32 * 1024;

BIO_METHOD* hop_bio_method();

}  // namespace

struct tls_stream::impl {
  tcp::socket socket;
  std::vector<std::uint8_t> prefix;
  std::size_t prefix_off = 0;
  std::shared_ptr<asio::ssl::context> context;  // outlives ssl
  SSL* ssl = nullptr;
  // Sealed records not yet handed to a send, and the ones being sent.
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> sending;
  // The first record's worth of a write in several pieces, joined (at
  // most record_plaintext: kept).
  std::vector<std::uint8_t> joined;
  // Bytes OpenSSL wrote while reading, not sent yet (max_unsent_from_reads).
  std::size_t unsent_from_reads = 0;
  // What the current read step may still take from the socket.
  std::size_t read_budget = max_read_per_step;
  bool saw_eof = false;
  int socket_errno = 0;
  bool cancelled = false;
  // A failure found while a read still had bytes to deliver: the next read
  // reports it (a socket error is not reported twice by the kernel).
  boost::system::error_code deferred;
  std::string failure;

  impl(tcp::socket s, std::vector<std::uint8_t> p, std::shared_ptr<asio::ssl::context> c)
      : socket(std::move(s)), prefix(std::move(p)), context(std::move(c)) {}
  ~impl() {
    if (ssl) SSL_free(ssl);
  }

  bool prefix_left() const { return prefix_off < prefix.size(); }

  // What an OpenSSL failure means for the hop. A peer that closed the TCP
  // connection between records, with or without close_notify, ended the
  // hop (eof), as plain TCP does: ends close hops without close_notify.
  boost::system::error_code error_for(int ssl_error) {
    if (ssl_error == SSL_ERROR_ZERO_RETURN || (saw_eof && !SSL_has_pending(ssl))) {
      ERR_clear_error();
      return asio::error::eof;
    }
    if (saw_eof) {
      // A close in the middle of a record: never an end the peer meant.
      ERR_clear_error();
      return asio::ssl::error::stream_truncated;
    }
    if (ssl_error == SSL_ERROR_SYSCALL && socket_errno != 0) {
      ERR_clear_error();
      return {socket_errno, boost::system::system_category()};
    }
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return asio::ssl::error::stream_truncated;
    return {static_cast<int>(code), asio::error::get_ssl_category()};
  }

  // The alert OpenSSL wrote about a record it refused would otherwise wait
  // for a write that never comes: sent at once, best effort, so the peer
  // learns why (unless a send is under way, whose order must hold).
  void send_last_words(const boost::system::error_code& ec) {
    if (!ec || ec == asio::error::eof || out.empty() || !sending.empty()) return;
    (void)::send(socket.native_handle(), out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    out.clear();
  }

  void note(const boost::system::error_code& ec) {
    if (ec && ec != asio::error::eof && ec != asio::error::operation_aborted && failure.empty())
      failure = "TLS: " + ec.message();
  }
};

namespace {

tls_stream::impl& state_of(BIO* b) { return *static_cast<tls_stream::impl*>(BIO_get_data(b)); }

int bio_read(BIO* b, char* data, std::size_t len, std::size_t* got) {
  auto& s = state_of(b);
  BIO_clear_retry_flags(b);
  *got = 0;
  if (s.prefix_left()) {
    const auto n = std::min(len, s.prefix.size() - s.prefix_off);
    std::memcpy(data, s.prefix.data() + s.prefix_off, n);
    s.prefix_off += n;
    if (!s.prefix_left()) {
      s.prefix.clear();
      s.prefix.shrink_to_fit();
      s.prefix_off = 0;
    }
    *got = n;
    return 1;
  }
  if (s.read_budget == 0) {
    BIO_set_retry_read(b);  // this step had its share: yield (try_read)
    return 0;
  }
  for (;;) {
    const auto r = ::recv(s.socket.native_handle(), data, std::min(len, s.read_budget), 0);
    if (r > 0) {
      *got = static_cast<std::size_t>(r);
      s.read_budget -= *got;
      return 1;
    }
    if (r == 0) {
      s.saw_eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_read(b);
      return 0;
    }
    s.socket_errno = errno;
    return 0;
  }
}

// Never blocks: the records wait in `out` until a write sends them.
int bio_write(BIO* b, const char* data, std::size_t len, std::size_t* written) {
  auto& s = state_of(b);
  BIO_clear_retry_flags(b);
  // Same element type on both sides, so this is one memcpy (from `const
  // char*` it was a byte-by-byte loop: a quarter of a middle's time).
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
  s.out.insert(s.out.end(), bytes, bytes + len);
  *written = len;
  return 1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return state_of(b).saw_eof ? 1 : 0;
    default: return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* hop_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lstp tls hop");
    if (!m || !BIO_meth_set_read_ex(m, bio_read) || !BIO_meth_set_write_ex(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create))
      throw std::runtime_error("OpenSSL: cannot make the hop's BIO method");
    return m;
  }();
  return method;
}

}  // namespace

tls_stream::tls_stream(tcp::socket socket, std::vector<std::uint8_t> already_read,
                       std::shared_ptr<asio::ssl::context> context, side role, const std::string& server_name)
    : im_(std::make_unique<impl>(std::move(socket), std::move(already_read), std::move(context))) {
  im_->ssl = SSL_new(im_->context->native_handle());
  if (!im_->ssl) throw std::runtime_error("OpenSSL: cannot make a TLS session");
  BIO* bio = BIO_new(hop_bio_method());
  if (!bio) throw std::runtime_error("OpenSSL: cannot make the hop's BIO");
  BIO_set_data(bio, im_.get());
  SSL_set_bio(im_->ssl, bio, bio);  // one reference, owned by the session
  SSL_set_read_ahead(im_->ssl, 1);
  SSL_set_default_read_buffer_len(im_->ssl, read_ahead_bytes);
  if (role == side::client) {
    SSL_set_connect_state(im_->ssl);
    // SNI names a host, never an address (RFC 6066).
    boost::system::error_code not_an_address;
    (void)asio::ip::make_address(server_name, not_an_address);
    if (!server_name.empty() && not_an_address) SSL_set_tlsext_host_name(im_->ssl, server_name.c_str());
  } else {
    SSL_set_accept_state(im_->ssl);
  }
  boost::system::error_code ignored;
  im_->socket.non_blocking(true, ignored);  // OpenSSL's reads must never block
}

tls_stream::tls_stream(tls_stream&&) noexcept = default;
tls_stream::~tls_stream() = default;

tls_stream::executor_type tls_stream::get_executor() { return im_->socket.get_executor(); }
tcp::socket& tls_stream::socket() { return im_->socket; }
const std::string& tls_stream::failure() const { return im_->failure; }

std::string tls_stream::alpn() const {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(im_->ssl, &p, &len);
  return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

std::string tls_stream::version() const { return SSL_get_version(im_->ssl); }
std::size_t tls_stream::unsent() const { return im_->out.size() + im_->sending.size(); }
SSL* tls_stream::native_handle() { return im_->ssl; }

std::string tls_stream::cipher() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(im_->ssl);
  return c ? SSL_CIPHER_get_name(c) : "";
}

asio::awaitable<void> tls_stream::flush(boost::system::error_code& ec) {
  while (auto* out = next_to_send()) {
    const auto n =
        co_await asio::async_write(im_->socket, asio::buffer(*out), asio::redirect_error(asio::use_awaitable, ec));
    sent(n);
    if (ec) co_return;
  }
}

asio::awaitable<void> tls_stream::handshake(boost::system::error_code& ec) {
  ec = {};
  for (;;) {
    if (im_->cancelled) {
      ec = asio::error::operation_aborted;
      co_return;
    }
    ERR_clear_error();
    im_->read_budget = max_read_per_step;
    const int r = SSL_do_handshake(im_->ssl);
    const int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(im_->ssl, r);
    const bool yield = e == SSL_ERROR_WANT_READ && im_->read_budget == 0;
    boost::system::error_code failed;
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) failed = im_->error_for(e);
    co_await flush(ec);  // our next flight, or the alert that says why we give up
    if (failed) ec = failed;  // why the handshake failed, not that the alert found no one
    if (ec || e == SSL_ERROR_NONE) break;
    if (yield) {
      co_await asio::post(im_->socket.get_executor(), asio::use_awaitable);
      continue;
    }
    co_await im_->socket.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  // A peer that closes during the handshake did not finish it.
  if (ec == asio::error::eof) ec = asio::ssl::error::stream_truncated;
  im_->note(ec);
}

tls_stream::step tls_stream::try_read(asio::mutable_buffer buf, std::size_t& n, boost::system::error_code& ec) {
  n = 0;
  ec = {};
  if (im_->cancelled) {
    ec = asio::error::operation_aborted;
    return step::ready;
  }
  if (im_->deferred) {
    ec = im_->deferred;
    return step::ready;
  }
  if (buf.size() == 0) return step::ready;
  auto* p = static_cast<char*>(buf.data());
  im_->read_budget = max_read_per_step;
  const auto out_before = im_->out.size();
  step result = step::ready;
  boost::system::error_code failed;
  while (n < buf.size()) {
    std::size_t got = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(im_->ssl, p + n, buf.size() - n, &got);
    if (r == 1) {
      n += got;
      // Another record only when its bytes are already here: a read that
      // finds the socket empty costs a system call for nothing.
      if (!SSL_has_pending(im_->ssl) && !im_->prefix_left()) break;
      continue;
    }
    const int e = SSL_get_error(im_->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
      if (n == 0) result = im_->read_budget == 0 ? step::yield : step::want_read;
      break;
    }
    failed = im_->error_for(e);
    break;
  }
  // OpenSSL may answer what it reads (a KeyUpdate); the answer waits for
  // the next write, and a peer may not make it grow without end.
  im_->unsent_from_reads += im_->out.size() - out_before;
  if (!failed && im_->unsent_from_reads > max_unsent_from_reads) {
    failed = asio::error::no_buffer_space;
    im_->failure = "TLS: the peer's messages made this side answer more than " +
                   std::to_string(max_unsent_from_reads / 1024) +
                   " KiB before it wrote anything (a flood of key updates or renegotiations)";
  }
  if (!failed) return result;
  im_->note(failed);
  im_->send_last_words(failed);
  if (n > 0)
    im_->deferred = failed;  // deliver the bytes first
  else
    ec = failed;
  return step::ready;
}

std::size_t tls_stream::seal_bytes(const void* data, std::size_t size, boost::system::error_code& ec) {
  // Room for the records at once: appended one record at a time, the
  // buffer would otherwise grow (and copy) several times per write.
  constexpr std::size_t record_overhead = 5 + 8 + 16;  // header, explicit nonce (1.2), tag
  im_->out.reserve(im_->out.size() + size + (size / record_plaintext + 1) * record_overhead);
  std::size_t written = 0;
  ERR_clear_error();
  if (SSL_write_ex(im_->ssl, data, size, &written) == 1) return written;
  const int e = SSL_get_error(im_->ssl, 0);
  if (e == SSL_ERROR_WANT_READ) {
    ERR_clear_error();
    ec = asio::error::would_block;  // the rest of a peer's handshake message first
    return 0;
  }
  ec = im_->error_for(e);
  if (ec == asio::error::eof) ec = asio::error::broken_pipe;  // no writing after the end
  im_->note(ec);
  return 0;
}

std::size_t tls_stream::seal(std::span<const asio::const_buffer> pieces, boost::system::error_code& ec) {
  ec = {};
  if (pieces.empty()) return 0;
  if (pieces.size() == 1)
    return seal_bytes(pieces[0].data(), std::min(pieces[0].size(), max_sealed_per_send), ec);
  // Several pieces (a WebSocket frame's header and payload): joined only
  // as far as one full record, so the header does not become a record of
  // its own; the rest of the piece that completes it is sealed from where
  // it lies, not copied.
  auto& joined = im_->joined;
  joined.clear();
  std::size_t i = 0, used = 0;  // piece i, of which `used` bytes were joined
  bool cut = false;             // piece i was joined only in part
  for (; i < pieces.size() && joined.size() < record_plaintext; ++i) {
    const auto* q = static_cast<const std::uint8_t*>(pieces[i].data());
    used = std::min(pieces[i].size(), record_plaintext - joined.size());
    joined.insert(joined.end(), q, q + used);
    if (used < pieces[i].size()) {
      cut = true;
      break;
    }
  }
  const auto first = seal_bytes(joined.data(), joined.size(), ec);
  // Whole pieces left over go with the next write_some.
  if (ec || !cut) return first;
  const auto rest = std::min(pieces[i].size() - used, max_sealed_per_send - first);
  boost::system::error_code later;  // reported by the next write: `first` is sealed already
  return first + seal_bytes(static_cast<const std::uint8_t*>(pieces[i].data()) + used, rest, later);
}

std::vector<std::uint8_t>* tls_stream::next_to_send() {
  if (im_->out.empty()) return nullptr;
  std::swap(im_->out, im_->sending);
  im_->unsent_from_reads = 0;
  return &im_->sending;
}

void tls_stream::sent(std::size_t bytes) {
  auto& s = im_->sending;
  if (bytes < s.size()) {
    // Cut short: what did not go out goes first next time, before any
    // record sealed since (their sequence numbers follow its).
    s.erase(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(bytes));
    s.insert(s.end(), im_->out.begin(), im_->out.end());
    std::swap(s, im_->out);
  }
  if (s.capacity() > kept_send_capacity)
    s = {};
  else
    s.clear();
}

asio::awaitable<std::size_t> tls_stream::read_some(asio::mutable_buffer buf, boost::system::error_code& ec) {
  for (;;) {
    std::size_t n = 0;
    switch (try_read(buf, n, ec)) {
      case step::ready: co_return n;
      case step::yield: co_await asio::post(im_->socket.get_executor(), asio::use_awaitable); break;
      case step::want_read:
        co_await im_->socket.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return 0;
        break;
    }
  }
}

asio::awaitable<void> tls_stream::write(asio::const_buffer buf, boost::system::error_code& ec) {
  ec = {};
  while (buf.size() > 0) {
    const asio::const_buffer piece[1] = {buf};
    const auto n = seal(piece, ec);
    if (ec == asio::error::would_block) {
      co_await im_->socket.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      continue;
    }
    if (ec) co_return;
    co_await flush(ec);
    if (ec) {
      im_->note(ec);
      co_return;
    }
    buf += n;
  }
}

asio::awaitable<void> tls_stream::wait_readable(boost::system::error_code& ec) {
  ec = {};
  if (im_->cancelled) {
    ec = asio::error::operation_aborted;
    co_return;
  }
  if (SSL_has_pending(im_->ssl) || im_->prefix_left() || im_->deferred) co_return;
  co_await im_->socket.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
}

void tls_stream::cancel(boost::system::error_code& ec) {
  im_->cancelled = true;
  im_->socket.cancel(ec);
}

void tls_stream::close() {
  boost::system::error_code ignored;
  im_->socket.close(ignored);
}

void beast_close_socket(tls_stream& s) { s.close(); }

void teardown(boost::beast::role_type, tls_stream& s, boost::system::error_code& ec) {
  s.close();
  ec = {};
}

}  // namespace transport
