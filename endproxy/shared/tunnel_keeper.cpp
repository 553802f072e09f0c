#include "endproxy/shared/tunnel_keeper.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

#include "endproxy/shared/end_tunnel.hpp"
#include "runtime/listener.hpp"
#include "runtime/log.hpp"
#include "runtime/watchdog.hpp"
#include "uplink/backoff.hpp"
#include "uplink/dialer.hpp"
#include "uplink/environment_proxy.hpp"
#include "uplink/pac_evaluator.hpp"
#include "uplink/pac_fetch.hpp"
#include "runtime/blocking_work.hpp"

namespace endproxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using runtime::log_info;
using runtime::log_warn;

namespace {
constexpr std::string_view component = "end";

std::string middles_text(const std::vector<config::endpoint>& ms) {
  std::string s;
  for (auto& m : ms) s += (s.empty() ? "" : ", ") + m.to_string();
  return s;
}

std::string ways_text(const std::vector<config::way>& ws) {
  std::string s;
  for (auto& w : ws) s += (s.empty() ? "" : ", ") + w.to_string();
  return s;
}

lstp::end_role wire_role(config::end_role r) {
  switch (r) {
    case config::end_role::client: return lstp::end_role::client;
    case config::end_role::server: return lstp::end_role::server;
    case config::end_role::both: return lstp::end_role::both;
  }
  return lstp::end_role::both;
}
}  // namespace

tunnel_keeper::tunnel_keeper(asio::io_context& io, std::shared_ptr<const config::end_config> cfg, std::size_t tunnel)
    : io_(io),
      end_(std::move(cfg)),
      cfg_(*end_),
      tun_(end_->tunnels.at(tunnel)),
      tunnel_changed_(io),
      retry_timer_(io),
      reprobe_timer_(io),
      tasks_(io.get_executor(), [this](std::string_view task, std::string_view what) {
        runtime::log_error(component, "tunnel ", tun_.name, ": internal error in the ", task, ": ", what);
      }) {
  tunnel_changed_.expires_at(asio::steady_timer::time_point::max());
}

tunnel_keeper::~tunnel_keeper() = default;

void tunnel_keeper::start() {
  // Slow on purpose for a passphrase (Argon2id): once per process.
  keys_ = lstp::derive_tunnel_keys(tun_.name, tun_.secret);
  if (tun_.access) access_key_ = lstp::access_key(tun_.access->name, tun_.access->token);
  log_info(component, "\"", cfg_.name, "\" (", (cfg_.role == config::end_role::client   ? "client end"
                                                : cfg_.role == config::end_role::server ? "server end"
                                                                                        : "client and server end"),
           "), tunnel ", tun_.name, " (tag ", lstp::short_tag(keys_.tag), ", secret from ", tun_.secret_source,
           "), middle proxy ", middles_text(tun_.middles), ", ways: ",
           tun_.ways.empty() ? std::string("automatic") : ways_text(tun_.ways),
           tun_.state_file.empty() ? std::string(", no state file") : ", state in " + tun_.state_file);
  if (!tun_.secret.is_key)
    log_warn(component, "tunnel ", tun_.name, ": the secret from ", tun_.secret_source,
             " is a passphrase: it is stretched with Argon2id, but a middle proxy that sees the pairing id can still "
             "test guesses offline; a generated key cannot be guessed: make one with endproxy --new-secret FILE "
             "(on both ends)");
  if (tun_.access && !tun_.access->token.is_key)
    log_warn(component, "tunnel ", tun_.name, ": the access token from ", tun_.access->token_source,
             " is a passphrase; make a key with middleproxy --new-token FILE");
  if (cfg_.role != config::end_role::client) {
    auto list = [](const std::vector<policy::rule>& rules) {
      std::string t;
      for (auto& r : rules) t += (t.empty() ? "" : ", ") + r.text;
      return t;
    };
    if (cfg_.allow.empty())
      log_warn(component, "tunnel ", tun_.name,
               ": the server end allows nothing yet (add server.allow, e.g. 10.0.0.0/8 or *.corp.example:443)");
    else
      log_info(component, "tunnel ", tun_.name, ": the far side may reach ", list(cfg_.allow),
               cfg_.deny.empty() ? std::string() : "; never " + list(cfg_.deny));
  }
  const bool uses_env = tun_.proxy_from_environment || std::any_of(tun_.ways.begin(), tun_.ways.end(), [](auto& w) {
                          return w.via == config::way::route::environment;
                        });
  if (uses_env) {
    for (auto& m : tun_.middles) {
      for (bool plain : {false, true}) {
        auto env = uplink::proxy_from_environment(m.host, plain, ::getenv);
        if (!env.problem.empty()) log_warn(component, "tunnel ", tun_.name, ": ignoring ", env.problem);
        else if (env.proxy)
          log_info(component, "tunnel ", tun_.name, ": ", plain ? "ws" : "tcp, tls and wss", " to ",
                   m.to_string(), " may go via ", env.proxy->to_string(), " (from ", env.source, ")");
      }
    }
  }
  auto self = shared_from_this();
  tasks_.spawn("tunnel keeper", [self] { return self->keep_tunnel(); });
  if (tun_.reprobe_interval.count() > 0) tasks_.spawn("way reprobe", [self] { return self->reprobe_loop(); });
}

