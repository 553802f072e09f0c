// What a middle proxy checks in a setup before it keeps any state for it
// (PROTOCOL.md 3.1): the topology lists one end, then middles; it has not
// passed this middle already (a loop); it is not too long to cross here.
// Sans-I/O, so it is unit-tested and fuzzed on its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lstp/error.hpp"
#include "lstp/setup.hpp"

namespace middleproxy {

struct setup_refusal {
  lstp::wire_error code;
  std::string reason;
};

// nullopt: the setup may be admitted here.
std::optional<setup_refusal> check_setup(const lstp::setup_message& s, std::string_view middle_name);

}  // namespace middleproxy
