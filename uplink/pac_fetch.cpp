#include "uplink/pac_fetch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <fstream>
#include <iterator>

namespace uplink {

namespace {

constexpr std::size_t max_size = 1024 * 1024;

pac_fetched from_file(const std::string& path) {
  pac_fetched out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error = "cannot read " + quote(path);
    return out;
  }
  out.script.assign(std::istreambuf_iterator<char>(in), {});
  if (out.script.size() > max_size) {
    out.script.clear();
    out.error = quote(path) + " is larger than 1 MiB";
  }
  return out;
}

}  // namespace

pac_fetched fetch_pac(const pac_source& from, std::chrono::milliseconds timeout) {
  if (from.from == pac_source::kind::file) return from_file(from.path);
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  pac_fetched out;
  asio::io_context io;
  beast::tcp_stream stream(io);
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  stream.expires_after(timeout);
  // Each step is asynchronous only so the deadline can cut it short.
  std::string step = "resolve";
  resolver.async_resolve(from.host, std::to_string(from.port), [&](auto e, auto results) {
    if (e) return void(ec = e);
    step = "connect";
    stream.async_connect(results, [&](auto e2, auto) {
      if (e2) return void(ec = e2);
    });
  });
  io.run();
  if (ec) {
    out.error = "cannot " + step + " " + from.host + ": " + ec.message();
    return out;
  }
  http::request<http::empty_body> req{http::verb::get, from.target, 11};
  req.set(http::field::host, from.port == 80 ? from.host : from.host + ":" + std::to_string(from.port));
  req.set(http::field::user_agent, "lstp");
  req.set(http::field::accept, "application/x-ns-proxy-autoconfig, */*");
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_size);
  io.restart();
  http::async_write(stream, req, [&](auto e, auto) {
    if (e) return void(ec = e);
    http::async_read(stream, buffer, parser, [&](auto e2, auto) { ec = e2; });
  });
  io.run();
  if (ec) {
    out.error = "cannot fetch " + from.to_string() + ": " +
                (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    return out;
  }
  const auto& res = parser.get();
  if (res.result_int() != 200) {
    out.error = from.to_string() + " answered " + std::to_string(res.result_int()) + " " + std::string(res.reason());
    return out;
  }
  out.script = res.body();
  return out;
}

}  // namespace uplink
