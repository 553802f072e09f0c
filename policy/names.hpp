// Names compare without regard to ASCII case (DNS host names, tunnel names,
// no_proxy entries): one helper for every place that compares them.
#pragma once

#include <string>
#include <string_view>

namespace policy {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// A host name as rules see it: lower case, without the root's trailing dot.
inline std::string normal_host(std::string_view s) {
  auto out = ascii_lower(s);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

}  // namespace policy
