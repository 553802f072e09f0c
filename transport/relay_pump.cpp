#include "transport/relay_pump.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <vector>

#include "transport/splice_pump.hpp"

namespace transport {

namespace asio = boost::asio;

namespace {
constexpr std::size_t pump_buffer = 64 * 1024;
}

void reset_hop(hop_stream& h) {
  if (auto* s = h.plain_socket()) {
    boost::system::error_code ignored;
    s->set_option(asio::socket_base::linger(true, 0), ignored);
    s->close(ignored);
  }
  h.close();
}

asio::awaitable<void> relay_one_way(hop_stream& from, hop_stream& to, std::uint64_t& count) {
  auto* from_socket = from.plain_socket();
  auto* to_socket = to.plain_socket();
  if (from_socket && to_socket) {
    boost::system::error_code ec;
    bool writing = false;
    co_await splice_one_way(*from_socket, *to_socket, count, ec, writing);
    if (ec == asio::error::eof) {
      to.shutdown_send();
    } else if (!writing) {
      reset_hop(from);
      reset_hop(to);
    }
    co_return;
  }
  std::vector<std::uint8_t> buf(pump_buffer);
  for (;;) {
    boost::system::error_code ec;
    auto n = co_await from.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::eof) {
      to.shutdown_send();
      co_return;
    }
    if (ec) {
      reset_hop(from);
      reset_hop(to);
      co_return;
    }
    co_await to.write(asio::buffer(buf.data(), n), ec);
    if (ec) co_return;  // `to` is gone: the other direction ends both (see the header)
    count += n;
  }
}

}  // namespace transport
