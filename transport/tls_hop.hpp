// LSTP (or WebSocket) inside an outer TLS session, so a hop on 443 looks
// like ordinary HTTPS to a firewall or proxy that checks: OpenSSL through
// transport/tls_stream, TLS 1.3 (1.2 at least) with ALPN h2 and http/1.1 like
// a browser's. This outer TLS is camouflage only: it authenticates nothing
// (the client accepts any certificate, which also lets it pass
// TLS-inspecting company proxies). The tunnel's own end-to-end TLS-PSK
// inside it (Botan) is what protects the data.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

#include "transport/hop_stream.hpp"
#include "transport/tls_stream.hpp"

namespace transport {

// A middle proxy's certificate and key for TLS hops.
class tls_server_identity {
 public:
  // PEM files. Throws std::runtime_error naming the file on failure.
  static std::shared_ptr<const tls_server_identity> load(const std::string& certificate_file,
                                                         const std::string& private_key_file);
  // A fresh self-signed ECDSA P-256 certificate for `host_name`.
  static std::shared_ptr<const tls_server_identity> self_signed(const std::string& host_name);
  ~tls_server_identity();

  struct impl;
  const impl& get() const { return *impl_; }

 private:
  explicit tls_server_identity(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// A TLS hop before its handshake: made first, then shaken hands with, so the
// caller can bound the handshake with a watchdog on the hop.
class tls_hop_base : public hop_stream {
 public:
  virtual boost::asio::awaitable<void> handshake(boost::system::error_code& ec) = 0;
  // Why the handshake or a later read failed, in words (an alert, a
  // malformed record).
  virtual const std::string& failure() const = 0;
  // The TLS session itself, to carry WebSocket on it directly (wss); the
  // hop is not used afterwards.
  virtual tls_stream& stream() = 0;
};

// Client side over a connection that already leads to the middle (directly
// or through proxies); `server_name` goes into SNI. `already_read` are bytes
// a proxy handshake read past its end.
std::unique_ptr<tls_hop_base> make_tls_client_hop(boost::asio::ip::tcp::socket socket, std::string server_name,
                                                  std::vector<std::uint8_t> already_read = {});
// Server side; `already_read` holds the sniffed first bytes.
std::unique_ptr<tls_hop_base> make_tls_server_hop(boost::asio::ip::tcp::socket socket,
                                                  std::shared_ptr<const tls_server_identity> identity,
                                                  std::vector<std::uint8_t> already_read);

}  // namespace transport
