#include <catch2/catch.hpp>

#include "lstp/frame.hpp"
#include "lstp/messages.hpp"
#include "lstp/setup.hpp"

using namespace lstp;

namespace {
std::vector<bytes> decode_all(frame_decoder& d, std::vector<frame_type>* types = nullptr) {
  std::vector<bytes> payloads;
  for (;;) {
    auto r = d.next();
    if (r.state != frame_decoder::status::done) break;
    payloads.emplace_back(r.frame.payload.begin(), r.frame.payload.end());
    if (types) types->push_back(r.frame.header.type);
  }
  return payloads;
}
}  // namespace

TEST_CASE("a frame decodes the same whole, byte by byte and split anywhere", "[lstp][frame]") {
  bytes stream;
  write_frame(stream, frame_type::service_data, 7, bytes{1, 2, 3, 4, 5}, flag_fin);
  encode_empty(stream, frame_type::service_data_pause, 9);
  encode_error_info(stream, frame_type::error, 0, {wire_error::bad_channel, "why"});

  for (std::size_t split = 0; split <= stream.size(); ++split) {
    frame_decoder d;
    d.feed(byte_view(stream).first(split));
    std::vector<frame_type> types;
    auto got = decode_all(d, &types);
    d.feed(byte_view(stream).subspan(split));
    auto rest = decode_all(d, &types);
    got.insert(got.end(), rest.begin(), rest.end());
    REQUIRE(got.size() == 3);
    CHECK(got[0] == bytes{1, 2, 3, 4, 5});
    CHECK(got[1].empty());
    CHECK(types == std::vector<frame_type>{frame_type::service_data, frame_type::service_data_pause, frame_type::error});
  }
  frame_decoder one;
  std::size_t frames = 0;
  for (auto b : stream) {
    one.feed(bytes{b});
    frames += decode_all(one).size();
  }
  CHECK(frames == 3);
}

TEST_CASE("the header carries type, flags, channel and length", "[lstp][frame]") {
  bytes out;
  write_header(out, {frame_type::service_data, flag_fin, 0x01020304, 0x00000A0B});
  CHECK(out == bytes{0x20, 0x01, 0, 0, 1, 2, 3, 4, 0, 0, 0x0A, 0x0B});
}

TEST_CASE("the decoder refuses bad headers before buffering payload", "[lstp][frame]") {
  SECTION("unknown type") {
    frame_decoder d;
    d.feed(bytes{0x7F, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0});
    auto r = d.next();
    CHECK(r.state == frame_decoder::status::invalid);
    CHECK(r.error == wire_error::unknown_type);
    // Stays failed: a broken stream is never resynchronised.
    CHECK(d.next().state == frame_decoder::status::invalid);
  }
  SECTION("oversized") {
    frame_decoder d;
    bytes h;
    write_header(h, {frame_type::service_data, 0, 1, static_cast<std::uint32_t>(max_payload + 1)});
    d.feed(h);
    auto r = d.next();
    CHECK(r.state == frame_decoder::status::invalid);
    CHECK(r.error == wire_error::frame_too_large);
    CHECK(d.buffered() == header_size);
  }
  SECTION("the setup limit is smaller") {
    frame_decoder d(max_setup_payload);
    bytes h;
    write_header(h, {frame_type::common_unique_info, 0, 0, static_cast<std::uint32_t>(max_setup_payload + 1)});
    d.feed(h);
    CHECK(d.next().error == wire_error::frame_too_large);
  }
  SECTION("reserved bits") {
    frame_decoder d;
    d.feed(bytes{0x20, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0});
    CHECK(d.next().error == wire_error::protocol_error);
  }
  SECTION("truncated header waits") {
    frame_decoder d;
    d.feed(bytes{0x20, 0, 0});
    CHECK(d.next().state == frame_decoder::status::need_more);
  }
}