void tunnel_keeper::stop() {
  stopping_ = true;
  retry_timer_.cancel();
  reprobe_timer_.cancel();
  for (auto& a : attempts_) a.tunnel->driver().shutdown("the end proxy is stopping");
}

void tunnel_keeper::reset() {
  stopping_ = true;
  // A copy: closing a tunnel changes the list.
  auto attempts = attempts_;
  for (auto& a : attempts) a.tunnel->close({lstp::wire_error::shutting_down, "the end proxy stopped"});
}

lstp::tunnel_params tunnel_keeper::make_params() {
  lstp::tunnel_params p;
  // The pairing id of this epoch (PROTOCOL.md 4). A setup still waiting
  // when the epoch turns is made again with the next id (setup_refresh).
  const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  p.self.pairing = keys_.pairing_at(lstp::pairing_epoch(unix_now));
  p.limits.setup_refresh = std::chrono::seconds(lstp::pairing_epoch_seconds - unix_now % lstp::pairing_epoch_seconds);
  p.self.tag = keys_.tag;
  p.self.role = wire_role(cfg_.role);
  p.self.name = cfg_.name;
  rng_.randomize(p.self.nonce.data(), p.self.nonce.size());
  p.psk = keys_.psk;
  p.is_fresh_peer_setup = [weak = weak_from_this()](const lstp::pairing_hint& hint) {
    auto self = weak.lock();
    if (!self) return false;
    const auto epoch = lstp::pairing_epoch(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    for (auto e : {epoch - 1, epoch, epoch + 1})
      if (lstp::hint_of(self->keys_.pairing_at(e)) == hint) return true;
    return false;
  };
  // Two of our own attempts may meet at one middle (two ways to it racing,
  // or one middle listed under two names): never a tunnel with ourselves.
  p.is_own_nonce = [weak = weak_from_this()](const lstp::nonce& n) {
    auto self = weak.lock();
    return self && std::any_of(self->attempts_.begin(), self->attempts_.end(),
                               [&](const attempt& a) { return a.tunnel->own_nonce() == n; });
  };
  p.limits.high_watermark = cfg_.limit.high_watermark;
  p.limits.low_watermark = cfg_.limit.low_watermark;
  p.limits.pause_slack = cfg_.limit.pause_slack;
  p.limits.max_channels = cfg_.limit.max_channels;
  p.limits.max_tunnel_buffered = cfg_.limit.max_tunnel_buffer;
  p.limits.keepalive = cfg_.limit.keepalive;
  p.limits.dead_after = cfg_.limit.dead_after;
  p.limits.handshake_timeout = cfg_.limit.handshake_timeout;
  p.limits.resumption = cfg_.limit.resumption;
  p.limits.resume_window = cfg_.limit.resume_window;
  p.limits.replay_buffer = cfg_.limit.replay_buffer;
  p.limits.key_updates = cfg_.limit.key_updates;
  p.limits.key_update_bytes = cfg_.limit.key_update_after;
  p.limits.key_update_interval = cfg_.limit.key_update_interval;
  if (tun_.access) {
    // Wall-clock time: the middle bounds a proof's age with its own clock.
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    p.access = lstp::middle_access{tun_.access->name, access_key_,
                                   static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count())};
  }
  return p;
}

struct tunnel_keeper::race_result {
  std::size_t index = 0;
  transport::hop_ptr hop;
  std::chrono::steady_clock::duration took{};
};

