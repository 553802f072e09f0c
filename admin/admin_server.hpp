// The admin server of one process (README "Admin server"): the status page,
// the JSON API, /metrics, /healthz and /readyz over HTTP/1.1 (Beast), on
// the `admin.listen` address. What a request may do is decided by
// request_rules; what it shows and does comes from the process's
// status_source.
//
// Its own connections are bounded like every other port's: at most
// `max_connections` at once (more are answered 503 and closed), a request
// must arrive whole within `request_timeout`, a kept-alive connection idles
// at most `idle_timeout`, and bodies and headers are small.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "admin/request_rules.hpp"
#include "config/config.hpp"
#include "admin/status_source.hpp"
#include "runtime/task_group.hpp"

namespace admin {

struct admin_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::optional<Botan::secure_vector<std::uint8_t>> token;  // the admin token's text, if configured
  std::size_t max_connections = 16;
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds idle_timeout{30000};
};

// The answer to one request, before it goes on the wire: kept apart so
// that tests (and the fuzzer) run requests without sockets.
struct response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;              // 405
  bool ask_for_token = false;     // 401: WWW-Authenticate: Bearer
};

class admin_server : public std::enable_shared_from_this<admin_server> {
 public:
  admin_server(boost::asio::io_context& io, admin_settings settings, std::shared_ptr<status_source> source);
  // The admin server a process's `admin:` section asks for; null without
  // admin.listen.
  static std::shared_ptr<admin_server> from_config(boost::asio::io_context& io, const config::admin_config& cfg,
                                                   std::shared_ptr<status_source> source);
  // Opens the listener (throws std::system_error naming the address) and
  // starts accepting.
  void start();
  // Closes the listener and every admin connection.
  void stop();
  const runtime::task_group& tasks() const { return tasks_; }
  // The port it listens on (useful with port 0).
  std::uint16_t port() const;
  // One request, decided and answered (no I/O).
  response answer(const request_facts& r);

 private:
  void on_accept(boost::asio::ip::tcp::socket sock);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket sock);
  boost::asio::awaitable<void> turn_away(boost::asio::ip::tcp::socket sock);
  std::string status_json();
  std::string metrics_text_now();
  std::string events_json(std::uint64_t after);

  boost::asio::io_context& io_;
  admin_settings settings_;
  access_settings access_;
  std::shared_ptr<status_source> source_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::size_t open_ = 0;
  std::uint64_t requests_ = 0;
  runtime::task_group tasks_;
};

}  // namespace admin
