// The admin server's input: an HTTP request from anyone who reaches its
// port. Beast parses it (with the server's limits); the request rules then
// decide on its target and headers. Also the log's reading of a message
// (subject_of), which sees peers' text. Nothing may crash or hang.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>

#include "admin/beast_request.hpp"
#include "runtime/log.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool loopback = (data[0] & 1) != 0;
  const bool with_token = (data[0] & 2) != 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  http::request_parser<http::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(4 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(text.data(), text.size()), ec);
  if (!ec && parser.is_header_done()) {
    auto facts = admin::facts_of(parser.get());
    admin::access_settings s;
    s.loopback_listener = loopback;
    if (with_token) {
      static const std::string token = "lstp-token-3qSb-X69e4bjKgaIyZS4WYA75pZzBQaLRU-48-OFrNww-Ggr";
      s.token = Botan::secure_vector<std::uint8_t>(token.begin(), token.end());
    }
    auto d = admin::decide(facts, s);
    // An action goes ahead only with the token.
    if (d.status == 0 && (d.what == admin::endpoint::close_channel || d.what == admin::endpoint::drop_tunnel) &&
        !with_token)
      __builtin_trap();
  }
  (void)admin::percent_decode(text);
  (void)admin::is_loopback_host_header(text);
  auto subject = runtime::subject_of(text);
  (void)subject;
  return 0;
}
