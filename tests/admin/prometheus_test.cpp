#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "admin/prometheus.hpp"

TEST_CASE("metric families are written with HELP - TYPE and escaped labels") {
  admin::metrics_text m;
  m.family("lstp_tunnel_up", admin::metric_type::gauge, "Whether it is up.\nSecond line \\ too.");
  m.sample({{"tunnel", "a\"b\\c\nd"}}, 1);
  m.family("lstp_x_total", admin::metric_type::counter, "X.");
  m.sample(12345678901.0);
  CHECK(m.text() ==
        "# HELP lstp_tunnel_up Whether it is up.\\nSecond line \\\\ too.\n"
        "# TYPE lstp_tunnel_up gauge\n"
        "lstp_tunnel_up{tunnel=\"a\\\"b\\\\c\\nd\"} 1\n"
        "# HELP lstp_x_total X.\n"
        "# TYPE lstp_x_total counter\n"
        "lstp_x_total 12345678901\n");
}

TEST_CASE("values Prometheus reads back exactly") {
  CHECK(admin::format_value(0.25) == "0.25");
  CHECK(admin::format_value(1e-6) == "1e-06");
  CHECK(admin::format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(admin::format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(admin::format_value(std::nan("")) == "NaN");
}

TEST_CASE("a histogram's buckets are cumulative - with +Inf - sum and count") {
  admin::histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // on the bound: counted in it (le)
  h.observe(0.5);
  h.observe(7);
  admin::metrics_text m;
  m.family("lstp_connect_seconds", admin::metric_type::histogram, "T.");
  h.write(m, {{"tunnel", "t"}});
  CHECK(m.text() ==
        "# HELP lstp_connect_seconds T.\n"
        "# TYPE lstp_connect_seconds histogram\n"
        "lstp_connect_seconds_bucket{tunnel=\"t\",le=\"0.1\"} 2\n"
        "lstp_connect_seconds_bucket{tunnel=\"t\",le=\"1\"} 3\n"
        "lstp_connect_seconds_bucket{tunnel=\"t\",le=\"+Inf\"} 4\n"
        "lstp_connect_seconds_sum{tunnel=\"t\"} 7.65\n"
        "lstp_connect_seconds_count{tunnel=\"t\"} 4\n");
}
