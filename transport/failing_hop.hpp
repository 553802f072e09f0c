// Failures exactly where a test wants them (Beast's fail_count idea): a
// fail_count counts operations, and the Nth and every later one fails. A
// failing_hop counts each read_some and write of the hop it wraps; a
// connect function counts itself (fail_count::fail), so one count can span
// a whole scenario: connect, setup, handshake, each read and write of a
// transfer. Run the scenario once with a count that never fails to learn
// how many operations it takes (counted()), then fail each in turn.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <limits>
#include <memory>

#include "transport/hop_stream.hpp"

namespace transport {

class fail_count {
 public:
  // Fails the nth operation (1: the first) with `error`; 0: never fails.
  explicit fail_count(std::size_t n = 0, boost::system::error_code error = boost::asio::error::connection_reset)
      : n_(n == 0 ? std::numeric_limits<std::size_t>::max() : n), error_(error) {}

  // Counts one operation; sets `ec` and returns true when it fails.
  bool fail(boost::system::error_code& ec) {
    if (counted_ < n_) ++counted_;
    if (counted_ < n_) return false;
    ec = error_;
    failed_ = true;
    return true;
  }
  // Operations counted so far (stops at n).
  std::size_t counted() const { return counted_; }
  bool failed() const { return failed_; }

 private:
  std::size_t n_;
  std::size_t counted_ = 0;
  bool failed_ = false;
  boost::system::error_code error_;
};

// `inner`, with every read_some and write counted by `count`. A failing
// operation closes `inner` (as a broken connection ends) and reports the
// count's error.
hop_ptr make_failing_hop(hop_ptr inner, std::shared_ptr<fail_count> count);

}  // namespace transport
