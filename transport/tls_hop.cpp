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

// Like a browser: TLS 1.3 (1.2 at least), ALPN offering h2 and http/1.1;
// the middle always picks http/1.1 (a WebSocket may follow). No session
// tickets: nothing is written after the handshake but data.
const unsigned char alpn_offer[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

void common_settings(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression | SSL_OP_NO_TICKET |
                  SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  // TLS 1.3 suites in a browser's order (OpenSSL's own puts AES-256
  // first): a ClientHello like Chrome's and Firefox's, and AES-128 costs
  // about 7% less than AES-256 here, paid four times per byte with a middle.
  SSL_CTX_set_ciphersuites(ctx.native_handle(),
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
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
        stream_(std::move(socket), std::move(already_read), identity_ ? identity_->get().context : client_context(),
                identity_ ? tls_stream::side::server : tls_stream::side::client, server_name) {}

  asio::awaitable<void> handshake(boost::system::error_code& ec) override { co_await stream_.handshake(ec); }
  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    co_return co_await stream_.read_some(buf, ec);
  }
  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    co_await stream_.write(buf, ec);
  }
  void shutdown_send() override {}  // close_notify would end both directions of the outer session
  void close() override { stream_.close(); }
  void cancel(boost::system::error_code& ec) override { stream_.cancel(ec); }
  std::string kind() const override { return "tls"; }
  asio::any_io_executor get_executor() override { return stream_.get_executor(); }
  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override { co_await stream_.wait_readable(ec); }
  void tune_socket() override { configure_hop_socket(stream_.socket()); }
  const std::string& failure() const override { return stream_.failure(); }
  tls_stream& stream() override { return stream_; }

 private:
  std::shared_ptr<const tls_server_identity> identity_;
  tls_stream stream_;
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
