#include "transport/tls_hop.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <botan/auto_rng.h>
#include <botan/credentials_manager.h>
#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/pkcs8.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_server.h>
#include <botan/x509self.h>

#include <cstring>
#include <stdexcept>

namespace transport {

namespace asio = boost::asio;

struct tls_server_identity::impl {
  Botan::X509_Certificate certificate;
  std::unique_ptr<Botan::Private_Key> key;
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
  return std::shared_ptr<const tls_server_identity>(new tls_server_identity(std::move(i)));
}

namespace {

// A browser-like TLS 1.2 offer: ECDHE key exchange, AEAD ciphers.
class camouflage_policy final : public Botan::TLS::Policy {
 public:
  bool allow_tls10() const override { return false; }
  bool allow_tls11() const override { return false; }
  bool allow_dtls10() const override { return false; }
  bool allow_dtls12() const override { return false; }
  std::vector<std::string> allowed_macs() const override { return {"AEAD"}; }
  std::vector<std::string> allowed_ciphers() const override {
    return {"AES-128/GCM", "AES-256/GCM", "ChaCha20Poly1305"};
  }
  bool allow_insecure_renegotiation() const override { return false; }
  bool allow_client_initiated_renegotiation() const override { return false; }
  bool allow_server_initiated_renegotiation() const override { return false; }
  uint32_t session_ticket_lifetime() const override { return 0; }
};

class server_credentials final : public Botan::Credentials_Manager {
 public:
  explicit server_credentials(std::shared_ptr<const tls_server_identity> id) : id_(std::move(id)) {}
  std::vector<Botan::X509_Certificate> cert_chain(const std::vector<std::string>& key_types, const std::string& type,
                                                  const std::string&) override {
    if (type != "tls-server") return {};
    const auto algo = id_->get().key->algo_name();
    for (auto& k : key_types) {
      if (k == algo) return {id_->get().certificate};
    }
    return {};
  }
  Botan::Private_Key* private_key_for(const Botan::X509_Certificate&, const std::string&,
                                      const std::string&) override {
    return id_->get().key.get();
  }

 private:
  std::shared_ptr<const tls_server_identity> id_;
};

class client_credentials final : public Botan::Credentials_Manager {};

class tls_hop final : public tls_hop_base, public Botan::TLS::Callbacks {
 public:
  tls_hop(asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read, std::string server_name,
          std::shared_ptr<const tls_server_identity> identity)
      : inner_(make_tcp_hop(std::move(socket), std::move(already_read))),
        server_name_(std::move(server_name)),
        identity_(std::move(identity)),
        flush_wait_(inner_->get_executor()),
        cipher_in_(16 * 1024 + 512) {
    if (identity_) server_creds_ = std::make_unique<server_credentials>(identity_);
  }

  asio::awaitable<void> handshake(boost::system::error_code& ec) override {
    ec = {};
    try {
      if (identity_) {
        channel_ = std::make_unique<Botan::TLS::Server>(*this, sessions_, *server_creds_, policy_, rng_, false);
      } else {
        channel_ = std::make_unique<Botan::TLS::Client>(*this, sessions_, client_creds_, policy_, rng_,
                                                        Botan::TLS::Server_Information(server_name_, 443),
                                                        Botan::TLS::Protocol_Version::TLS_V12);
      }
    } catch (const std::exception& e) {
      failure_ = std::string("TLS: ") + e.what();
      ec = asio::error::fault;
      co_return;
    }
    co_await flush(ec);
    while (!ec && !channel_->is_active()) co_await pump_in(ec);
  }

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    while (plain_off_ == plain_.size()) {
      if (peer_closed_) {
        ec = asio::error::eof;
        co_return 0;
      }
      co_await pump_in(ec);
      if (ec) co_return 0;
    }
    const auto n = std::min(buf.size(), plain_.size() - plain_off_);
    std::memcpy(buf.data(), plain_.data() + plain_off_, n);
    plain_off_ += n;
    if (plain_off_ == plain_.size()) {
      plain_.clear();
      plain_off_ = 0;
    }
    co_return n;
  }

  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    ec = {};
    if (!channel_ || !channel_->is_active() || failed_) {
      ec = asio::error::not_connected;
      co_return;
    }
    try {
      channel_->send(static_cast<const std::uint8_t*>(buf.data()), buf.size());
    } catch (const std::exception& e) {
      failure_ = std::string("TLS: ") + e.what();
      failed_ = true;
      ec = asio::error::fault;
      co_return;
    }
    co_await flush(ec);
  }

