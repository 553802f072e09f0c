// Payloads of the LSTP messages (PROTOCOL.md 2) as plain structs, with
// encoders that append a whole frame and decoders that never throw: a decoder
// returns false when the payload is truncated, has trailing bytes or holds an
// out-of-range value, and the caller answers PROTOCOL_ERROR.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lstp/error.hpp"
#include "lstp/frame.hpp"

namespace lstp {

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::size_t max_topology_entries = 32;

using pairing_id = std::array<std::uint8_t, 32>;
using tunnel_tag = std::array<std::uint8_t, 16>;
// What a middle tells a waiting setup of another pairing id under its tunnel
// name (PAIRING_NOTICE, PROTOCOL.md 3.1): a hash, so that it gives away no
// pairing id to whoever knows the name.
using pairing_hint = std::array<std::uint8_t, 32>;
using nonce = std::array<std::uint8_t, 16>;

enum class end_role : std::uint8_t { client = 1, server = 2, both = 3 };
std::string_view to_string(end_role r);

struct common_unique_info {
  std::uint8_t version = protocol_version;
  pairing_id pairing{};
  tunnel_tag tag{};
  end_role role = end_role::client;
  std::string name;
  std::string software;
  lstp::nonce nonce{};
  std::uint32_t features = 0;
  bool operator==(const common_unique_info&) const = default;
};

enum class hop_kind : std::uint8_t { client_end = 1, server_end = 2, both_end = 3, middle = 4 };
hop_kind hop_kind_of(end_role r);

struct topology_entry {
  hop_kind kind = hop_kind::middle;
  std::string name;
  std::string address;
  bool operator==(const topology_entry&) const = default;
};
using topology = std::vector<topology_entry>;

using properties = std::vector<std::pair<std::string, std::string>>;

struct address {
  enum class kind : std::uint8_t { ipv4 = 1, domain = 3, ipv6 = 4 };
  kind type = kind::ipv4;
  std::array<std::uint8_t, 16> ip{};
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const address&) const = default;
};

// CONNECTION_REQUEST commands (PROTOCOL.md 5.2, 5.3): SOCKS's three.
enum class connect_command : std::uint8_t { tcp_connect = 1, bind = 2, udp_associate = 3 };

struct connection_request {
  std::uint8_t command = static_cast<std::uint8_t>(connect_command::tcp_connect);
  address destination;
};

// ACCESS (PROTOCOL.md 3.6): which credential, when (Unix seconds, so a middle
// bounds replays to a window) and a MAC made with the credential's token
// (lstp/access.hpp).
inline constexpr std::size_t access_mac_size = 32;
using access_mac = std::array<std::uint8_t, access_mac_size>;
struct access_proof {
  std::string name;
  std::uint64_t time = 0;
  access_mac mac{};
  bool operator==(const access_proof&) const = default;
};

// An error code and a human reason: NACKs, FREE, ERROR.
struct error_info {
  wire_error code = wire_error::ok;
  std::string reason;
};

// Encoders append one whole frame to `out`.
void encode_common_unique_info(bytes& out, const common_unique_info& m);
void encode_topology(bytes& out, const topology& t);
void encode_properties(bytes& out, const properties& p);
void encode_connection_request(bytes& out, std::uint32_t channel, const connection_request& m);
void encode_connection_ack(bytes& out, std::uint32_t channel, const address& bound);
void encode_connection_peer(bytes& out, std::uint32_t channel, const address& peer);
// A UDP channel's SERVICE_DATA payload (PROTOCOL.md 5.3): the datagram's
// far-side address (destination one way, source the other) and its bytes.
// Appends the payload only, not a frame.
void encode_datagram(bytes& out, const address& far, byte_view data);
// The largest encoded address (2.3): type, length, a 255-byte name, port.
inline constexpr std::size_t max_address_size = 1 + 1 + 255 + 2;
// How many bytes `a` takes encoded (2.3).
std::size_t encoded_size(const address& a);
void encode_error_info(bytes& out, frame_type t, std::uint32_t channel, const error_info& e);
void encode_access(bytes& out, const access_proof& p);
void encode_empty(bytes& out, frame_type t, std::uint32_t channel);
void encode_ping(bytes& out, frame_type t, const std::array<std::uint8_t, 8>& token);
void encode_shutdown(bytes& out, std::string_view reason);

// Decoders read one payload. `why` receives a short description on failure.
bool decode_common_unique_info(byte_view payload, common_unique_info& m, std::string& why);
bool decode_topology(byte_view payload, topology& t, std::string& why);
bool decode_properties(byte_view payload, properties& p, std::string& why);
bool decode_connection_request(byte_view payload, connection_request& m, std::string& why);
bool decode_address_payload(byte_view payload, address& a, std::string& why);
bool decode_error_info(byte_view payload, error_info& e, std::string& why);
bool decode_access(byte_view payload, access_proof& p, std::string& why);
// `data` points into `payload`.
bool decode_datagram(byte_view payload, address& far, byte_view& data, std::string& why);

// "client-end \"b-laptop\" -> middle \"m1\" (198.18.0.11:443) -> server-end \"a-gw\""
std::string format_path(const topology& path);

}  // namespace lstp
