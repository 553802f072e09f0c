#include "uplink/way_plan.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

namespace uplink {

int way_cost(const uplink::way& w) {
  int cost = 0;
  switch (w.how) {
    case uplink::carrier::tcp: cost = 0; break;
    case uplink::carrier::tls: cost = 1; break;
    case uplink::carrier::ws: cost = 20; break;
    case uplink::carrier::wss: cost = 21; break;
    // Long-polling costs a round trip per chunk: after every way that
    // gives a byte stream, through a proxy or not.
    case uplink::carrier::http: cost = 40; break;
  }
  if (w.via != uplink::way::route::direct) cost += 10;
  return cost;
}

std::vector<uplink::way> automatic_ways(const std::optional<uplink::proxy>& proxy, bool proxy_from_environment) {
  std::vector<uplink::way> out;
  for (auto how : {uplink::carrier::tcp, uplink::carrier::tls, uplink::carrier::ws, uplink::carrier::wss,
                   uplink::carrier::http}) {
    out.push_back(uplink::way{how, uplink::way::route::direct, std::nullopt});
    if (proxy) out.push_back(uplink::way{how, uplink::way::route::proxy, proxy});
    if (proxy_from_environment) out.push_back(uplink::way{how, uplink::way::route::environment, std::nullopt});
  }
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return way_cost(a) < way_cost(b); });
  return out;
}

std::vector<candidate> plan_candidates(const std::vector<uplink::endpoint>& middles,
                                       const std::vector<uplink::way>& explicit_ways,
                                       const std::optional<uplink::proxy>& proxy, bool proxy_from_environment,
                                       const way_memory& memory, const environment_resolver& resolve) {
  const auto ways = explicit_ways.empty() ? automatic_ways(proxy, proxy_from_environment) : explicit_ways;
  std::vector<candidate> out;
  for (const auto& m : middles) {
    std::vector<candidate> mine;
    for (std::size_t i = 0; i < ways.size(); ++i) {
      const int cost = explicit_ways.empty() ? way_cost(ways[i]) : static_cast<int>(i);
      const auto resolved = ways[i].via == uplink::way::route::environment ? resolve(m, ways[i])
                                                                           : std::vector<uplink::way>{ways[i]};
      for (const auto& w : resolved) {
        if (std::any_of(mine.begin(), mine.end(), [&](auto& c) { return c.way == w; })) continue;
        mine.push_back(candidate{m, w, cost});
      }
    }
    if (auto w = memory.winner(m)) {
      auto it = std::find_if(mine.begin(), mine.end(), [&](auto& c) { return c.way.to_string() == *w; });
      if (it != mine.end()) std::rotate(mine.begin(), it, it + 1);
    }
    out.insert(out.end(), mine.begin(), mine.end());
  }
  return out;
}

way_memory way_memory::parse(std::string_view text) {
  way_memory m;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string middle(line.substr(0, space));
    const std::string way(line.substr(space + 1));
    try {
      uplink::parse_endpoint(middle);
      uplink::parse_way(way);
    } catch (const uplink::bad_way&) {
      continue;
    }
    m.winners_[middle] = way;
  }
  return m;
}

std::string way_memory::format() const {
  std::string out = "# lstp: the way out that last worked, per middle proxy. Safe to delete.\n";
  for (auto& [middle, way] : winners_) out += middle + " " + way + "\n";
  return out;
}

std::optional<std::string> way_memory::winner(const uplink::endpoint& middle) const {
  auto it = winners_.find(middle.to_string());
  if (it == winners_.end()) return std::nullopt;
  return it->second;
}

bool way_memory::remember(const uplink::endpoint& middle, const uplink::way& way) {
  auto& slot = winners_[middle.to_string()];
  auto text = way.to_string();
  if (slot == text) return false;
  slot = std::move(text);
  return true;
}

way_memory way_memory::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    throw std::runtime_error("cannot read state file " + path);
  }
  std::string text;
  char buf[4096];
  // A state file is a few lines; read at most 1 MiB whatever is there.
  while (text.size() < (1u << 20) && in.read(buf, sizeof buf)) text.append(buf, sizeof buf);
  text.append(buf, static_cast<std::size_t>(in.gcount()));
  return parse(text);
}

void way_memory::save(const std::string& path) const {
  std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  const auto tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << format();
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp, ec);
      throw std::runtime_error("cannot write state file " + tmp);
    }
  }
  std::filesystem::rename(tmp, p, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot replace state file " + path + ": " + ec.message());
  }
}

}  // namespace uplink
