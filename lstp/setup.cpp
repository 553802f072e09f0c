#include "lstp/setup.hpp"

#include <algorithm>

namespace lstp {

bytes encode_setup(const setup_message& s) {
  bytes out = s.info_frame;
  encode_topology(out, s.topology);
  return out;
}

setup_message appended(const setup_message& s, const topology_entry& self) {
  auto out = s;
  out.topology.push_back(self);
  return out;
}

bytes relay_setup(const setup_message& s, const topology_entry& self) { return encode_setup(appended(s, self)); }

setup_message make_setup(const common_unique_info& info, const topology_entry& self) {
  setup_message s;
  s.info = info;
  encode_common_unique_info(s.info_frame, info);
  s.topology = {self};
  return s;
}

setup_reader::result setup_reader::next() {
  if (done_) return {status::done, wire_error::ok, {}};
  for (;;) {
    auto r = decoder_.next();
    if (r.state == frame_decoder::status::need_more) return {};
    if (r.state == frame_decoder::status::invalid) return {status::invalid, r.error, r.reason};
    auto& f = r.frame;
    std::string why;
    if (f.header.type == frame_type::error) {
      error_info e;
      if (!decode_error_info(f.payload, e, why)) return {status::invalid, wire_error::protocol_error, why};
      return {status::peer_error, e.code, e.reason};
    }
    if (!have_info_ && notices_allowed_ && f.header.type == frame_type::pairing_notice) {
      if (f.payload.size() != hint_.size())
        return {status::invalid, wire_error::protocol_error,
                "PAIRING_NOTICE of " + std::to_string(f.payload.size()) + " bytes, expected 32"};
      std::copy(f.payload.begin(), f.payload.end(), hint_.begin());
      return {status::notice, wire_error::ok, {}};
    }
    if (!have_info_ && !access_ && access_allowed_ && f.header.type == frame_type::access) {
      access_proof p;
      if (!decode_access(f.payload, p, why)) return {status::invalid, wire_error::protocol_error, why};
      access_ = std::move(p);
      continue;
    }
    if (!have_info_) {
      if (f.header.type != frame_type::common_unique_info)
        return {status::invalid, wire_error::unexpected_message,
                std::string("expected COMMON_UNIQUE_INFO, got ") + std::string(to_string(f.header.type))};
      if (!decode_common_unique_info(f.payload, setup_.info, why))
        return {status::invalid, wire_error::protocol_error, why};
      if (setup_.info.version != protocol_version)
        return {status::invalid, wire_error::version_mismatch,
                "peer speaks LSTP version " + std::to_string(setup_.info.version) + ", we speak " +
                    std::to_string(protocol_version)};
      setup_.info_frame.clear();
      write_frame(setup_.info_frame, f.header.type, f.header.channel, f.payload, f.header.flags);
      have_info_ = true;
      continue;
    }
    if (f.header.type != frame_type::topology_exchange)
      return {status::invalid, wire_error::unexpected_message,
              std::string("expected TOPOLOGY_EXCHANGE, got ") + std::string(to_string(f.header.type))};
    if (!f.payload.empty() && f.payload[0] > max_topology_entries)
      return {status::invalid, wire_error::topology_too_long,
              "TOPOLOGY_EXCHANGE has " + std::to_string(f.payload[0]) + " entries, at most " +
                  std::to_string(max_topology_entries)};
    if (!decode_topology(f.payload, setup_.topology, why)) return {status::invalid, wire_error::protocol_error, why};
    done_ = true;
    return {status::done, wire_error::ok, {}};
  }
}

bool is_master(const nonce& self, const nonce& peer) {
  return std::lexicographical_compare(self.begin(), self.end(), peer.begin(), peer.end());
}

std::string tunnel_choice_key(const topology& view, const nonce& self, const nonce& peer) {
  std::string forward, backward;
  for (auto& e : view) forward += e.name + "\n";
  for (auto it = view.rbegin(); it != view.rend(); ++it) backward += it->name + "\n";
  std::string mine(self.begin(), self.end());
  std::string theirs(peer.begin(), peer.end());
  if (theirs < mine) std::swap(mine, theirs);
  return std::min(forward, backward) + mine + theirs;
}

topology path_view(const topology_entry& self, const topology& received) {
  topology view{self};
  view.insert(view.end(), received.rbegin(), received.rend());
  return view;
}

topology readable_path(const topology& view) {
  if (view.size() >= 2 && view.front().kind == hop_kind::server_end && view.back().kind == hop_kind::client_end)
    return topology(view.rbegin(), view.rend());
  return view;
}

std::string check_peer_view(const topology& our_view, const topology& peer_view) {
  if (std::equal(our_view.begin(), our_view.end(), peer_view.rbegin(), peer_view.rend())) return {};
  return "the peer saw the path \"" + format_path(peer_view) + "\" but we saw \"" + format_path(our_view) +
         "\": a middle proxy altered the topology";
}

}  // namespace lstp
