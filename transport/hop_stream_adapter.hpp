// Presents a hop_stream as an Asio AsyncReadStream/AsyncWriteStream, so
// Beast's WebSocket can run on top of any hop (e.g. a TLS hop).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>

#include <exception>
#include <utility>

#include "transport/hop_stream.hpp"

namespace transport {

class hop_stream_adapter {
 public:
  using executor_type = boost::asio::any_io_executor;
  explicit hop_stream_adapter(hop_ptr inner) : inner_(std::move(inner)) {}

  executor_type get_executor() { return inner_->get_executor(); }
  hop_stream& inner() { return *inner_; }
  hop_ptr release() { return std::move(inner_); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return start<std::size_t>(
        first(boost::asio::buffer_sequence_begin(buffers), boost::asio::buffer_sequence_end(buffers)),
        std::forward<Token>(token), [](hop_stream& s, boost::asio::mutable_buffer b,
                                       boost::system::error_code& ec) { return s.read_some(b, ec); });
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return start<std::size_t>(
        first(boost::asio::buffer_sequence_begin(buffers), boost::asio::buffer_sequence_end(buffers)),
        std::forward<Token>(token),
        [](hop_stream& s, boost::asio::const_buffer b, boost::system::error_code& ec) -> boost::asio::awaitable<std::size_t> {
          co_await s.write(b, ec);
          co_return ec ? 0 : b.size();
        });
  }

 private:
  // The first non-empty buffer of a sequence (partial reads and writes are
  // allowed, so one buffer at a time is correct).
  template <class It>
  static auto first(It begin, It end) {
    for (auto it = begin; it != end; ++it) {
      if (boost::asio::buffer_size(*it) > 0) return *it;
    }
    using buffer = std::decay_t<decltype(*begin)>;
    return buffer();
  }

  template <class Result, class Buffer, class Token, class Op>
  auto start(Buffer buf, Token&& token, Op op) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this, op](auto handler, Buffer b) {
          auto* s = inner_.get();
          boost::asio::co_spawn(
              s->get_executor(),
              [s, b, op]() -> boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> {
                boost::system::error_code ec;
                std::size_t n = 0;
                if (b.size() > 0) n = co_await op(*s, b, ec);
                co_return std::pair{ec, n};
              },
              [h = std::move(handler)](std::exception_ptr e,
                                       std::pair<boost::system::error_code, std::size_t> r) mutable {
                if (e) r.first = boost::asio::error::fault;
                std::move(h)(r.first, r.second);
              });
        },
        token, buf);
  }

  hop_ptr inner_;
};

// Beast's WebSocket closes its next layer through these (found by ADL).
inline void beast_close_socket(hop_stream_adapter& s) { s.inner().close(); }

inline void teardown(boost::beast::role_type, hop_stream_adapter& s, boost::system::error_code& ec) {
  s.inner().close();
  ec = {};
}

template <class Handler>
void async_teardown(boost::beast::role_type, hop_stream_adapter& s, Handler&& handler) {
  s.inner().close();
  boost::asio::post(s.get_executor(), [h = std::forward<Handler>(handler)]() mutable {
    std::move(h)(boost::system::error_code{});
  });
}

}  // namespace transport
