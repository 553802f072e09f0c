#include "admin/prometheus.hpp"

#include <charconv>
#include <cmath>

namespace admin {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

namespace {
std::string_view type_name(metric_type t) {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

// HELP text escapes only backslash and newline.
std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}
}  // namespace

void metrics_text::family(std::string_view name, metric_type type, std::string_view help) {
  name_ = name;
  out_.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type_name(type)).append("\n");
}

void metrics_text::sample(const labels& l, double value) { write_sample("", l, {}, {}, value); }

void metrics_text::write_sample(std::string_view suffix, const labels& l, std::string_view extra_name,
                                std::string_view extra_value, double value) {
  out_.append(name_).append(suffix);
  if (!l.empty() || !extra_name.empty()) {
    out_.push_back('{');
    bool first = true;
    for (auto& [k, v] : l) {
      if (!first) out_.push_back(',');
      first = false;
      out_.append(k).append("=\"").append(escape_label_value(v)).append("\"");
    }
    if (!extra_name.empty()) {
      if (!first) out_.push_back(',');
      out_.append(extra_name).append("=\"").append(extra_value).append("\"");
    }
    out_.push_back('}');
  }
  out_.append(" ").append(format_value(value)).append("\n");
}

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  ++count_;
  sum_ += value;
}

void histogram::write(metrics_text& out, const labels& l) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out.write_sample("_bucket", l, "le", format_value(bounds_[i]), static_cast<double>(cumulative));
  }
  out.write_sample("_bucket", l, "le", "+Inf", static_cast<double>(count_));
  out.write_sample("_sum", l, {}, {}, sum_);
  out.write_sample("_count", l, {}, {}, static_cast<double>(count_));
}

}  // namespace admin
