#include "lstp/messages.hpp"

#include <cstdio>

namespace lstp {

namespace {

constexpr std::string_view magic = "LSTP";

void put_address(wire_writer& w, const address& a) {
  w.u8(static_cast<std::uint8_t>(a.type));
  switch (a.type) {
    case address::kind::ipv4: w.raw(byte_view{a.ip.data(), 4}); break;
    case address::kind::ipv6: w.raw(byte_view{a.ip.data(), 16}); break;
    case address::kind::domain: w.str8(a.host); break;
  }
  w.u16(a.port);
}

bool get_address(wire_reader& r, address& a, std::string& why) {
  std::uint8_t t = 0;
  if (!r.u8(t)) return why = "address truncated", false;
  a = {};
  switch (t) {
    case 1: {
      std::array<std::uint8_t, 4> v{};
      if (!r.fixed(v)) return why = "IPv4 address truncated", false;
      std::copy(v.begin(), v.end(), a.ip.begin());
      a.type = address::kind::ipv4;
      break;
    }
    case 4:
      if (!r.fixed(a.ip)) return why = "IPv6 address truncated", false;
      a.type = address::kind::ipv6;
      break;
    case 3:
      if (!r.str8(a.host)) return why = "domain truncated", false;
      if (a.host.empty()) return why = "empty domain", false;
      if (a.host.find('\0') != std::string::npos) return why = "domain holds a NUL byte", false;
      a.type = address::kind::domain;
      break;
    default: return why = "unknown address type " + std::to_string(t), false;
  }
  if (!r.u16(a.port)) return why = "port truncated", false;
  return true;
}

template <class F>
void with_payload(bytes& out, frame_type t, std::uint32_t channel, F&& fill, std::uint8_t flags = 0) {
  // Reserve the header, write the payload in place, then patch the length:
  // one buffer, no temporary.
  auto start = out.size();
  write_header(out, {t, flags, channel, 0});
  wire_writer w(out);
  fill(w);
  auto len = static_cast<std::uint32_t>(out.size() - start - header_size);
  for (int i = 0; i < 4; ++i) out[start + 8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
}

bool finish(wire_reader& r, std::string& why) {
  if (!r.done()) return why = "trailing bytes", false;
  return true;
}

}  // namespace

std::string_view to_string(end_role r) {
  switch (r) {
    case end_role::client: return "client";
    case end_role::server: return "server";
    case end_role::both: return "both";
  }
  return "unknown";
}

hop_kind hop_kind_of(end_role r) {
  switch (r) {
    case end_role::client: return hop_kind::client_end;
    case end_role::server: return hop_kind::server_end;
    case end_role::both: return hop_kind::both_end;
  }
  return hop_kind::both_end;
}

std::string address::to_string() const {
  char buf[64];
  switch (type) {
    case kind::ipv4:
      std::snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], port);
      return buf;
    case kind::ipv6: {
      std::string s = "[";
      for (int i = 0; i < 16; i += 2) {
        std::snprintf(buf, sizeof buf, "%x", ip[static_cast<std::size_t>(i)] << 8 | ip[static_cast<std::size_t>(i) + 1]);
        s += buf;
        if (i < 14) s += ':';
      }
      return s + "]:" + std::to_string(port);
    }
    case kind::domain: return host + ":" + std::to_string(port);
  }
  return "?";
}

void encode_common_unique_info(bytes& out, const common_unique_info& m) {
  with_payload(out, frame_type::common_unique_info, 0, [&](wire_writer& w) {
    w.raw(magic);
    w.u8(m.version);
    w.raw(byte_view{m.pairing});
    w.raw(byte_view{m.tag});
    w.u8(static_cast<std::uint8_t>(m.role));
    w.str8(m.name);
    w.str8(m.software);
    w.raw(byte_view{m.nonce});
    w.u32(m.features);
  });
}

bool decode_common_unique_info(byte_view payload, common_unique_info& m, std::string& why) {
  wire_reader r(payload);
  std::array<std::uint8_t, 4> mg{};
  if (!r.fixed(mg)) return why = "COMMON_UNIQUE_INFO truncated", false;
  if (std::string_view(reinterpret_cast<const char*>(mg.data()), 4) != magic)
    return why = "COMMON_UNIQUE_INFO does not start with LSTP", false;
  std::uint8_t role = 0;
  if (!r.u8(m.version) || !r.fixed(m.pairing) || !r.fixed(m.tag) || !r.u8(role) || !r.str8(m.name) || !r.str8(m.software) ||
      !r.fixed(m.nonce) || !r.u32(m.features))
    return why = "COMMON_UNIQUE_INFO truncated", false;
  if (role < 1 || role > 3) return why = "unknown role " + std::to_string(role), false;
  m.role = static_cast<end_role>(role);
  return finish(r, why);
}

void encode_topology(bytes& out, const topology& t) {
  with_payload(out, frame_type::topology_exchange, 0, [&](wire_writer& w) {
    w.u8(static_cast<std::uint8_t>(t.size()));
    for (auto& e : t) {
      w.u8(static_cast<std::uint8_t>(e.kind));
      w.str8(e.name);
      w.str8(e.address);
    }
  });
}

