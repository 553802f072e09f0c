#include "admin/admin_server.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include "admin/beast_request.hpp"
#include "admin/process_facts.hpp"
#include "admin/status_page.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"
#include "runtime/version.hpp"

namespace admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {
constexpr std::string_view component = "admin";

bool is_loopback_listen(const std::string& host) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(host, ec);
  if (ec) return host == "localhost";
  return a.is_loopback();
}

response text(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body) + "\n";
  return r;
}
}  // namespace

std::shared_ptr<admin_server> admin_server::from_config(asio::io_context& io, const config::admin_config& cfg,
                                                       std::shared_ptr<status_source> source) {
  if (!cfg.listen) return nullptr;
  admin_settings settings;
  settings.host = cfg.listen->host;
  settings.port = cfg.listen->port;
  settings.token = cfg.token;
  return std::make_shared<admin_server>(io, std::move(settings), std::move(source));
}

admin_server::admin_server(asio::io_context& io, admin_settings settings, std::shared_ptr<status_source> source)
    : io_(io),
      settings_(std::move(settings)),
      source_(std::move(source)),
      tasks_(io.get_executor(), [](std::string_view task, std::string_view what) {
        runtime::log_error(component, task, ": internal error: ", what);
      }) {
  access_.loopback_listener = is_loopback_listen(settings_.host);
  access_.token = settings_.token;
}

void admin_server::start() {
  acceptor_ = runtime::open_listener(io_, settings_.host, settings_.port, "the admin server");
  runtime::log_info(component, "admin server on http://",
                    settings_.host.find(':') != std::string::npos ? "[" + settings_.host + "]" : settings_.host, ":",
                    port(), "/ (", access_.loopback_listener ? "loopback: reads need no token" : "every request needs the token",
                    settings_.token ? ", actions need the token)" : ", actions disabled: no admin.token_file)");
  // Returned, not awaited inside a coroutine: GCC 12 destroys a lambda
  // temporary in a co_await expression twice (here: the server's last
  // reference, freed under main's feet; seen by ASan).
  tasks_.spawn("admin accept loop", [self = shared_from_this()] {
    return runtime::accept_loop(*self->acceptor_, component,
                                [self](tcp::socket sock) { self->on_accept(std::move(sock)); });
  });
}

void admin_server::on_accept(tcp::socket sock) {
  auto self = shared_from_this();
  if (open_ >= settings_.max_connections) {
    tasks_.spawn("admin turn away", [self, s = std::move(sock)]() mutable { return self->turn_away(std::move(s)); });
    return;
  }
  tasks_.spawn("admin connection", [self, s = std::move(sock)]() mutable { return self->serve(std::move(s)); });
}

void admin_server::stop() {
  boost::system::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  tasks_.cancel();
}

std::uint16_t admin_server::port() const {
  boost::system::error_code ec;
  return acceptor_ ? acceptor_->local_endpoint(ec).port() : settings_.port;
}

response admin_server::answer(const request_facts& r) {
  ++requests_;
  auto d = decide(r, access_);
  if (d.status != 0) {
    auto out = text(d.status, d.message);
    out.allow = d.allow;
    out.ask_for_token = d.status == 401;
    return out;
  }
  response out;
  switch (d.what) {
    case endpoint::page:
      out.content_type = "text/html; charset=utf-8";
      out.body = std::string(status_page_html());
      return out;
    case endpoint::healthz:
      return text(200, "ok");
    case endpoint::readyz: {
      std::string why;
      if (source_->ready(why)) return text(200, "ready");
      return text(503, "not ready: " + why);
    }
    case endpoint::metrics:
      out.content_type = "text/plain; version=0.0.4; charset=utf-8";
      out.body = metrics_text_now();
      return out;
    case endpoint::status:
      out.content_type = "application/json";
      out.body = status_json();
      return out;
    case endpoint::events:
      out.content_type = "application/json";
      out.body = events_json(d.after);
      return out;
    case endpoint::close_channel:
      if (source_->close_channel(d.channel) == action_result::not_found)
        return text(404, "no open channel " + std::to_string(d.channel));
      runtime::log_info(component, "channel ", d.channel, " closed by the operator");
      out.status = 204;
      return out;
    case endpoint::drop_tunnel:
      if (source_->drop_tunnel(d.tunnel) == action_result::not_found)
        return text(404, "no tunnel named \"" + d.tunnel + "\" is up or connecting");
      runtime::log_info(component, "tunnel ", d.tunnel, " dropped by the operator");
      out.status = 204;
      return out;
  }
  return text(500, "unhandled endpoint");
}

