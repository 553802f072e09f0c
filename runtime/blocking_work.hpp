// Work that may block (a Kerberos ticket request to a KDC, say) runs on a
// small pool of its own, so the I/O thread that carries every tunnel never
// waits for it. The awaiting coroutine resumes on its own executor when the
// work is done. The work cannot be cancelled: it must bound itself (krb5
// has its own timeouts).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>

namespace runtime {

boost::asio::awaitable<void> run_blocking(const std::function<void()>& work);

}  // namespace runtime
