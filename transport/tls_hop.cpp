#include "transport/tls_hop.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <botan/auto_rng.h>
#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/pkcs8.h>
#include <botan/x509self.h>

#include "transport/hop_socket.hpp"

#include <cstring>
#include <stdexcept>

namespace transport {

namespace asio = boost::asio;

namespace {
std::shared_ptr<asio::ssl::context> make_server_context(const Botan::X509_Certificate& cert,
                                                        const Botan::Private_Key& key);
}  // namespace

struct tls_server_identity::impl {
  Botan::X509_Certificate certificate;
  std::unique_ptr<Botan::Private_Key> key;
  // OpenSSL's context for the server side of TLS hops, made from the two.
  std::shared_ptr<boost::asio::ssl::context> context;
};

tls_server_identity::tls_server_identity(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
tls_server_identity::~tls_server_identity() = default;

std::shared_ptr<const tls_server_identity> tls_server_identity::load(const std::string& certificate_file,
                                                                     const std::string& private_key_file) {
  auto i = std::make_unique<impl>();
  try {
    i->certificate = Botan::X509_Certificate(certificate_file);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read the TLS certificate " + certificate_file + ": " + e.what());
  }
  try {
    Botan::AutoSeeded_RNG rng;
    Botan::DataSource_Stream in(private_key_file);
    i->key = Botan::PKCS8::load_key(in);
  } catch (const std::exception& e) {
    // Botan's message does not contain key material.
    throw std::runtime_error("cannot read the TLS private key " + private_key_file + ": " + e.what());
  }
  try {
    i->context = make_server_context(i->certificate, *i->key);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot use the TLS certificate " + certificate_file + " with its key: " + e.what());
  }
  return std::shared_ptr<const tls_server_identity>(new tls_server_identity(std::move(i)));
}

std::shared_ptr<const tls_server_identity> tls_server_identity::self_signed(const std::string& host_name) {
  Botan::AutoSeeded_RNG rng;
  auto i = std::make_unique<impl>();
  auto key = std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp256r1"));
  Botan::X509_Cert_Options opts(host_name, 365 * 24 * 60 * 60);
  opts.dns = host_name;
  i->certificate = Botan::X509::create_self_signed_cert(opts, *key, "SHA-256", rng);
  i->key = std::move(key);
  i->context = make_server_context(i->certificate, *i->key);
  return std::shared_ptr<const tls_server_identity>(new tls_server_identity(std::move(i)));
}

namespace {

using asio::ip::tcp;
namespace ssl = asio::ssl;

// A TCP socket with bytes already taken from it (sniffed on a middle's
// port, or read past a proxy's answer) put back in front: what the TLS
// layer reads first.
class prefixed_socket {
 public:
  using executor_type = tcp::socket::executor_type;
  using lowest_layer_type = tcp::socket::lowest_layer_type;

  prefixed_socket(tcp::socket s, std::vector<std::uint8_t> prefix)
      : socket_(std::move(s)), prefix_(std::move(prefix)) {}

  executor_type get_executor() { return socket_.get_executor(); }
  lowest_layer_type& lowest_layer() { return socket_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const { return socket_.lowest_layer(); }
  tcp::socket& socket() { return socket_; }
  bool has_prefix() const { return prefix_off_ < prefix_.size(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (!has_prefix()) {
            socket_.async_read_some(b, std::move(handler));
            return;
          }
          const auto n =
              asio::buffer_copy(b, asio::buffer(prefix_.data() + prefix_off_, prefix_.size() - prefix_off_));
          prefix_off_ += n;
          if (!has_prefix()) {
            prefix_.clear();
            prefix_.shrink_to_fit();
            prefix_off_ = 0;
          }
          // Never complete inside the initiation.
          asio::post(socket_.get_executor(), asio::append(std::move(handler), boost::system::error_code{}, n));
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  tcp::socket socket_;
  std::vector<std::uint8_t> prefix_;
  std::size_t prefix_off_ = 0;
};

// Like a browser: TLS 1.3 (1.2 at least), ALPN offering h2 and http/1.1;
// the middle always picks http/1.1 (a WebSocket may follow). No session
// tickets: nothing is written after the handshake but data.
const unsigned char alpn_offer[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

void common_settings(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression | SSL_OP_NO_TICKET |
                  SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

std::shared_ptr<ssl::context> client_context() {
  static const auto ctx = [] {
    auto c = std::make_shared<ssl::context>(ssl::context::tls_client);
    common_settings(*c);
    // Camouflage only: any certificate is accepted (see the header).
    c->set_verify_mode(ssl::verify_none);
    SSL_CTX_set_alpn_protos(c->native_handle(), alpn_offer, sizeof alpn_offer);
    return c;
  }();
  return ctx;
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                   void*) {
  static const unsigned char http11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned i = 0; i < inlen;) {
    const unsigned len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof http11 && std::memcmp(in + i + 1, http11, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;  // a client offering none goes on without ALPN
}

std::shared_ptr<ssl::context> make_server_context(const Botan::X509_Certificate& cert, const Botan::Private_Key& key) {
  auto c = std::make_shared<ssl::context>(ssl::context::tls_server);
  common_settings(*c);
  SSL_CTX_set_num_tickets(c->native_handle(), 0);
  const auto cert_pem = cert.PEM_encode();
  c->use_certificate_chain(asio::buffer(cert_pem));
  // PKCS#8 PEM, in memory only, wiped when this function returns.
  const auto key_pem = Botan::PKCS8::PEM_encode(key);
  c->use_private_key(asio::buffer(key_pem), ssl::context::pem);
  SSL_CTX_set_alpn_select_cb(c->native_handle(), select_http11, nullptr);
  return c;
}

class tls_hop final : public tls_hop_base {
 public:
  tls_hop(tcp::socket socket, std::vector<std::uint8_t> already_read, std::string server_name,
          std::shared_ptr<const tls_server_identity> identity)
      : identity_(std::move(identity)),
        context_(identity_ ? identity_->get().context : client_context()),
        stream_(prefixed_socket(std::move(socket), std::move(already_read)), *context_) {
    // SNI names a host, never an address (RFC 6066).
    boost::system::error_code not_an_address;
    (void)asio::ip::make_address(server_name, not_an_address);
    if (!identity_ && !server_name.empty() && not_an_address)
      SSL_set_tlsext_host_name(stream_.native_handle(), server_name.c_str());
  }

  asio::awaitable<void> handshake(boost::system::error_code& ec) override {
    ec = {};
    co_await stream_.async_handshake(identity_ ? ssl::stream_base::server : ssl::stream_base::client,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) note_failure(ec);
  }

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    if (cancelled_) {
      ec = asio::error::operation_aborted;
      co_return 0;
    }
    auto n = co_await stream_.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
    // Ends close the TCP connection without close_notify (a hop is one
    // stream both ways): that is the hop's end, as with plain TCP.
    if (ec == ssl::error::stream_truncated) ec = asio::error::eof;
    if (ec && ec != asio::error::eof && ec != asio::error::operation_aborted) note_failure(ec);
    co_return n;
  }

  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    co_await asio::async_write(stream_, buf, asio::redirect_error(asio::use_awaitable, ec));
    if (ec && ec != asio::error::operation_aborted) note_failure(ec);
  }

  void shutdown_send() override {}  // close_notify would end both directions of the outer session

  void close() override {
    boost::system::error_code ignored;
    socket().close(ignored);
  }
  void cancel(boost::system::error_code& ec) override {
    // A read may sit between two steps (a completion already queued, the
    // next record not asked for yet): the flag stops the next step too.
    cancelled_ = true;
    socket().cancel(ec);
  }
  std::string kind() const override { return "tls"; }
  asio::any_io_executor get_executor() override { return socket().get_executor(); }
  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    ec = {};
    if (SSL_pending(stream_.native_handle()) > 0 || stream_.next_layer().has_prefix()) co_return;
    co_await socket().async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
  }
  void tune_socket() override { configure_hop_socket(socket()); }
  const std::string& failure() const override { return failure_; }

 private:
  tcp::socket& socket() { return stream_.next_layer().socket(); }
  void note_failure(const boost::system::error_code& ec) {
    if (failure_.empty()) failure_ = "TLS: " + ec.message();
  }

  std::shared_ptr<const tls_server_identity> identity_;
  std::shared_ptr<ssl::context> context_;  // shared by every hop of its kind; outlives the stream
  ssl::stream<prefixed_socket> stream_;
  bool cancelled_ = false;
  std::string failure_;
};

}  // namespace

std::unique_ptr<tls_hop_base> make_tls_client_hop(asio::ip::tcp::socket socket, std::string server_name,
                                                  std::vector<std::uint8_t> already_read) {
  return std::make_unique<tls_hop>(std::move(socket), std::move(already_read), std::move(server_name), nullptr);
}

std::unique_ptr<tls_hop_base> make_tls_server_hop(asio::ip::tcp::socket socket,
                                                  std::shared_ptr<const tls_server_identity> identity,
                                                  std::vector<std::uint8_t> already_read) {
  return std::make_unique<tls_hop>(std::move(socket), std::move(already_read), std::string(), std::move(identity));
}

}  // namespace transport
