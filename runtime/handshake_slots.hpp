// Bounds the connections still in their opening (a SOCKS greeting, a hop's
// setup): a flood of connections that connect and stall, or trickle half a
// message, must not keep real clients out. When all slots are taken, the
// newcomer gets one and the oldest opener is pushed out (its `evict` runs;
// OpenSSH's MaxStartups drops at random instead): a real client finishes its
// opening in milliseconds, so it is never the oldest for long, while a staller
// is. A source address may hold only `per_source` slots; past that its new
// connections are refused outright, so one flooding host cannot push out the
// openers of others. No I/O, no clock: unit-tested on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace runtime {

class handshake_slots {
  struct entry {
    std::string source;
    std::function<void()> evict;
    std::list<std::shared_ptr<entry>>::iterator where;
    bool listed = false;  // false once its opening ended or it was pushed out
  };
  struct state {
    std::size_t max = 0;
    std::size_t per_source = 0;
    std::list<std::shared_ptr<entry>> openers;  // oldest first
    std::map<std::string, std::size_t> by_source;
    std::size_t evicted = 0;  // pushed out since the last take_evicted()
    std::size_t refused = 0;  // refused for their source since the last take_refused()

    void remove(entry& e) {
      if (!e.listed) return;
      e.listed = false;
      auto s = by_source.find(e.source);
      if (s != by_source.end() && --s->second == 0) by_source.erase(s);
      openers.erase(e.where);
    }
  };

 public:
  // Held by a connection during its opening; dropping it (the opening is
  // over, or the connection is gone) frees the slot.
  class ticket {
   public:
    ticket() = default;
    ticket(std::shared_ptr<state> st, std::shared_ptr<entry> e) : st_(std::move(st)), e_(std::move(e)) {}
    ticket(ticket&&) noexcept = default;
    ticket& operator=(ticket&& o) noexcept {
      if (this != &o) {
        release();
        st_ = std::move(o.st_);
        e_ = std::move(o.e_);
      }
      return *this;
    }
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { release(); }
    explicit operator bool() const { return e_ != nullptr; }
    // The opening is done: the slot is free for someone else.
    void release() {
      if (st_ && e_) st_->remove(*e_);
      st_.reset();
      e_.reset();
    }

   private:
    std::shared_ptr<state> st_;
    std::shared_ptr<entry> e_;
  };

  // per_source 0: no share per source (a SOCKS port, whose clients are all local).
  handshake_slots(std::size_t max, std::size_t per_source) : st_(std::make_shared<state>()) {
    st_->max = max == 0 ? 1 : max;
    st_->per_source = per_source == 0 ? SIZE_MAX : per_source;
  }

  // A new connection from `source` begins its opening. Returns an empty
  // ticket when its source already holds its share (close it at once).
  // Otherwise it takes a slot; when all are taken, the oldest opener is
  // pushed out first: its `evict` runs once, and its ticket frees nothing.
  ticket enter(const std::string& source, std::function<void()> evict) {
    auto held = st_->by_source.find(source);
    if (held != st_->by_source.end() && held->second >= st_->per_source) {
      ++st_->refused;
      return {};
    }
    while (st_->openers.size() >= st_->max) {
      auto oldest = st_->openers.front();
      st_->remove(*oldest);
      ++st_->evicted;
      if (oldest->evict) std::exchange(oldest->evict, nullptr)();
    }
    ++st_->by_source[source];
    auto e = std::make_shared<entry>();
    e->source = source;
    e->evict = std::move(evict);
    e->where = st_->openers.insert(st_->openers.end(), e);
    e->listed = true;
    return ticket(st_, std::move(e));
  }

  std::size_t openers() const { return st_->openers.size(); }
  std::size_t sources() const { return st_->by_source.size(); }
  // Counters for a throttled log line: read, or read and reset.
  std::size_t evicted() const { return st_->evicted; }
  std::size_t take_evicted() { return std::exchange(st_->evicted, 0); }
  std::size_t take_refused() { return std::exchange(st_->refused, 0); }

 private:
  std::shared_ptr<state> st_;
};

}  // namespace runtime
