#include "transport/splice_pump.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>

namespace transport {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::size_t pipe_size = 1 << 20;

struct pipe_pair {
  int fd[2] = {-1, -1};
  ~pipe_pair() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
};

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }
}  // namespace

asio::awaitable<void> splice_one_way(tcp::socket& from, tcp::socket& to, std::uint64_t& count,
                                     boost::system::error_code& ec, bool& writing) {
  ec = {};
  writing = false;
  pipe_pair p;
  if (::pipe2(p.fd, O_NONBLOCK | O_CLOEXEC) != 0) {
    ec = last_error();
    co_return;
  }
  (void)::fcntl(p.fd[1], F_SETPIPE_SZ, static_cast<int>(pipe_size));  // a smaller pipe only costs speed
  from.native_non_blocking(true, ec);
  if (!ec) to.native_non_blocking(true, ec);
  if (ec) co_return;
  constexpr unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  for (;;) {
    // Socket -> pipe: whatever has arrived, up to a pipe's worth.
    std::size_t in_pipe = 0;
    for (;;) {
      const auto n = ::splice(from.native_handle(), nullptr, p.fd[1], nullptr, pipe_size, flags);
      if (n > 0) {
        in_pipe = static_cast<std::size_t>(n);
        break;
      }
      if (n == 0) {
        ec = asio::error::eof;
        co_return;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        ec = last_error();
        co_return;
      }
      co_await from.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
    // Pipe -> socket, all of it, before reading more (back-pressure).
    while (in_pipe > 0) {
      const auto n = ::splice(p.fd[0], nullptr, to.native_handle(), nullptr, in_pipe, flags);
      if (n > 0) {
        in_pipe -= static_cast<std::size_t>(n);
        count += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        co_await to.async_wait(tcp::socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
        writing = static_cast<bool>(ec);
        if (ec) co_return;
        continue;
      }
      ec = n == 0 ? asio::error::broken_pipe : last_error();
      writing = true;
      co_return;
    }
  }
}

}  // namespace transport