  void shutdown_send() override {}  // close_notify would end both directions of the outer session

  void close() override { inner_->close(); }
  void cancel(boost::system::error_code& ec) override {
    // A read may sit between two steps (a completion already queued, the
    // next record not asked for yet): the flag stops the next step too.
    cancelled_ = true;
    inner_->cancel(ec);
  }
  std::string kind() const override { return "tls"; }
  asio::any_io_executor get_executor() override { return inner_->get_executor(); }
  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    ec = {};
    if (plain_off_ < plain_.size()) co_return;
    co_await inner_->wait_readable(ec);
  }
  void tune_socket() override { inner_->tune_socket(); }
  const std::string& failure() const override { return failure_; }

 private:
  // Reads one chunk of records and feeds Botan; writes what it answers.
  asio::awaitable<void> pump_in(boost::system::error_code& ec) {
    if (cancelled_) {
      ec = asio::error::operation_aborted;
      co_return;
    }
    auto n = co_await inner_->read_some(asio::buffer(cipher_in_), ec);
    if (ec) co_return;
    try {
      channel_->received_data(cipher_in_.data(), n);
    } catch (const std::exception& e) {
      failure_ = std::string("TLS: ") + e.what();
      failed_ = true;
    }
    // Handshake answers and alerts. Only when no write is under way: the
    // writer's loop sends them anyway, and a reader waiting on a writer that
    // waits on a peer that waits for us to read would deadlock the hop.
    boost::system::error_code write_ec;
    if (!cipher_out_.empty() && !writing_) co_await flush(write_ec);
    if (failed_)
      ec = asio::error::fault;
    else if (write_ec)
      ec = write_ec;
  }

  // Writes the pending ciphertext. The reader (handshake answers) and the
  // writer (data) both flush: one writes at a time, in order; the other
  // waits until its bytes are out.
  asio::awaitable<void> flush(boost::system::error_code& ec) {
    while (writing_) {
      flush_wait_.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code ignored;
      co_await flush_wait_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    writing_ = true;
    while (!cipher_out_.empty() && !ec) {
      std::swap(writing_buf_, cipher_out_);
      co_await inner_->write(asio::buffer(writing_buf_), ec);
      writing_buf_.clear();
    }
    writing_ = false;
    flush_wait_.cancel();  // wakes every waiter
  }

  // Botan::TLS::Callbacks
  void tls_emit_data(const std::uint8_t data[], std::size_t size) override {
    cipher_out_.insert(cipher_out_.end(), data, data + size);
  }
  void tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) override {
    plain_.insert(plain_.end(), data, data + size);
  }
  void tls_alert(Botan::TLS::Alert alert) override {
    if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) {
      peer_closed_ = true;
    } else {
      failure_ = "TLS alert from the peer: " + alert.type_string();
      failed_ = true;
    }
  }
  bool tls_session_established(const Botan::TLS::Session&) override { return false; }
  // Camouflage only: any certificate is accepted (see the header).
  void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>&,
                             const std::vector<std::shared_ptr<const Botan::OCSP::Response>>&,
                             const std::vector<Botan::Certificate_Store*>&, Botan::Usage_Type, const std::string&,
                             const Botan::TLS::Policy&) override {}

  hop_ptr inner_;
  std::string server_name_;
  std::shared_ptr<const tls_server_identity> identity_;
  Botan::AutoSeeded_RNG rng_;
  Botan::TLS::Session_Manager_Noop sessions_;
  camouflage_policy policy_;
  client_credentials client_creds_;
  std::unique_ptr<server_credentials> server_creds_;
  std::unique_ptr<Botan::TLS::Channel> channel_;
  asio::steady_timer flush_wait_;
  std::vector<std::uint8_t> cipher_in_;
  std::vector<std::uint8_t> cipher_out_;
  std::vector<std::uint8_t> writing_buf_;
  std::vector<std::uint8_t> plain_;
  std::size_t plain_off_ = 0;
  bool writing_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;
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
