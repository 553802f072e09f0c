// The replay buffer keeps unacknowledged frames in chunks: what it gives
// back is every kept byte, in order, across chunk boundaries, whatever
// was dropped before.
#include <catch2/catch.hpp>

#include "lstp/replay_buffer.hpp"

namespace {

lstp::bytes everything(const lstp::replay_buffer& r) {
  lstp::bytes all;
  std::size_t spans = 0;
  r.for_each_span([&](lstp::byte_view s) {
    REQUIRE(!s.empty());
    ++spans;
    all.insert(all.end(), s.begin(), s.end());
  });
  REQUIRE(all.size() == r.bytes_kept());
  return all;
}

// Frame k: a 12-byte head of k's value, then `size` bytes counting from k.
lstp::bytes frame_bytes(std::uint32_t k, std::size_t size) {
  lstp::bytes b(12 + size);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i < 12 ? k : k + i);
  return b;
}

}  // namespace

TEST_CASE("replay buffer: frames kept in order across chunks, dropped oldest first", "[replay]") {
  using lstp::replay_buffer;
  replay_buffer r;
  CHECK(r.bytes_kept() == 0);
  CHECK(everything(r).empty());
  // Frames of sizes that do not divide the chunk size: some straddle two chunks.
  std::vector<lstp::bytes> sent;
  const std::size_t sizes[] = {65536, 1, 40000, 65536, 0, 12345, 65536, 65536, 65536, 7};
  std::uint32_t k = 0;
  std::size_t first = 0;  // index of the oldest frame still kept
  for (int round = 0; round < 40; ++round) {
    for (auto size : sizes) {
      auto f = frame_bytes(k++, size);
      r.push(lstp::byte_view(f).first(12), lstp::byte_view(f).subspan(12));
      sent.push_back(std::move(f));
    }
    // Drop a varying number; what is left is exactly the frames not dropped.
    const auto n = static_cast<std::uint64_t>(round % 3 == 2 ? r.frames() : 1 + round % 7);
    r.drop(n);
    first = std::min(sent.size(), first + static_cast<std::size_t>(n));
    lstp::bytes expect;
    for (std::size_t i = first; i < sent.size(); ++i) expect.insert(expect.end(), sent[i].begin(), sent[i].end());
    REQUIRE(r.frames() == sent.size() - first);
    REQUIRE(everything(r) == expect);
  }
  r.drop(r.frames() + 5);  // more than kept: all
  CHECK(r.bytes_kept() == 0);
  CHECK(r.frames() == 0);
  CHECK(everything(r).empty());
}

TEST_CASE("replay buffer: a frame bigger than a chunk is kept whole", "[replay]") {
  lstp::replay_buffer r;
  auto big = frame_bytes(9, 3 * lstp::replay_buffer::chunk_size + 5);
  r.push(lstp::byte_view(big).first(12), lstp::byte_view(big).subspan(12));
  CHECK(everything(r) == big);
  r.drop(1);
  CHECK(r.bytes_kept() == 0);
  auto small = frame_bytes(1, 3);
  r.push(small);
  CHECK(everything(r) == small);
}
