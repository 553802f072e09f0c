// The Prometheus text exposition format (version 0.0.4), written by hand:
// Debian has no prometheus-cpp, and the format is a few lines of rules
// (HELP and TYPE once per family, samples of a family together, label
// values escaped, counters named *_total). Sans-I/O: it only builds text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace admin {

using labels = std::vector<std::pair<std::string_view, std::string>>;

enum class metric_type { counter, gauge, histogram };

class metrics_text {
 public:
  // Starts a family: every sample written until the next family belongs to it.
  void family(std::string_view name, metric_type type, std::string_view help);
  // One sample of the current family (counters and gauges).
  void sample(const labels& l, double value);
  void sample(double value) { sample({}, value); }
  const std::string& text() const { return out_; }

 private:
  friend class histogram;
  void write_sample(std::string_view suffix, const labels& l, std::string_view extra_name, std::string_view extra_value,
                    double value);
  std::string out_;
  std::string name_;
};

// Cumulative buckets of observations, as a Prometheus histogram: kept by
// whoever observes, written into a metrics_text family of type histogram.
class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double value);
  void write(metrics_text& out, const labels& l) const;
  std::uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// "a\"b" for a label value: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);
// A sample value as Prometheus reads it (+Inf, NaN, shortest exact text).
std::string format_value(double v);

}  // namespace admin
