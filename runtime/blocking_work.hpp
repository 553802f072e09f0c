// Work that may block (a Kerberos ticket request to a KDC, say) runs on a
// small pool of its own, so the I/O thread that carries every tunnel never
// waits for it. The awaiting coroutine resumes on its own executor when the
// work is done. The work cannot be cancelled: it must bound itself (krb5
// has its own timeouts). It is held by the pool until it has run, and must
// own (or share) everything it touches: the awaiting coroutine's frame may
// be destroyed first (the process stopping), and nothing of it may be used
// then.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>

namespace runtime {

boost::asio::awaitable<void> run_blocking(std::function<void()> work);

}  // namespace runtime
