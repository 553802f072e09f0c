// Opens a hop from here to a middle proxy by one way out: TCP to the middle
// or to a proxy, the proxy's handshake, then the carrier's (WebSocket, TLS).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>

#include "uplink/ways.hpp"
#include "transport/hop_stream.hpp"

namespace uplink {

struct dial_options {
  std::string websocket_path = "/lstp";
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(5);  // the whole attempt
};

// `way.via` must be direct or proxy (resolve "via env" first). Returns null
// and says why (naming the step that failed) when the way does not work.
boost::asio::awaitable<transport::hop_ptr> dial(boost::asio::any_io_executor ex, const uplink::way& way,
                                                const uplink::endpoint& middle, const dial_options& options,
                                                std::string& why);

}  // namespace uplink
