#include "transport/memory_hop.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/notifier.hpp"

namespace transport {

namespace asio = boost::asio;

namespace {

// One direction of the connection: the bytes in flight and who waits.
struct direction {
  explicit direction(const asio::any_io_executor& ex) : readable(ex), writable(ex) {}
  std::vector<std::uint8_t> bytes;
  std::size_t head = 0;  // bytes before this were read
  bool eof = false;      // the writer half-closed or closed
  bool broken = false;   // the reader closed: writes fail
  runtime::notifier readable;  // the reading end waits here
  runtime::notifier writable;  // the writing end waits here
  std::size_t size() const { return bytes.size() - head; }
  void take(std::uint8_t* to, std::size_t n) {
    std::memcpy(to, bytes.data() + head, n);
    head += n;
    if (head == bytes.size()) {
      bytes.clear();
      head = 0;
    } else if (head > bytes.size() / 2) {
      bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(head));
      head = 0;
    }
  }
};

struct link {
  explicit link(const asio::any_io_executor& ex) : dir{direction(ex), direction(ex)} {}
  direction dir[2];  // dir[i]: what end i writes
};

class memory_hop final : public hop_stream {
 public:
  memory_hop(asio::any_io_executor ex, std::shared_ptr<link> l, int side, memory_hop_options options)
      : ex_(std::move(ex)), link_(std::move(l)), out_(link_->dir[side]), in_(link_->dir[1 - side]),
        options_(std::move(options)) {}
  ~memory_hop() override { close(); }

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, boost::system::error_code& ec) override {
    co_await asio::post(ex_, asio::use_awaitable);
    const auto epoch = cancels_;
    ec = {};
    for (;;) {
      if (closed_ || cancels_ != epoch) {
        ec = asio::error::operation_aborted;
        co_return 0;
      }
      if (buf.size() == 0) co_return 0;
      if (in_.size() > 0) {
        const auto n = std::min(buf.size(), in_.size());
        in_.take(static_cast<std::uint8_t*>(buf.data()), n);
        in_.writable.notify();
        co_return n;
      }
      if (in_.eof) {
        ec = asio::error::eof;
        co_return 0;
      }
      co_await in_.readable.wait();
    }
  }

  asio::awaitable<void> write(asio::const_buffer buf, boost::system::error_code& ec) override {
    co_await asio::post(ex_, asio::use_awaitable);
    const auto epoch = cancels_;
    ec = {};
    const auto* p = static_cast<const std::uint8_t*>(buf.data());
    std::size_t left = buf.size();
    while (left > 0) {
      if (closed_ || cancels_ != epoch) {
        ec = asio::error::operation_aborted;
        co_return;
      }
      if (out_.broken || out_.eof) {
        ec = asio::error::broken_pipe;
        co_return;
      }
      const auto room = options_.capacity > out_.size() ? options_.capacity - out_.size() : 0;
      if (room == 0) {
        co_await out_.writable.wait();
        continue;
      }
      const auto n = std::min(room, left);
      out_.bytes.insert(out_.bytes.end(), p, p + n);
      p += n;
      left -= n;
      out_.readable.notify();
    }
  }

  void shutdown_send() override {
    out_.eof = true;
    out_.readable.notify();
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    out_.eof = true;      // the peer reads what was sent, then eof
    in_.broken = true;    // and its writes fail
    in_.bytes.clear();
    in_.head = 0;
    wake_own();
    out_.readable.notify();
    in_.writable.notify();
  }

  std::string kind() const override { return options_.kind; }
  asio::any_io_executor get_executor() override { return ex_; }

  void cancel(boost::system::error_code& ec) override {
    ec = {};
    ++cancels_;
    wake_own();
  }

  asio::awaitable<void> wait_readable(boost::system::error_code& ec) override {
    co_await asio::post(ex_, asio::use_awaitable);
    const auto epoch = cancels_;
    ec = {};
    for (;;) {
      if (closed_ || cancels_ != epoch) {
        ec = asio::error::operation_aborted;
        co_return;
      }
      if (in_.size() > 0) co_return;
      if (in_.eof) {
        ec = asio::error::eof;
        co_return;
      }
      co_await in_.readable.wait();
    }
  }

 private:
  // Our own pending read and write notice the cancel or close.
  void wake_own() {
    in_.readable.notify();
    out_.writable.notify();
  }

  asio::any_io_executor ex_;
  std::shared_ptr<link> link_;
  direction& out_;
  direction& in_;
  memory_hop_options options_;
  bool closed_ = false;
  std::uint64_t cancels_ = 0;
};

}  // namespace

std::pair<hop_ptr, hop_ptr> make_memory_hop_pair(const asio::any_io_executor& ex, memory_hop_options options) {
  auto l = std::make_shared<link>(ex);
  return {std::make_unique<memory_hop>(ex, l, 0, options), std::make_unique<memory_hop>(ex, l, 1, options)};
}

}  // namespace transport
