// A world in memory for tests of the Asio layer: one io_context, a real
// middle_server fed memory hops (transport/memory_hop.hpp), and helpers to
// run it until something holds, within a bound (a test that would hang
// fails instead).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "middleproxy/middle_server.hpp"
#include "transport/failing_hop.hpp"
#include "transport/memory_hop.hpp"

namespace asio_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct world {
  asio::io_context io;
  std::shared_ptr<middleproxy::middle_server> middle;
  int hops_made = 0;

  explicit world(config::middle_config cfg = middle_config()) {
    middle = std::make_shared<middleproxy::middle_server>(io, std::move(cfg));
  }
  ~world() {
    // Everything still running ends with its hops.
    middle->reset();
    run_for(200ms);
  }

  static config::middle_config middle_config() {
    config::middle_config c;
    c.name = "m";
    c.public_address = "192.0.2.1:443";
    c.limit.setup_timeout = 2s;
    return c;
  }

  // A new hop into the middle; the end's side is returned. Each comes from
  // its own made-up address, so the middle's per-source limits stay out of
  // the way.
  transport::hop_ptr connect(transport::memory_hop_options options = {}) {
    auto [end_side, middle_side] = transport::make_memory_hop_pair(io.get_executor(), std::move(options));
    ++hops_made;
    const auto source = "198.51.100." + std::to_string(hops_made % 250 + 1);
    middle->serve(std::move(middle_side), source + ":40000", source, "192.0.2.1:443");
    return std::move(end_side);
  }

  // Runs until `done` holds or `limit` passes; returns `done()`.
  bool run_until(const std::function<bool()>& done, std::chrono::steady_clock::duration limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_one_for(10ms);
    }
    return done();
  }
  void run_for(std::chrono::steady_clock::duration d) {
    run_until([] { return false; }, d);
  }
};

}  // namespace asio_test