std::vector<uplink::candidate> tunnel_keeper::plan() const {
  return uplink::plan_candidates(
      tun_.middles, tun_.ways, tun_.ways_proxy, tun_.proxy_from_environment, memory_,
      [this](const config::endpoint& middle, const config::way& w) -> std::vector<config::way> {
        // A PAC file's answers for this middle, when there is one...
        if (auto it = pac_routes_.find(uplink::pac_query_for(middle, w.how).url); it != pac_routes_.end()) {
          std::vector<config::way> out;
          for (const auto& r : it->second)
            out.push_back(r.through ? config::way{w.how, config::way::route::proxy, r.through}
                                    : config::way{w.how, config::way::route::direct, std::nullopt});
          return out;
        }
        // ...else the environment's proxy.
        auto env = uplink::proxy_from_environment(middle.host, uplink::is_plain_web(w.how), ::getenv);
        if (!env.proxy) return {};
        return {config::way{w.how, config::way::route::proxy, env.proxy}};
      });
}

namespace {

// What a PAC refresh found, made off the I/O thread.
struct pac_outcome {
  std::string from;                                            // the PAC file used
  std::map<std::string, std::vector<uplink::pac_route>> routes;  // by query URL
  std::vector<std::string> said;                               // "url -> answer", for the log
  std::vector<std::string> problems;                           // each source that failed, and why
};

pac_outcome discover(const std::optional<uplink::pac_source>& configured, bool wpad,
                     const std::vector<config::endpoint>& middles) {
  pac_outcome out;
  std::vector<uplink::pac_source> sources;
  if (configured) {
    sources.push_back(*configured);
  } else if (wpad) {
    std::ifstream in("/etc/resolv.conf");
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    sources = uplink::wpad_sources(text);
    if (sources.empty()) out.problems.push_back("WPAD: /etc/resolv.conf names no search domain");
  }
  std::vector<uplink::pac_query> queries;
  for (const auto& m : middles)
    for (auto how : {config::carrier::tcp, config::carrier::ws}) {
      auto q = uplink::pac_query_for(m, how);
      if (std::find(queries.begin(), queries.end(), q) == queries.end()) queries.push_back(q);
    }
  for (const auto& s : sources) {
    auto fetched = uplink::fetch_pac(s);
    if (!fetched.error.empty()) {
      out.problems.push_back(fetched.error);
      continue;
    }
    auto result = uplink::evaluate_pac(fetched.script, queries);
    if (!result.error.empty()) {
      out.problems.push_back("the PAC file " + s.to_string() + " is unusable: " + result.error);
      continue;
    }
    out.from = s.to_string();
    for (std::size_t i = 0; i < queries.size(); ++i) {
      std::vector<std::string> skipped;
      out.routes[queries[i].url] = uplink::parse_pac_answer(result.answers[i], &skipped);
      std::string line = queries[i].url + " -> " + uplink::quote(result.answers[i]);
      for (const auto& k : skipped) line += "; skipped " + k;
      out.said.push_back(std::move(line));
    }
    break;
  }
  return out;
}

}  // namespace

asio::awaitable<void> tunnel_keeper::refresh_pac(bool force) {
  if (!tun_.pac && !tun_.wpad) co_return;
  const auto now = std::chrono::steady_clock::now();
  // reprobe_interval: off fetches it at start and after failed rounds only.
  if (pac_checked_ && !force && (tun_.reprobe_interval.count() == 0 || now - *pac_checked_ < tun_.reprobe_interval))
    co_return;
  pac_checked_ = now;
  // The work owns its inputs and its result: it may outlive this frame.
  auto outcome = std::make_shared<pac_outcome>();
  // Made first, awaited after (no temporary inside co_await: GCC 12).
  auto work = runtime::run_blocking([outcome, pac = tun_.pac, wpad = tun_.wpad, middles = tun_.middles] {
    *outcome = discover(pac, wpad, middles);
  });
  co_await std::move(work);
  auto& found = *outcome;
  if (found.from.empty()) {
    std::string text = tun_.pac ? "no usable PAC file" : "no WPAD file found";
    for (const auto& p : found.problems) text += "; " + p;
    text += pac_routes_.empty() ? "; going by the environment's proxy, if any"
                                : "; keeping what the last PAC file said";
    log_warn(component, "tunnel ", tun_.name, ": ", text);
    co_return;
  }
  if (found.routes != pac_routes_) {
    std::string text;
    for (const auto& s : found.said) text += (text.empty() ? "" : ", ") + s;
    log_info(component, "tunnel ", tun_.name, ": the PAC file ", found.from, " says ", text);
  }
  pac_routes_ = std::move(found.routes);
}

