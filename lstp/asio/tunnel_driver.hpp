// Runs one lstp::tunnel over a hop: the Asio edge of the sans-I/O
// tunnel. One reader feeds the tunnel, one writer drains its output, one timer
// serves its deadlines. After each input, each deadline and each wake-up of
// the writer, the driver polls the tunnel's events and hands them to its
// handler; the tunnel wakes the writer by itself whenever a command leaves
// output or events, so no caller has to. Channel data enters through `schedule`: the writer
// takes one chunk from each ready channel in turn (round robin), so a bulk
// channel never starves the others, and encrypts only while the hop keeps up
// (pending output is bounded), so memory stays bounded too.
//
// Single-threaded: everything runs on the executor of the hop.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <memory>

#include "lstp/tunnel.hpp"
#include "runtime/notifier.hpp"
#include "runtime/task_group.hpp"
#include "transport/hop_stream.hpp"

namespace lstp::asio_edge {

// Something with channel data waiting to go into the tunnel.
class data_source {
 public:
  virtual ~data_source() = default;
  // Called by the writer when it is this source's turn: send one chunk
  // through `t` (e.g. t.send_data(...)).
  virtual void produce(tunnel& t) = 0;
};

class tunnel_driver : public std::enable_shared_from_this<tunnel_driver> {
 public:
  // Bytes of encrypted output the writer lets pile up before it stops
  // taking channel data.
  static constexpr std::size_t output_limit = 256 * 1024;
  // The reader stops reading the hop while this much output is unwritten, so
  // a peer that sends (e.g. PINGs) but never reads cannot grow our memory.
  static constexpr std::size_t read_pause_output = 4 * output_limit;
  // Once the tunnel is closed, how long its last bytes may take to leave
  // before the hop is cut regardless (a black-holed hop never drains).
  static constexpr std::chrono::seconds flush_grace{5};
  // At most this much is read from the hop at once.
  static constexpr std::size_t read_size = 256 * 1024;

  // `label` names the tunnel in log lines ("tunnel quickstart").
  tunnel_driver(transport::hop_ptr hop, tunnel_params params, Botan::RandomNumberGenerator& rng,
                tunnel_handler& handler, std::string label = "tunnel");

  // Runs until the tunnel is closed and its last bytes are written (or cut
  // after flush_grace), and its writer and timer tasks have ended.
  boost::asio::awaitable<void> run();

  tunnel& proto() { return tunnel_; }
  // Queue a source for its turn at the writer.
  void schedule(std::shared_ptr<data_source> source);
  // Closes the tunnel (ERROR to the peer) and ends run(); the handler
  // hears the events it causes (closed) before this returns.
  void close(const error_info& why);
  // Graceful end: SHUTDOWN to the peer; run() ends once the channels have.
  void shutdown(std::string_view reason);
  // Carries the tunnel on `hop` from now on (same executor): the current
  // hop is closed, its pending read and write end, and the reader and
  // writer go on with the new one. Bytes the old hop had not delivered are
  // lost to the byte stream; the protocol above must replay them: after a
  // hop_lost event the tunnel's output holds the setup of a resumption
  // hop (PROTOCOL.md 3.8), and nothing is read or written until the new
  // hop comes. False, and `hop` closed, once the tunnel is closed.
  bool replace_hop(transport::hop_ptr hop);
  // How many hops have carried this tunnel (1 until replace_hop).
  std::size_t hops_used() const { return hops_used_; }

  std::uint64_t bytes_in() const { return bytes_in_; }
  std::uint64_t bytes_out() const { return bytes_out_; }
  boost::asio::any_io_executor executor() { return hop_->get_executor(); }

 private:
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> timer_loop();
  // A task of the driver failed: the tunnel ends with it, nothing else.
  void task_failed(std::string_view task, std::string_view what);
  // Hands every waiting event to the handler; a lost hop is closed first.
  void dispatch();
  // The hop failed under the reader or writer: the tunnel decides whether
  // it waits for a new one (resumption) or closes.
  void hop_failed(std::string why);

  std::string label_;
  tunnel_handler& handler_;
  // Shared with the loops, so a replaced hop lives until their operations
  // on it have ended.
  std::shared_ptr<transport::hop_stream> hop_;
  std::size_t hops_used_ = 1;
  tunnel tunnel_;
  runtime::notifier writer_wake_;
  runtime::notifier output_drained_;
  // The hop was lost (resumption): the loops wait for replace_hop.
  bool hop_dead_ = false;
  runtime::notifier hop_changed_;  // the reader's wake-up for a new hop
  bool writer_finished_ = false;
  boost::asio::steady_timer timer_;
  std::deque<std::shared_ptr<data_source>> ready_;
  bytes write_buf_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  runtime::task_group tasks_;  // the writer and the timer
};

}  // namespace lstp::asio_edge
