// The version both programs report (--version, the admin API, /metrics):
// the project's version from CMakeLists.txt.
#pragma once

#include <string_view>

namespace runtime {
inline constexpr std::string_view version = LSTP_VERSION;
}  // namespace runtime