void tunnel_keeper::remember(const uplink::candidate& c) {
  if (!memory_.remember(c.middle, c.way) || tun_.state_file.empty()) return;
  try {
    memory_.save(tun_.state_file);
  } catch (const std::exception& e) {
    log_warn(component, "tunnel ", tun_.name, ": ", e.what(), " (the way that works is not remembered)");
  }
}

std::chrono::milliseconds tunnel_keeper::backoff(unsigned failed_rounds) {
  std::uint32_t r = 0;
  rng_.randomize(reinterpret_cast<std::uint8_t*>(&r), sizeof r);
  return uplink::backoff_delay(tun_.retry_interval, tun_.retry_max, failed_rounds, r);
}

asio::awaitable<transport::hop_ptr> tunnel_keeper::dial(const uplink::candidate& c, std::string& why) {
  if (dialer_) co_return co_await dialer_(c, why);
  uplink::dial_options options;
  options.websocket_path = tun_.websocket_path;
  options.timeout = tun_.way_timeout;
  co_return co_await uplink::dial(io_.get_executor(), c.way, c.middle, options, why);
}

asio::awaitable<std::optional<tunnel_keeper::race_result>> tunnel_keeper::race(const std::vector<uplink::candidate>& cands,
                                                                      std::size_t& next,
                                                                      std::vector<std::string>& failures,
                                                                      const std::function<bool()>& give_up) {
  struct race_state {
    explicit race_state(const asio::any_io_executor& ex) : wake(ex) {}
    runtime::notifier wake;
    std::vector<race_result> done;
    std::vector<std::pair<std::size_t, std::string>> failed;
    bool over = false;  // a winner was taken: late successes close their hop
  };
  auto st = std::make_shared<race_state>(io_.get_executor());
  std::size_t running = 0;
  auto launch = [&](std::size_t i) {
    ++running;
    auto self = shared_from_this();
    tasks_.spawn(
        "dial " + cands[i].to_string(),
        [self, st, i, c = cands[i]]() -> asio::awaitable<void> {
          const auto t0 = std::chrono::steady_clock::now();
          std::string why;
          auto hop = co_await self->dial(c, why);
          if (st->over) {
            if (hop) hop->close();
            co_return;
          }
          if (hop)
            st->done.push_back(race_result{i, std::move(hop), std::chrono::steady_clock::now() - t0});
          else
            st->failed.emplace_back(i, why);
          st->wake.notify();
        },
        [st, i] {
          // Counted as a failed way, so the race does not wait for it.
          st->failed.emplace_back(i, "internal error");
          st->wake.notify();
        });
  };
  // Start the second candidate when the first is still undecided after this
  // long: a black-holed way costs its timeout, but not twice in a row.
  const auto race_after = std::min<std::chrono::steady_clock::duration>(tun_.way_timeout / 4, std::chrono::seconds(1));
  if (next >= cands.size()) co_return std::nullopt;
  launch(next++);
  for (;;) {
    const bool woke = co_await st->wake.wait_until(std::chrono::steady_clock::now() + race_after);
    for (auto& [i, why] : st->failed) {
      --running;
      failures.push_back(cands[i].way.to_string() + " to " + cands[i].middle.to_string() + ": " + why);
    }
    st->failed.clear();
    if (!st->done.empty()) {
      st->over = true;
      auto best = std::move(st->done.front());
      for (std::size_t k = 1; k < st->done.size(); ++k) st->done[k].hop->close();
      co_return best;
    }
    if (give_up()) {
      st->over = true;
      co_return std::nullopt;
    }
    if ((running == 0 || (!woke && running < 2)) && next < cands.size()) launch(next++);
    if (running == 0) co_return std::nullopt;
  }
}

// One round of attachments: the ends attach to every middle at once and the
// first middle where both are present pairs them (seed 004); the round ends
// when every attachment has ended (the tunnel that came up included).
struct tunnel_keeper::round_state {
  explicit round_state(const asio::any_io_executor& ex) : done(ex) {}
  runtime::notifier done;
  std::size_t pending = 0;
  bool released = false;  // a tunnel came up: attachments elsewhere stop
  bool served = false;
  std::chrono::milliseconds lifetime{0};
  bool failures_seen = false;  // some middle could not be reached by any way
};

