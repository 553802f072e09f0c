// libFuzzer target: the LSTP frame decoder, every message decoder and the
// setup reader, fed arbitrary bytes. Must never crash, hang or leak.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "lstp/frame.hpp"
#include "lstp/messages.hpp"
#include "lstp/record_layer.hpp"
#include "lstp/setup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lstp::byte_view in(data, size);
  // Frames, split in two at a point chosen by the input itself.
  lstp::frame_decoder decoder;
  std::size_t split = size ? data[0] % (size + 1) : 0;
  for (auto part : {in.first(split), in.subspan(split)}) {
    decoder.feed(part);
    for (;;) {
      auto r = decoder.next();
      if (r.state != lstp::frame_decoder::status::done) break;
      std::string why;
      auto p = r.frame.payload;
      lstp::common_unique_info cui;
      lstp::topology topo;
      lstp::properties props;
      lstp::connection_request req;
      lstp::address addr;
      lstp::error_info err;
      lstp::decode_common_unique_info(p, cui, why);
      lstp::decode_topology(p, topo, why);
      lstp::decode_properties(p, props, why);
      if (lstp::decode_connection_request(p, req, why)) (void)req.destination.to_string();
      lstp::decode_address_payload(p, addr, why);
      lstp::decode_error_info(p, err, why);
      // A UDP channel's datagram: what decodes re-encodes to the same bytes.
      lstp::byte_view data;
      if (lstp::decode_datagram(p, addr, data, why)) {
        if (data.data() < p.data() || data.data() + data.size() != p.data() + p.size()) __builtin_trap();
        lstp::bytes again;
        lstp::encode_datagram(again, addr, data);
        if (again.size() != p.size() || !std::equal(again.begin(), again.end(), p.begin())) __builtin_trap();
      }
    }
  }
  // The record layer's opener on arbitrary bytes: refuses or waits, never
  // delivers (nothing here carries a valid tag).
  {
    lstp::record_keys k;
    lstp::record_opener opener(k);
    std::size_t delivered = 0;
    (void)opener.receive(in, [&](lstp::byte_view p) {
      delivered += p.size();
      return true;
    });
    if (delivered != 0) __builtin_trap();
  }
  // The setup reader, as a middle proxy runs it on a new hop.
  lstp::setup_reader setup;
  setup.feed(in);
  if (setup.next().state == lstp::setup_reader::status::done) {
    auto relayed = lstp::relay_setup(setup.setup(), {lstp::hop_kind::middle, "fuzz", "1.2.3.4:5"});
    (void)lstp::format_path(setup.setup().topology);
    (void)relayed;
  }
  return 0;
}