std::string admin_server::status_json() {
  auto facts = read_process_facts();
  boost::json::object process;
  process["kind"] = source_->kind();
  process["name"] = source_->name();
  process["version"] = std::string(runtime::version);
  process["pid"] = static_cast<std::int64_t>(::getpid());
  process["start_time_seconds"] = facts.start_time_seconds;
  auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  process["uptime_seconds"] = now - facts.start_time_seconds;
  process["resident_bytes"] = facts.resident_bytes;
  process["open_fds"] = facts.open_fds;
  process["cpu_seconds"] = facts.cpu_seconds;
  std::string why;
  process["ready"] = source_->ready(why);
  if (!why.empty()) process["not_ready_because"] = why;
  boost::json::object o;
  o["process"] = std::move(process);
  for (auto& [k, v] : source_->status()) o[k] = v;
  return boost::json::serialize(o);
}

std::string admin_server::events_json(std::uint64_t after) {
  boost::json::array events;
  for (auto& e : runtime::recent_log_events(after)) {
    boost::json::object o;
    o["number"] = e.number;
    o["time"] = e.time;
    o["level"] = runtime::log_level_name(e.level);
    o["component"] = e.component;
    o["message"] = e.message;
    events.push_back(std::move(o));
  }
  boost::json::object o;
  o["events"] = std::move(events);
  return boost::json::serialize(o);
}

std::string admin_server::metrics_text_now() {
  metrics_text m;
  source_->metrics(m);
  auto facts = read_process_facts();
  m.family("process_resident_memory_bytes", metric_type::gauge, "Resident memory size in bytes.");
  m.sample(static_cast<double>(facts.resident_bytes));
  m.family("process_virtual_memory_bytes", metric_type::gauge, "Virtual memory size in bytes.");
  m.sample(static_cast<double>(facts.virtual_bytes));
  m.family("process_open_fds", metric_type::gauge, "Number of open file descriptors.");
  m.sample(static_cast<double>(facts.open_fds));
  m.family("process_max_fds", metric_type::gauge, "Maximum number of open file descriptors.");
  m.sample(static_cast<double>(facts.max_fds));
  m.family("process_cpu_seconds_total", metric_type::counter, "Total user and system CPU time spent in seconds.");
  m.sample(facts.cpu_seconds);
  m.family("process_start_time_seconds", metric_type::gauge, "Start time of the process since unix epoch in seconds.");
  m.sample(facts.start_time_seconds);
  m.family("lstp_build_info", metric_type::gauge, "The lstp version this process runs (always 1).");
  m.sample({{"version", std::string(runtime::version)}, {"kind", source_->kind()}}, 1);
  m.family("lstp_admin_requests_total", metric_type::counter, "Requests the admin server answered.");
  m.sample(static_cast<double>(requests_));
  return m.text();
}

asio::awaitable<void> admin_server::turn_away(tcp::socket sock) {
  beast::tcp_stream stream(std::move(sock));
  stream.expires_after(std::chrono::seconds(2));
  http::response<http::string_body> res{http::status::service_unavailable, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::connection, "close");
  res.body() = "too many admin connections at once\n";
  res.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> admin_server::serve(tcp::socket sock) {
  ++open_;
  struct count_guard {
    std::size_t& n;
    ~count_guard() { --n; }
  } guard{open_};
  boost::system::error_code ec;
  auto peer = sock.remote_endpoint(ec);
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buffer(16 * 1024);
  for (bool first = true;; first = false) {
    // The first request within request_timeout; a kept-alive connection
    // may idle up to idle_timeout before its next.
    stream.expires_after(first ? settings_.request_timeout : settings_.idle_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(4 * 1024);
    co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      stream.expires_after(settings_.request_timeout);
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      break;
    http::response<http::string_body> res;
    bool keep = false;
    if (ec) {
      // Malformed: a clear answer, then the connection ends.
      res.result(ec == http::error::body_limit || ec == http::error::header_limit
                     ? http::status::payload_too_large
                     : http::status::bad_request);
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "bad request: " + ec.message() + "\n";
      runtime::log_debug(component, "bad request from ", peer, ": ", ec.message());
    } else {
      auto& req = parser.get();
      auto a = answer(facts_of(req));
      res.result(static_cast<unsigned>(a.status));
      res.version(req.version());
      if (a.status != 204) res.set(http::field::content_type, a.content_type);
      res.set(http::field::cache_control, "no-store");
      res.set("X-Content-Type-Options", "nosniff");
      res.set("X-Frame-Options", "DENY");
      res.set("Referrer-Policy", "no-referrer");
      if (a.content_type.starts_with("text/html"))
        res.set("Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      if (!a.allow.empty()) res.set(http::field::allow, a.allow);
      if (a.ask_for_token) res.set(http::field::www_authenticate, "Bearer realm=\"lstp admin\"");
      if (req.method() != http::verb::head) res.body() = std::move(a.body);
      keep = req.keep_alive();
      res.keep_alive(keep);
    }
    res.prepare_payload();
    stream.expires_after(settings_.request_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace admin
