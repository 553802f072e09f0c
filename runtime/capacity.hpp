// How many connections a process can take, prepared at start: the
// descriptor limit, Asio's per-socket states made up front, and free heap
// pages given back after a burst, so a flood leaves no memory behind.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstddef>

#include "runtime/task_group.hpp"

namespace runtime {

// Asio keeps the per-socket state of its reactor in a pool that only grows:
// states made during a burst of connections stay, scattered between the
// burst's freed memory, and pin those pages after the burst is gone (about
// 5 KiB of RSS per connection of the burst, measured). Making `count` states
// at start (sockets opened and closed at once) puts them together up front,
// so a burst of up to that many connections leaves nothing behind. Stops
// quietly when descriptors run out.
void prewarm_socket_states(boost::asio::io_context& io, std::size_t count);

// Raises the soft limit on open descriptors to the hard limit, warns when
// `max_connections` may not fit in it, prewarms the reactor for
// `max_openings` connections at once and starts the trimming (both here) as
// a task of `tasks`.
void prepare_for_connections(boost::asio::io_context& io, task_group& tasks, std::size_t max_connections,
                             std::size_t max_openings);

// After a burst of connections has gone, glibc keeps the freed memory in its
// heap (only the top is given back on its own). Every 10 s, when the heap
// holds 256 KiB or more of free bytes, malloc_trim gives their pages back.
void trim_memory_after_bursts(task_group& tasks);

}  // namespace runtime