// Keeps the tunnel up: attaches to every middle proxy by the ways out (the
// one that worked last first), keeps the first tunnel that comes up, and
// when it ends starts again, backing off while nothing works.
asio::awaitable<void> tunnel_keeper::keep_tunnel() {
  if (!tun_.state_file.empty()) {
    try {
      memory_ = uplink::way_memory::load(tun_.state_file);
    } catch (const std::exception& e) {
      log_warn(component, "tunnel ", tun_.name, ": ", e.what(), "; starting without it");
    }
  }
  unsigned failed_rounds = 0;
  while (!stopping_) {
    co_await refresh_pac(failed_rounds > 0);
    if (stopping_) break;
    auto rs = std::make_shared<round_state>(io_.get_executor());
    round_ = rs;
    const auto cands = plan();
    if (cands.empty()) {
      // Only "via env" ways, and the environment names no proxy for them.
      const std::string text = "no way to try: the ways go through the environment's proxy, and no https_proxy, "
                               "http_proxy or ALL_PROXY applies (or no_proxy exempts the middle)";
      if (text != last_failure_) log_warn(component, "tunnel ", tun_.name, ": ", text);
      last_failure_ = text;
    }
    for (auto& m : tun_.middles) {
      std::vector<uplink::candidate> mine;
      for (auto& c : cands)
        if (c.middle == m) mine.push_back(c);
      if (mine.empty()) continue;
      ++rs->pending;
      // attach() counts itself out of the round however it ends.
      tasks_.spawn("attachment to " + m.to_string(),
                   [self = shared_from_this(), mine = std::move(mine), rs]() mutable { return self->attach(std::move(mine), rs); });
    }
    while (rs->pending > 0) co_await rs->done.wait();
    round_.reset();
    if (stopping_) break;
    if (!rs->served && rs->failures_seen) last_failure_ = "cannot reach";
    // A tunnel that served for a while earns a quick reconnect; one that
    // keeps failing (or flapping) waits longer each round.
    if (rs->served && rs->lifetime >= tun_.retry_max)
      failed_rounds = 0;
    else
      ++failed_rounds;
    const auto delay = backoff(failed_rounds == 0 ? 0 : failed_rounds - 1);
    runtime::log_debug(component, "tunnel ", tun_.name, ": next attempt in ", delay.count(), " ms");
    retry_timer_.expires_after(delay);
    boost::system::error_code ec;
    co_await retry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Attaches to one middle proxy: the first way that opens carries a setup,
// which waits there for the other end.
asio::awaitable<void> tunnel_keeper::attach(std::vector<uplink::candidate> cands, std::shared_ptr<round_state> rs) {
  // However this ends (an exception included), the round learns of it.
  struct pending_guard {
    std::shared_ptr<round_state> rs;
    ~pending_guard() {
      if (--rs->pending == 0) rs->done.notify();
    }
  } guard{rs};
  const auto middle = cands.front().middle;
  const auto give_up = [this, rs] { return stopping_ || rs->released; };
  unsigned failed_tries = 0;
  try {
    while (!give_up()) {
      std::size_t next = 0;
      std::vector<std::string> failures;
      bool served = false;
      while (!give_up() && next < cands.size()) {
        auto won = co_await race(cands, next, failures, give_up);
        if (!won) break;
        if (give_up()) {
          won->hop->close();  // the tunnel came up at another middle meanwhile
          break;
        }
        const auto& c = cands[won->index];
        const auto ms = std::chrono::duration<double, std::milli>(won->took).count();
        std::string note;
        for (auto& f : failures) note += "; " + f;
        // Quiet while the same refusal repeats at every retry.
        const bool repeating = !last_failure_.empty() && last_failure_.rfind("cannot reach", 0) != 0;
        runtime::log(repeating ? runtime::log_level::debug : runtime::log_level::info, component, "tunnel ",
                     tun_.name, ": connected to middle proxy ", c.middle.to_string(), " by ",
                     c.way.to_string(), " in ", std::to_string(ms).substr(0, 6), " ms",
                     failures.empty() ? "" : " (failed first" + note + ")", ", waiting for the other end");
        auto failed_first = std::move(failures);
        failures.clear();
        last_middle_failure_.erase(middle.to_string());
        const auto opened = std::chrono::steady_clock::now();
        // The tunnel may outlive this keeper for a moment (its channels hold it).
        auto t = std::make_shared<end_tunnel>(cfg_, tun_, std::move(won->hop), make_params(), rng_,
                                              [weak = weak_from_this()] {
                                                if (auto self = weak.lock()) self->on_tunnel_change();
                                              });
        t->count_into(stats_);
        attempts_.push_back(attempt{t, c, std::move(failed_first)});
        co_await t->run();
        std::erase_if(attempts_, [&](auto& a) { return a.tunnel == t; });
        if (tunnel_ == t) {
          tunnel_.reset();
          current_.reset();
          move_when_idle_ = false;
        }
        tunnel_changed_.cancel();
        if (!t->was_up() && !give_up() && t->close_reason().reason == lstp::epoch_turned_reason) {
          // Our setup waited into the next pairing epoch: the same way again,
          // at once, with the new pairing id.
          runtime::log_debug(component, "tunnel ", tun_.name, ": ", lstp::epoch_turned_reason);
          next = won->index;
          continue;
        }
        log_closed(*t);
        stats_->bytes_sent_before += t->driver().bytes_out();
        stats_->bytes_received_before += t->driver().bytes_in();
        stats_->resumptions_before += t->resumptions();
        if (t->was_up()) {
          served = true;
          rs->served = true;
          rs->lifetime =
              std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t->started());
          break;
        }
        // Closed at once without a byte from the middle: something on the
        // way (a filtering proxy or firewall) let the connection open but
        // not carry LSTP. Try the ways after it now rather than after a
        // backoff (a slower way the race dropped included).
        if (!give_up() && t->driver().bytes_in() == 0 && std::chrono::steady_clock::now() - opened < tun_.way_timeout) {
          failures.push_back(c.way.to_string() + " to " + c.middle.to_string() +
                             ": the hop closed right after the setup (filtered on the way?)");
          next = won->index + 1;
          continue;
        }
        break;
      }
      if (served || give_up()) break;
      if (!failures.empty()) {
        // One line per middle and cause, not one per retry.
        std::string text;
        for (std::size_t i = 0; i < failures.size(); ++i) text += (i ? "; " : "") + failures[i];
        auto& last = last_middle_failure_[middle.to_string()];
        if (text != last)
          log_warn(component, "tunnel ", tun_.name, ": cannot reach middle proxy ", middle.to_string(),
                   " by any way: ", text);
        last = text;
        rs->failures_seen = true;
      }
      // While another middle holds a setup waiting for the other end, keep
      // trying this one too (the other end may reach only this one); else
      // the round ends and the keeper backs off.
      if (rs->pending <= 1) break;
      const auto until = std::chrono::steady_clock::now() + backoff(failed_tries++);
      asio::steady_timer nap(io_);
      while (!give_up() && std::chrono::steady_clock::now() < until) {
        nap.expires_after(std::min<std::chrono::steady_clock::duration>(until - std::chrono::steady_clock::now(),
                                                                         std::chrono::milliseconds(250)));
        boost::system::error_code ec;
        co_await nap.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  } catch (const std::exception& e) {
    runtime::log_error(component, "tunnel ", tun_.name, ": attaching to middle proxy ", middle.to_string(),
                       " failed: ", e.what());
  }
}

// Called whenever an attachment's tunnel comes up or closes. The first
// tunnel up serves; attachments still waiting elsewhere are released. If
// two came up at once (at two middles), both ends keep the one with the
// smaller path key, so they agree without talking.
void tunnel_keeper::on_tunnel_change() {
  const attempt* best = nullptr;
  for (auto& a : attempts_) {
    if (!a.tunnel->is_up()) continue;
    if (!best || a.tunnel->path_key() < best->tunnel->path_key() ||
        (a.tunnel->path_key() == best->tunnel->path_key() && a.tunnel == tunnel_))
      best = &a;
  }
  if (best && best->tunnel != tunnel_) {
    tunnel_ = best->tunnel;
    current_ = best->how;
    ++stats_->tunnels_up;
    stats_->cheaper_ways_failed = best->failed_first;
    move_when_idle_ = false;
    remember(best->how);  // a way counts as working once a tunnel came up over it
  }
  if (tunnel_ && tunnel_->resuming() && !resume_running_ && !stopping_) {
    resume_running_ = true;
    tasks_.spawn(
        "resumption of tunnel " + tun_.name, [self = shared_from_this(), t = tunnel_] { return self->resume(t); },
        [weak = weak_from_this()] {
          if (auto self = weak.lock()) self->resume_running_ = false;
        });
  }
  if (tunnel_ && tunnel_->is_up()) {
    if (auto rs = round_.lock()) rs->released = true;
    for (auto& a : attempts_) {
      if (a.tunnel == tunnel_) continue;
      if (a.tunnel->waiting_for_partner()) {
        a.tunnel->close({lstp::wire_error::ok, "the tunnel came up through middle proxy " + current_->middle.to_string()});
      } else if (a.tunnel->is_up()) {
        log_info(component, "tunnel ", tun_.name, ": came up through two middle proxies at once; keeping the one through ",
                 current_->middle.to_string());
        a.tunnel->driver().shutdown("the same tunnel came up through another middle proxy");
      }
      // Attachments in their TLS handshake are left to finish: the other
      // end may already count on them; the rule above decides once up.
    }
  }
  tunnel_changed_.cancel();
  if (on_change_) on_change_();
}

asio::awaitable<void> tunnel_keeper::resume(std::shared_ptr<end_tunnel> t) {
  struct running_flag {
    bool& flag;
    ~running_flag() { flag = false; }
  } running{resume_running_};
  unsigned failed_tries = 0;
  const auto give_up = [this, t] { return stopping_ || !t->resuming(); };
  // The middle the hop was lost through goes last: a middle that died,
  // was cut off or altered a record would otherwise win the race again (it
  // is the plan's first), and a tampering one would cost hop after hop. The
  // peer lost the same hop and does the same, so both meet at the next.
  std::string lost_through = current_ ? current_->middle.to_string() : std::string();
  while (!give_up()) {
    // Every middle and way, in the plan's order (the one that worked last
    // first, the one just lost last), at once: the first try waits for nothing.
    auto cands = plan();
    std::stable_partition(cands.begin(), cands.end(),
                          [&](const uplink::candidate& c) { return c.middle.to_string() != lost_through; });
    std::size_t next = 0;
    std::vector<std::string> failures;
    // (No co_await inside a conditional expression: GCC 12 mishandles its temporaries.)
    std::optional<race_result> won;
    if (!cands.empty()) won = co_await race(cands, next, failures, give_up);
    if (give_up()) {
      if (won) won->hop->close();
      break;
    }
    if (!won) {
      std::string text;
      for (std::size_t i = 0; i < failures.size(); ++i) text += (i ? "; " : "") + failures[i];
      runtime::log_debug(component, "tunnel ", tun_.name, ": no middle proxy reachable to resume: ", text);
      asio::steady_timer nap(io_);
      nap.expires_after(std::min(backoff(failed_tries++), std::chrono::milliseconds(2000)));
      boost::system::error_code ec;
      co_await nap.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    failed_tries = 0;
    const auto& c = cands[won->index];
    t->resuming_via(c.way.to_string());
    const auto lost_before = t->hops_lost();
    if (!t->driver().replace_hop(std::move(won->hop))) break;
    current_ = c;
    // This hop resumes the tunnel, or is lost in turn (the peer went to
    // another middle, the handshake stalled): then the next one.
    while (!give_up() && t->hops_lost() == lost_before) co_await t->resume_step().wait();
    lost_through = c.middle.to_string();
  }
}

void tunnel_keeper::log_closed(end_tunnel& t) {
  // One line per closed tunnel; a setup refused again for the same reason
  // at every retry is logged once.
  auto& why = t.close_reason();
  auto text = std::string(lstp::to_string(why.code)) + ": " + why.reason;
  const auto lifetime = std::chrono::steady_clock::now() - t.started();
  if (t.was_up() || text != last_failure_) {
    auto secs = std::chrono::duration<double>(lifetime).count();
    auto level = why.code == lstp::wire_error::ok || why.code == lstp::wire_error::shutting_down
                     ? runtime::log_level::info
                     : runtime::log_level::warn;
    const auto& proto = t.proto();
    const std::string keys =
        proto.key_updates_sent() + proto.key_updates_received() == 0
            ? std::string()
            : "; record keys updated " + std::to_string(proto.key_updates_sent()) + " times sending, " +
                  std::to_string(proto.key_updates_received()) + " receiving";
    runtime::log(level, component, "tunnel ", tun_.name, " closed: ",
                 level == runtime::log_level::info ? why.reason : text, " (after ", secs, " s; ",
                 t.driver().bytes_out(), " bytes sent, ", t.driver().bytes_in(), " bytes received on the hop", keys,
                 ")");
  } else {
    runtime::log_debug(component, "tunnel ", tun_.name, " closed again: ", text);
  }
  if (why.code != lstp::wire_error::ok) last_failure_ = t.was_up() ? std::string() : text;
}

// Now and then, while the tunnel runs on a costly way (through a proxy, as
// web traffic), checks whether a cheaper way to the same middle works again;
// if so, remembers it and moves to it once no channel is open.
asio::awaitable<void> tunnel_keeper::reprobe_loop() {
  while (!stopping_) {
    reprobe_timer_.expires_after(move_when_idle_ ? std::chrono::milliseconds(1000) : tun_.reprobe_interval);
    boost::system::error_code ec;
    co_await reprobe_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    if (!tunnel_ || !tunnel_->is_up() || !current_) continue;
    if (move_when_idle_) {
      if (tunnel_->proto().channel_count() == 0) {
        log_info(component, "tunnel ", tun_.name, ": idle, moving to the cheaper way");
        tunnel_->driver().shutdown("moving to a cheaper way out");
        move_when_idle_ = false;
      }
      continue;
    }
    const auto using_now = *current_;
    for (auto& c : plan()) {
      if (!(c.middle == using_now.middle) || c.cost >= using_now.cost) continue;
      std::string why;
      auto hop = co_await dial(c, why);
      if (!hop) {
        runtime::log_debug(component, "tunnel ", tun_.name, ": cheaper way ", c.to_string(), " still fails: ", why);
        continue;
      }
      hop->close();
      if (!current_ || !(current_->way == using_now.way)) break;  // the tunnel moved meanwhile
      log_info(component, "tunnel ", tun_.name, ": cheaper way ", c.to_string(), " works now (using ",
               using_now.way.to_string(), "); moving to it once no channel is open");
      remember(c);
      move_when_idle_ = true;
      break;
    }
  }
}

std::shared_ptr<end_tunnel> tunnel_keeper::newest_attempt() const {
  if (tunnel_) return tunnel_;
  return attempts_.empty() ? nullptr : attempts_.back().tunnel;
}

bool tunnel_keeper::drop(const std::string& why) {
  if (!tunnel_ && attempts_.empty()) return false;
  // A copy: closing may change the list.
  auto all = attempts_;
  for (auto& a : all) a.tunnel->close({lstp::wire_error::general, why});
  if (tunnel_) tunnel_->close({lstp::wire_error::general, why});
  return true;
}

asio::awaitable<std::shared_ptr<end_tunnel>> tunnel_keeper::wait_for_tunnel(std::chrono::steady_clock::time_point deadline) {
  while (!(tunnel_ && tunnel_->is_up())) {
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) co_return nullptr;
    // All waiters share one timer that never expires: cancelling it (when the
    // tunnel changes, or when any waiter's own deadline passes) wakes them all
    // and each re-checks.
    boost::system::error_code ec;
    runtime::watchdog limit(tunnel_changed_, deadline - std::chrono::steady_clock::now());
    co_await tunnel_changed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return tunnel_;
}

asio::awaitable<tunnel_keeper::opened_channel> tunnel_keeper::open_channel(const lstp::address& dest, const std::string& who,
                                                                   std::string_view log_component,
                                                                   lstp::connect_command command) {
  const std::string_view verb = command == lstp::connect_command::bind            ? "BIND"
                                : command == lstp::connect_command::udp_associate ? "UDP ASSOCIATE"
                                                                                  : "CONNECT";
  opened_channel out;
  const auto asked = std::chrono::steady_clock::now();
  auto tunnel = co_await wait_for_tunnel(std::chrono::steady_clock::now() + cfg_.limit.socks_timeout);
  if (!tunnel) {
    stats_->count_open("no_tunnel", std::chrono::steady_clock::now() - asked);
    runtime::log_warn(log_component, who, ": ", verb, " ", dest.to_string(), " refused: tunnel ", tun_.name,
                      " is not up");
    out.result.error = {lstp::wire_error::general, "the tunnel is not up"};
    co_return out;
  }
  lstp::connection_request req;
  req.command = static_cast<std::uint8_t>(command);
  req.destination = dest;
  out.result = co_await tunnel->open(req);
  stats_->count_open(out.result.accepted ? "ok" : lstp::to_string(out.result.error.code),
                     std::chrono::steady_clock::now() - asked);
  if (!out.result.accepted) {
    runtime::log_info(log_component, who, ": ", verb, " ", dest.to_string(), " failed: ",
                      lstp::to_string(out.result.error.code),
                      out.result.error.reason.empty() ? "" : ": " + out.result.error.reason);
    co_return out;
  }
  out.tunnel = std::move(tunnel);
  co_return out;
}

}  // namespace endproxy