bool decode_topology(byte_view payload, topology& t, std::string& why) {
  wire_reader r(payload);
  std::uint8_t n = 0;
  if (!r.u8(n)) return why = "TOPOLOGY_EXCHANGE truncated", false;
  if (n == 0) return why = "TOPOLOGY_EXCHANGE is empty", false;
  if (n > max_topology_entries) return why = "TOPOLOGY_EXCHANGE has " + std::to_string(n) + " entries", false;
  t.clear();
  for (int i = 0; i < n; ++i) {
    topology_entry e;
    std::uint8_t kind = 0;
    if (!r.u8(kind) || !r.str8(e.name) || !r.str8(e.address)) return why = "TOPOLOGY_EXCHANGE truncated", false;
    if (kind < 1 || kind > 4) return why = "unknown hop kind " + std::to_string(kind), false;
    e.kind = static_cast<hop_kind>(kind);
    t.push_back(std::move(e));
  }
  return finish(r, why);
}

void encode_properties(bytes& out, const properties& p) {
  with_payload(out, frame_type::property_exchange, 0, [&](wire_writer& w) {
    w.u8(static_cast<std::uint8_t>(p.size()));
    for (auto& [k, v] : p) {
      w.str8(k);
      w.str16(v);
    }
  });
}

bool decode_properties(byte_view payload, properties& p, std::string& why) {
  wire_reader r(payload);
  std::uint8_t n = 0;
  if (!r.u8(n)) return why = "PROPERTY_EXCHANGE truncated", false;
  p.clear();
  for (int i = 0; i < n; ++i) {
    std::string k, v;
    if (!r.str8(k) || !r.str16(v)) return why = "PROPERTY_EXCHANGE truncated", false;
    p.emplace_back(std::move(k), std::move(v));
  }
  return finish(r, why);
}

void encode_connection_request(bytes& out, std::uint32_t channel, const connection_request& m) {
  with_payload(out, frame_type::connection_request, channel, [&](wire_writer& w) {
    w.u8(m.command);
    put_address(w, m.destination);
  });
}

bool decode_connection_request(byte_view payload, connection_request& m, std::string& why) {
  wire_reader r(payload);
  if (!r.u8(m.command)) return why = "CONNECTION_REQUEST truncated", false;
  if (!get_address(r, m.destination, why)) return false;
  return finish(r, why);
}

void encode_connection_ack(bytes& out, std::uint32_t channel, const address& bound) {
  with_payload(out, frame_type::connection_ack, channel, [&](wire_writer& w) { put_address(w, bound); });
}

void encode_connection_peer(bytes& out, std::uint32_t channel, const address& peer) {
  with_payload(out, frame_type::connection_peer, channel, [&](wire_writer& w) { put_address(w, peer); });
}

void encode_datagram(bytes& out, const address& far, byte_view data) {
  wire_writer w(out);
  put_address(w, far);
  out.insert(out.end(), data.begin(), data.end());
}

std::size_t encoded_size(const address& a) {
  switch (a.type) {
    case address::kind::ipv4: return 1 + 4 + 2;
    case address::kind::ipv6: return 1 + 16 + 2;
    case address::kind::domain: return 1 + 1 + std::min<std::size_t>(a.host.size(), 255) + 2;
  }
  return max_address_size;
}

bool decode_datagram(byte_view payload, address& far, byte_view& data, std::string& why) {
  wire_reader r(payload);
  if (!get_address(r, far, why)) return false;
  data = payload.subspan(payload.size() - r.left());
  return true;
}

bool decode_address_payload(byte_view payload, address& a, std::string& why) {
  wire_reader r(payload);
  if (!get_address(r, a, why)) return false;
  return finish(r, why);
}

void encode_error_info(bytes& out, frame_type t, std::uint32_t channel, const error_info& e) {
  with_payload(out, t, channel, [&](wire_writer& w) {
    w.u16(static_cast<std::uint16_t>(e.code));
    w.str16(e.reason);
  });
}

bool decode_error_info(byte_view payload, error_info& e, std::string& why) {
  wire_reader r(payload);
  std::uint16_t code = 0;
  if (!r.u16(code) || !r.str16(e.reason)) return why = "error payload truncated", false;
  e.code = wire_error_from(code);
  return finish(r, why);
}

void encode_empty(bytes& out, frame_type t, std::uint32_t channel) { write_header(out, {t, 0, channel, 0}); }

void encode_ping(bytes& out, frame_type t, const std::array<std::uint8_t, 8>& token) {
  write_frame(out, t, 0, byte_view{token});
}

void encode_shutdown(bytes& out, std::string_view reason) {
  with_payload(out, frame_type::shutdown, 0, [&](wire_writer& w) { w.str16(reason); });
}

std::string format_path(const topology& path) {
  std::string s;
  for (auto& e : path) {
    if (!s.empty()) s += " -> ";
    switch (e.kind) {
      case hop_kind::client_end: s += "client-end"; break;
      case hop_kind::server_end: s += "server-end"; break;
      case hop_kind::both_end: s += "end"; break;
      case hop_kind::middle: s += "middle"; break;
    }
    s += " \"" + e.name + "\"";
    if (!e.address.empty()) s += " (" + e.address + ")";
  }
  return s;
}

void encode_access(bytes& out, const access_proof& p) {
  with_payload(out, frame_type::access, 0, [&](wire_writer& w) {
    w.str8(p.name);
    w.u32(static_cast<std::uint32_t>(p.time >> 32));
    w.u32(static_cast<std::uint32_t>(p.time));
    w.raw(byte_view{p.mac});
  });
}

bool decode_access(byte_view payload, access_proof& p, std::string& why) {
  wire_reader r(payload);
  std::uint32_t hi = 0, lo = 0;
  if (!r.str8(p.name) || !r.u32(hi) || !r.u32(lo) || !r.fixed(p.mac)) return why = "ACCESS truncated", false;
  if (p.name.empty()) return why = "ACCESS names no credential", false;
  if (!finish(r, why)) return false;
  p.time = static_cast<std::uint64_t>(hi) << 32 | lo;
  return true;
}

}  // namespace lstp
