// The setup exchanged in the clear on every hop (PROTOCOL.md 3.1), the
// election (3.2) and the check done inside TLS (3.4). Sans-I/O.
#pragma once

#include <optional>
#include <string>

#include "lstp/frame.hpp"
#include "lstp/messages.hpp"

namespace lstp {

// One side's setup: its COMMON_UNIQUE_INFO (parsed, and as raw frame bytes so
// a middle can forward it untouched and an end can compare it byte for byte)
// and its TOPOLOGY_EXCHANGE.
struct setup_message {
  common_unique_info info;
  bytes info_frame;
  lstp::topology topology;
};

// Encodes a setup as the two frames that go on the wire.
bytes encode_setup(const setup_message& s);
setup_message make_setup(const common_unique_info& info, const topology_entry& self);

// The setup a middle passes on: the same COMMON_UNIQUE_INFO (its frame
// untouched) and the topology with `self` appended.
setup_message appended(const setup_message& s, const topology_entry& self);
// ...as the frames that go on the wire.
bytes relay_setup(const setup_message& s, const topology_entry& self);

// Reads one setup (COMMON_UNIQUE_INFO then TOPOLOGY_EXCHANGE) from a hop.
// An ERROR frame in their place is reported as `peer_error` (a middle
// refusing the setup). Frames are limited to max_setup_payload.
class setup_reader {
 public:
  // A middle reading a hop from an end or from the middle before it accepts
  // one ACCESS frame first (3.6); an end, and a middle reading the reply of
  // its next hop, never expect one.
  enum class access_frame { refused, accepted };
  // An end, and a middle reading its next hop's reply, take PAIRING_NOTICE
  // frames before the setup (3.1); a middle reading an end never does.
  enum class notices { refused, accepted };
  explicit setup_reader(access_frame a = access_frame::refused, notices n = notices::accepted)
      : access_allowed_(a == access_frame::accepted), notices_allowed_(n == notices::accepted) {}

  // notice: a PAIRING_NOTICE came (its hint in notice_hint()); call next()
  // again for what follows.
  enum class status { need_more, done, invalid, peer_error, notice };
  struct result {
    status state = status::need_more;
    wire_error error = wire_error::ok;
    std::string reason;
  };

  void feed(byte_view in) { decoder_.feed(in); }
  result next();
  // Once done: the setup that was read, and the bytes that followed it.
  setup_message& setup() { return setup_; }
  byte_view unread() const { return decoder_.unread(); }
  // The ACCESS frame that came before the setup, if any.
  const std::optional<access_proof>& access() const { return access_; }
  const pairing_hint& notice_hint() const { return hint_; }

 private:
  frame_decoder decoder_{max_setup_payload};
  setup_message setup_;
  std::optional<access_proof> access_;
  bool access_allowed_ = false;
  bool notices_allowed_ = true;
  pairing_hint hint_{};
  bool have_info_ = false;
  bool done_ = false;
};

// True if this end is the master (TLS client): its nonce is the smaller one.
// Equal nonces have no master; the caller must refuse them first.
bool is_master(const nonce& self, const nonce& peer);

// When two tunnels between the same two ends come up at once (through two
// middles), both ends keep the one whose key is smaller (PROTOCOL.md 3.7).
// The key is the same at both ends of one tunnel: the names along `view`
// (this end's view, 3.1) read in whichever direction sorts first, then the
// two nonces in a fixed order (middles may share a name).
std::string tunnel_choice_key(const topology& view, const nonce& self, const nonce& peer);

// This end's view of the tunnel: itself, then the peer's list reversed
// (nearest middle first, the peer last).
topology path_view(const topology_entry& self, const topology& received);

// The view in the order an operator reads it: from the client end to the
// server end when the roles say which is which, else from this end.
topology readable_path(const topology& view);

// Part of the check done inside TLS (PROTOCOL.md 3.4): the peer's view must
// be our view reversed. Returns an empty string when it is, else what differs.
std::string check_peer_view(const topology& our_view, const topology& peer_view);

}  // namespace lstp
