// Keeps a flood from becoming a flood of log lines: per key (a source
// address, a kind of event), one line per interval; the lines in between are
// counted and the next line says how many were left out. No clock of its own.
// Keys are kept as hashes in a table allocated once: a flood of new keys
// allocates nothing (freed-later allocations scattered through the heap
// would pin its pages after the flood is gone).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runtime {

class log_throttle {
 public:
  using clock = std::chrono::steady_clock;
  explicit log_throttle(clock::duration interval = std::chrono::seconds(10), std::size_t slots = 1024)
      : interval_(interval), table_(slots == 0 ? 1 : slots) {}

  // nullopt: leave this line out. Otherwise log it, with the number of lines
  // left out for this key since the last one logged. (Two keys whose hashes
  // collide share a count: harmless for log lines.)
  std::optional<std::size_t> allow(std::string_view key, clock::time_point now) {
    // 0 marks a free slot.
    const std::uint64_t h = std::hash<std::string_view>{}(key) | 1;
    std::size_t i = h % table_.size();
    for (std::size_t probes = 0; probes < table_.size(); ++probes, i = (i + 1) % table_.size()) {
      auto& e = table_[i];
      if (e.hash == h) {
        if (now - e.last < interval_) {
          ++e.left_out;
          return std::nullopt;
        }
        e.last = now;
        return std::exchange(e.left_out, 0);
      }
      if (e.hash == 0) break;
    }
    // A new key. Bounded whatever strangers send: a table three quarters
    // full starts again empty.
    if (used_ >= table_.size() * 3 / 4) {
      for (auto& e : table_) e = entry{};
      used_ = 0;
      i = h % table_.size();
    }
    while (table_[i].hash != 0) i = (i + 1) % table_.size();
    table_[i] = entry{h, now, 0};
    ++used_;
    return 0;
  }

  // " (N more like it left out)" or "".
  static std::string left_out_text(std::size_t n) {
    return n == 0 ? std::string() : " (" + std::to_string(n) + " more like it left out)";
  }

 private:
  struct entry {
    std::uint64_t hash = 0;
    clock::time_point last{};
    std::size_t left_out = 0;
  };
  clock::duration interval_;
  std::vector<entry> table_;
  std::size_t used_ = 0;
};

}  // namespace runtime
