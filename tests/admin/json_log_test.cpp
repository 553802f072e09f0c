#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "runtime/log.hpp"

TEST_CASE("a log line names its tunnel and channel as operators read them") {
  auto s = runtime::subject_of("tunnel office channel 12 (intranet:80): closed after 3 s");
  REQUIRE(s.tunnel);
  CHECK(*s.tunnel == "office");
  REQUIRE(s.channel);
  CHECK(*s.channel == 12);
  auto m = runtime::subject_of("tunnel 133715a2: client-end \"b\" waits for its partner");
  CHECK(*m.tunnel == "133715a2");
  CHECK_FALSE(m.channel);
  auto none = runtime::subject_of("subtunnel x: no channel here, achannel 5");
  CHECK_FALSE(none.tunnel);
  CHECK_FALSE(none.channel);
}

TEST_CASE("JSON log lines are one object with the fields of the event") {
  runtime::log_event e{7, "2026-12-05T03:31:01.366Z", runtime::log_level::warn, "end",
                       "tunnel it channel 3 (a\"b): aborted"};
  auto v = boost::json::parse(runtime::json_log_line(e)).as_object();
  CHECK(v.at("time").as_string() == "2026-12-05T03:31:01.366Z");
  CHECK(v.at("level").as_string() == "warn");
  CHECK(v.at("component").as_string() == "end");
  CHECK(v.at("tunnel").as_string() == "it");
  CHECK(v.at("channel").as_int64() == 3);
  CHECK(v.at("message").as_string() == "tunnel it channel 3 (a\"b): aborted");
}

TEST_CASE("the admin page's window keeps the last lines at info and above") {
  auto before = runtime::recent_log_events();
  const auto last = before.empty() ? 0 : before.back().number;
  runtime::set_log_level(runtime::log_level::debug);
  runtime::log_debug("test", "a debug line is not kept");
  for (int i = 0; i < 250; ++i) runtime::log_info("test", "line ", i);
  auto after = runtime::recent_log_events(last);
  REQUIRE(after.size() == runtime::kept_log_events);
  CHECK(after.front().message == "line 50");
  CHECK(after.back().message == "line 249");
  CHECK(runtime::recent_log_events(after.back().number).empty());
  // A long line is kept cut (the log itself has it whole).
  runtime::log_info("test", std::string(5000, 'x'));
  auto last_one = runtime::recent_log_events(after.back().number);
  REQUIRE(last_one.size() == 1);
  CHECK(last_one[0].message == std::string(600, 'x'));
  CHECK(last_one[0].component == "test");
  CHECK(last_one[0].level == runtime::log_level::info);
}
