// Opens one TCP connection to a host (a name or an IP literal) and port,
// within one deadline for resolving and connecting together: the dialer
// (to a middle or a proxy), a client end's direct routes and a server
// end's connects to destinations all go through here. A filter may refuse
// addresses (the server end's policy): the refused ones are skipped, and
// when none is left the connect is refused without trying any.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace runtime {

struct tcp_connect_result {
  enum class outcome { connected, resolve_failed, refused, connect_failed };
  outcome result = outcome::connect_failed;
  std::optional<boost::asio::ip::tcp::socket> socket;  // when connected
  boost::system::error_code error;                      // resolve or connect failure
  bool timed_out = false;                               // the deadline passed
  std::string refusal;                                  // refused: the filter's reason for the first address
  bool connected() const { return result == outcome::connected; }
  // "timed out" or the error's message.
  std::string failure() const { return timed_out ? "timed out" : error.message(); }
};

// Returns a reason to refuse an address, or nothing to allow it.
using address_filter = std::function<std::optional<std::string>(const boost::asio::ip::tcp::endpoint&)>;

// The host and the filter are taken by value: the coroutine keeps its own
// copies, whatever the caller's temporaries.

boost::asio::awaitable<tcp_connect_result> tcp_connect(boost::asio::any_io_executor ex, std::string host,
                                                       std::uint16_t port, std::chrono::steady_clock::duration timeout,
                                                       address_filter refuse = {});

}  // namespace runtime