TEST_CASE("messages round-trip and refuse malformed payloads", "[lstp][messages]") {
  std::string why;
  SECTION("COMMON_UNIQUE_INFO") {
    common_unique_info m;
    m.pairing.fill(7);
    m.role = end_role::server;
    m.name = "a-gw";
    m.software = "lstp/test";
    m.nonce.fill(3);
    m.features = 5;
    bytes out;
    encode_common_unique_info(out, m);
    frame_decoder d;
    d.feed(out);
    auto r = d.next();
    REQUIRE(r.state == frame_decoder::status::done);
    common_unique_info back;
    REQUIRE(decode_common_unique_info(r.frame.payload, back, why));
    CHECK(back == m);
    bytes payload(r.frame.payload.begin(), r.frame.payload.end());
    for (std::size_t n = 0; n < payload.size(); ++n)
      CHECK_FALSE(decode_common_unique_info(byte_view(payload).first(n), back, why));
    payload.push_back(0);
    CHECK_FALSE(decode_common_unique_info(payload, back, why));
    CHECK(why == "trailing bytes");
    payload.pop_back();
    payload[0] = 'X';
    CHECK_FALSE(decode_common_unique_info(payload, back, why));
  }
  SECTION("TOPOLOGY_EXCHANGE") {
    topology t{{hop_kind::client_end, "b", ""}, {hop_kind::middle, "m1", "10.0.0.1:443"}};
    bytes out;
    encode_topology(out, t);
    topology back;
    REQUIRE(decode_topology(byte_view(out).subspan(header_size), back, why));
    CHECK(back == t);
    topology too_long(max_topology_entries + 1, {hop_kind::middle, "m", ""});
    out.clear();
    encode_topology(out, too_long);
    CHECK_FALSE(decode_topology(byte_view(out).subspan(header_size), back, why));
    CHECK_FALSE(decode_topology(bytes{0}, back, why));
    CHECK_FALSE(decode_topology(bytes{1, 9, 0, 0}, back, why));  // unknown hop kind
  }
  SECTION("CONNECTION_REQUEST with each address kind") {
    for (auto kind : {address::kind::ipv4, address::kind::ipv6, address::kind::domain}) {
      connection_request req;
      req.destination.type = kind;
      req.destination.port = 443;
      if (kind == address::kind::domain) req.destination.host = "intranet.example";
      else req.destination.ip[0] = 10;
      bytes out;
      encode_connection_request(out, 5, req);
      connection_request back;
      REQUIRE(decode_connection_request(byte_view(out).subspan(header_size), back, why));
      CHECK(back.destination == req.destination);
    }
    connection_request bad;
    CHECK_FALSE(decode_connection_request(bytes{1, 3, 0, 0, 80}, bad, why));  // empty domain
    CHECK_FALSE(decode_connection_request(bytes{1, 2, 0, 80}, bad, why));     // bad atype
  }
  SECTION("addresses print for people") {
    address a;
    a.ip = {127, 0, 0, 1};
    a.port = 80;
    CHECK(a.to_string() == "127.0.0.1:80");
    a.type = address::kind::ipv6;
    a.ip = {};
    a.ip[15] = 1;
    CHECK(a.to_string() == "[0:0:0:0:0:0:0:1]:80");
  }
}

TEST_CASE("wire errors map to SOCKS replies", "[lstp][error]") {
  CHECK(to_socks_reply(wire_error::not_allowed) == 2);
  CHECK(to_socks_reply(wire_error::network_unreachable) == 3);
  CHECK(to_socks_reply(wire_error::host_unreachable) == 4);
  CHECK(to_socks_reply(wire_error::connection_refused) == 5);
  CHECK(to_socks_reply(wire_error::timeout) == 6);
  CHECK(to_socks_reply(wire_error::command_not_supported) == 7);
  CHECK(to_socks_reply(wire_error::protocol_error) == 1);
}

TEST_CASE("the setup reader names a too long topology as such", "[lstp][setup]") {
  common_unique_info info;
  bytes in;
  encode_common_unique_info(in, info);
  encode_topology(in, topology(max_topology_entries + 1, {hop_kind::middle, "m", ""}));
  setup_reader r;
  r.feed(in);
  auto res = r.next();
  CHECK(res.state == setup_reader::status::invalid);
  CHECK(res.error == wire_error::topology_too_long);
}

TEST_CASE("borrowed input gives the same frames without copying whole ones", "[lstp][frame]") {
  bytes stream;
  write_frame(stream, frame_type::service_data, 7, bytes(1000, 'a'));
  write_frame(stream, frame_type::service_data, 9, bytes(10, 'b'), flag_fin);
  encode_empty(stream, frame_type::service_data_pause, 9);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    frame_decoder d;
    std::vector<frame_type> types;
    std::vector<bytes> got;
    bool whole_frames_in_place = true;
    for (auto part : {byte_view(stream).first(split), byte_view(stream).subspan(split)}) {
      d.feed_borrowed(part);
      for (;;) {
        auto r = d.next();
        if (r.state != frame_decoder::status::done) break;
        // A frame wholly inside this part is returned from the part itself.
        const bool inside = r.frame.payload.data() >= part.data() &&
                            r.frame.payload.data() + r.frame.payload.size() <= part.data() + part.size();
        const auto at = static_cast<std::size_t>(r.frame.payload.data() - part.data());
        if (!inside && r.frame.header.length > 0 && at < part.size()) whole_frames_in_place = false;
        got.emplace_back(r.frame.payload.begin(), r.frame.payload.end());
        types.push_back(r.frame.header.type);
      }
      d.settle();  // `part` dies here: a partial frame is kept by copy
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0] == bytes(1000, 'a'));
    CHECK(got[1] == bytes(10, 'b'));
    CHECK(types.back() == frame_type::service_data_pause);
    CHECK(d.buffered() == 0);
    if (split == 0 || split == stream.size()) CHECK(whole_frames_in_place);
  }
}

TEST_CASE("borrowed input with a bad header fails like copied input", "[lstp][frame][hostile]") {
  bytes bad{0x20, 0, 0, 0, 0, 0, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF};
  frame_decoder d;
  d.feed_borrowed(bad);
  auto r = d.next();
  CHECK(r.state == frame_decoder::status::invalid);
  CHECK(r.error == wire_error::frame_too_large);
  d.settle();
  CHECK(d.next().state == frame_decoder::status::invalid);  // stays failed
}
