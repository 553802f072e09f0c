#include "endproxy/shared/end_status.hpp"

#include <boost/json/array.hpp>

#include "lstp/secrets.hpp"

namespace endproxy {

namespace {

const char* role_text(config::end_role r) {
  switch (r) {
    case config::end_role::client: return "client";
    case config::end_role::server: return "server";
    case config::end_role::both: return "both";
  }
  return "?";
}

// "up", "resuming", "waiting" (at a middle, for the other end),
// "connecting" (in the handshake) or "down" (no hop).
std::string state_of(const tunnel_keeper& k, const std::shared_ptr<end_tunnel>& t) {
  if (!t) return "down";
  if (t->resuming()) return "resuming";
  if (t->is_up()) return "up";
  if (t->waiting_for_partner()) return "waiting";
  (void)k;
  return "connecting";
}

const char* kind_text(lstp::hop_kind k) {
  switch (k) {
    case lstp::hop_kind::client_end: return "client-end";
    case lstp::hop_kind::server_end: return "server-end";
    case lstp::hop_kind::both_end: return "end";
    case lstp::hop_kind::middle: return "middle";
  }
  return "?";
}

}  // namespace

end_status::end_status(const config::end_config& cfg, std::vector<std::shared_ptr<tunnel_keeper>> tunnels)
    : cfg_(cfg), tunnels_(std::move(tunnels)) {}

std::string end_status::name() const { return cfg_.name; }

boost::json::object end_status::status() {
  boost::json::object o;
  o["role"] = role_text(cfg_.role);
  boost::json::array socks;
  for (auto& ep : cfg_.socks_listen) socks.push_back(boost::json::string(ep.to_string()));
  o["socks_listen"] = std::move(socks);
  boost::json::array tunnels;
  const auto now = std::chrono::system_clock::now();
  for (auto& k : tunnels_) {
    const auto& tc = k->tunnel();
    const auto& st = k->stats();
    auto t = k->newest_attempt();
    boost::json::object j;
    j["name"] = tc.name;
    j["tag"] = lstp::short_tag(lstp::tag_of(tc.name));
    j["state"] = state_of(*k, t);
    if (!k->last_failure().empty() && !(t && t->is_up())) j["state_detail"] = k->last_failure();
    boost::json::array middles;
    for (auto& m : tc.middles) middles.push_back(boost::json::string(m.to_string()));
    j["middles"] = std::move(middles);
    boost::json::array hops;
    if (t && (t->is_up() || t->resuming()))
      for (auto& h : t->path()) {
        boost::json::object hop;
        hop["kind"] = kind_text(h.kind);
        hop["name"] = h.name;
        hop["address"] = h.address;
        hops.push_back(std::move(hop));
      }
    j["hop_map"] = std::move(hops);
    j["way"] = k->way_in_use();
    boost::json::array cheaper;
    for (auto& f : st.cheaper_ways_failed) cheaper.push_back(boost::json::string(f));
    j["cheaper_ways_failed"] = std::move(cheaper);
    const bool up = t && t->is_up();
    j["uptime_seconds"] = up ? std::chrono::duration<double>(now - t->up_since()).count() : 0.0;
    j["rtt_seconds"] = t ? std::chrono::duration<double>(t->proto().min_rtt()).count() : 0.0;
    j["bytes_sent"] = st.bytes_sent_before + (t ? t->driver().bytes_out() : 0);
    j["bytes_received"] = st.bytes_received_before + (t ? t->driver().bytes_in() : 0);
    j["reconnects"] = st.tunnels_up > 0 ? st.tunnels_up - 1 : 0;
    j["resumptions"] = st.resumptions_before + (t ? t->resumptions() : 0);
    boost::json::array channels;
    if (t)
      for (auto& c : t->channel_statuses()) {
        boost::json::object ch;
        ch["id"] = c.id;
        ch["channel"] = c.channel;
        const bool client_side = cfg_.role != config::end_role::server;
        ch["app"] = client_side ? c.local_peer : std::string();
        ch["connected_to"] = client_side ? std::string() : c.local_peer;
        ch["destination"] = c.facts.destination;
        ch["command"] = c.facts.command;
        ch["age_seconds"] = c.age_seconds;
        ch["bytes_sent"] = c.bytes_sent;
        ch["bytes_received"] = c.bytes_received;
        ch["credit_window"] = c.credit_window;
        ch["paused"] = c.paused;
        channels.push_back(std::move(ch));
      }
    j["channels"] = std::move(channels);
    tunnels.push_back(std::move(j));
  }
  o["tunnels"] = std::move(tunnels);
  return o;
}

void end_status::metrics(admin::metrics_text& m) {
  using admin::metric_type;
  struct row {
    std::string name;
    const tunnel_stats* st;
    std::shared_ptr<end_tunnel> t;
  };
  std::vector<row> rows;
  for (auto& k : tunnels_) rows.push_back({k->tunnel().name, &k->stats(), k->newest_attempt()});
  const auto up = [](const row& r) { return r.t && r.t->is_up(); };

  m.family("lstp_tunnel_up", metric_type::gauge, "Whether the tunnel is up (1) or not (0).");
  for (auto& r : rows) m.sample({{"tunnel", r.name}}, up(r) ? 1 : 0);
  m.family("lstp_tunnel_rtt_seconds", metric_type::gauge,
           "The shortest round trip (PING to PONG) seen on the tunnel's current hop, in seconds; 0 before the first.");
  for (auto& r : rows)
    m.sample({{"tunnel", r.name}}, r.t ? std::chrono::duration<double>(r.t->proto().min_rtt()).count() : 0.0);
  m.family("lstp_tunnel_reconnects_total", metric_type::counter,
           "Times the tunnel came up again after its first time (a new TLS session end to end).");
  for (auto& r : rows)
    m.sample({{"tunnel", r.name}}, static_cast<double>(r.st->tunnels_up > 0 ? r.st->tunnels_up - 1 : 0));
  m.family("lstp_tunnel_resumptions_total", metric_type::counter,
           "Times the tunnel moved to a new hop and kept its channels (PROTOCOL.md 3.8).");
  for (auto& r : rows)
    m.sample({{"tunnel", r.name}}, static_cast<double>(r.st->resumptions_before + (r.t ? r.t->resumptions() : 0)));
  m.family("lstp_channels_open", metric_type::gauge, "Channels the tunnel carries now.");
  for (auto& r : rows)
    m.sample({{"tunnel", r.name}}, static_cast<double>(r.t && !r.t->waiting_for_partner() ? r.t->proto().channel_count() : 0));
  m.family("lstp_channel_opens_total", metric_type::counter,
           "Channel opens by result: ok, or why not (no_tunnel, not_allowed, connection_refused, timed_out, ...).");
  for (auto& r : rows)
    for (auto& [result, n] : r.st->opens) m.sample({{"tunnel", r.name}, {"result", result}}, static_cast<double>(n));
  m.family("lstp_channel_connect_seconds", metric_type::histogram,
           "Time from a channel's request to its answer (client end) or to the destination's connect (server end).");
  for (auto& r : rows) r.st->connect_seconds.write(m, {{"tunnel", r.name}});
  m.family("lstp_bytes_total", metric_type::counter,
           "Bytes on the tunnel's hops, TLS and framing included, by direction (sent, received).");
  for (auto& r : rows) {
    m.sample({{"tunnel", r.name}, {"direction", "sent"}},
             static_cast<double>(r.st->bytes_sent_before + (r.t ? r.t->driver().bytes_out() : 0)));
    m.sample({{"tunnel", r.name}, {"direction", "received"}},
             static_cast<double>(r.st->bytes_received_before + (r.t ? r.t->driver().bytes_in() : 0)));
  }
}

bool end_status::ready(std::string& why) {
  for (auto& k : tunnels_) {
    auto t = k->current_tunnel();
    if (cfg_.role == config::end_role::server) {
      if (t || k->connected_to_a_middle()) continue;
      why = "tunnel " + k->tunnel().name + " is not connected to a middle proxy";
      return false;
    }
    if (t) return true;
  }
  if (cfg_.role == config::end_role::server) return true;
  why = "no tunnel is up";
  return false;
}

admin::action_result end_status::close_channel(std::uint64_t id) {
  for (auto& k : tunnels_)
    if (auto t = k->current_tunnel(); t && t->close_channel(id)) return admin::action_result::done;
  return admin::action_result::not_found;
}

admin::action_result end_status::drop_tunnel(const std::string& name) {
  for (auto& k : tunnels_)
    if (k->tunnel().name == name)
      return k->drop("dropped by the operator") ? admin::action_result::done : admin::action_result::not_found;
  return admin::action_result::not_found;
}

}  // namespace endproxy
