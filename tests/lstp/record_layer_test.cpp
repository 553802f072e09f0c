#include "lstp/record_layer.hpp"

#include <catch2/catch.hpp>

#include "tunnel_harness.hpp"

using namespace lstp;

namespace {
record_keys keys(std::uint8_t b) {
  record_keys k;
  k.key.fill(b);
  k.iv.fill(static_cast<std::uint8_t>(b + 1));
  return k;
}

bytes pattern(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + 7);
  return b;
}
}  // namespace

TEST_CASE("records round-trip whatever their size and however the bytes arrive", "[lstp][records]") {
  record_sealer seal(keys(1));
  record_opener open(keys(1));
  bytes wire;
  const std::size_t sizes[] = {0, 1, 15, 16, 17, 1000, 65536 + 12, max_record_plaintext};
  for (auto n : sizes) seal.seal(wire, pattern(n));
  // Byte by byte, then all at once with a fresh pair: the same records.
  bytes got;
  std::vector<std::size_t> seen;
  for (auto b : wire) {
    auto err = open.receive(byte_view(&b, 1), [&](byte_view p) {
      seen.push_back(p.size());
      got.insert(got.end(), p.begin(), p.end());
      return true;
    });
    REQUIRE_FALSE(err);
  }
  REQUIRE(seen.size() == std::size(sizes));
  bytes want;
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    CHECK(seen[i] == sizes[i]);
    auto p = pattern(sizes[i]);
    want.insert(want.end(), p.begin(), p.end());
  }
  CHECK(got == want);
  // Ciphertext is not the plaintext.
  CHECK(std::search(wire.begin(), wire.end(), want.begin() + 100, want.begin() + 132) == wire.end());
}

TEST_CASE("records read straight into the opener's space open in place", "[lstp][records]") {
  record_sealer seal(keys(1));
  bytes wire;
  for (std::size_t n : {100, 65536 + 12, 5, 70000}) {
    const auto p = pattern(n);
    // A frame sealed from a header and a payload, as the tunnel sends data.
    const auto head = std::min<std::size_t>(12, n);
    seal.seal(wire, byte_view(p).first(head), byte_view(p).subspan(head));
  }
  for (std::size_t read : {std::size_t{1}, std::size_t{4096}, std::size_t{256 * 1024}}) {
    record_opener open(keys(1));
    std::vector<std::size_t> seen;
    bool in_place = true;
    for (std::size_t pos = 0; pos < wire.size();) {
      auto room = open.space(read);
      REQUIRE(room.size() >= std::min<std::size_t>(read, 64 * 1024));
      const auto n = std::min({read, room.size(), wire.size() - pos});
      std::copy_n(wire.begin() + static_cast<std::ptrdiff_t>(pos), n, room.begin());
      pos += n;
      auto err = open.commit(n, [&](byte_view p) {
        seen.push_back(p.size());
        // The plaintext lies in the buffer the bytes were read into: its
        // record began at most one record before this read's room.
        const auto at = reinterpret_cast<std::uintptr_t>(p.data());
        const auto lo = reinterpret_cast<std::uintptr_t>(room.data()) - record_header_size - max_record_plaintext;
        const auto hi = reinterpret_cast<std::uintptr_t>(room.data() + room.size());
        if (at < lo || at >= hi) in_place = false;
        CHECK(bytes(p.begin(), p.end()) == pattern(p.size()));
        return true;
      });
      REQUIRE_FALSE(err);
    }
    CHECK(seen == std::vector<std::size_t>{100, 65536 + 12, 5, 70000});
    CHECK(in_place);
    CHECK(open.buffered() == 0);
  }
}

TEST_CASE("an opener's reader that stops gets no more records", "[lstp][records]") {
  record_sealer seal(keys(1));
  bytes wire;
  seal.seal(wire, pattern(10));
  seal.seal(wire, pattern(20));
  record_opener open(keys(1));
  int calls = 0;
  CHECK_FALSE(open.receive(wire, [&](byte_view) {
    ++calls;
    return false;  // e.g. the tunnel closed on the first record's frame
  }));
  CHECK(calls == 1);
}

TEST_CASE("a flipped bit, a replayed or a reordered record, or the wrong key are refused", "[lstp][records][hostile]") {
  const auto run = [](const bytes& wire, std::uint8_t key) {
    record_opener open(keys(key));
    std::size_t delivered = 0;
    auto err = open.receive(wire, [&](byte_view p) { delivered += p.size(); return true; });
    return std::pair{err, delivered};
  };
  record_sealer seal(keys(1));
  bytes one, two;
  seal.seal(one, pattern(100));
  seal.seal(two, pattern(200));
  for (std::size_t i = 0; i < one.size(); ++i) {
    bytes bad = one;
    bad[i] ^= 0x01;
    auto [err, delivered] = run(bad, 1);
    // A longer length waits for bytes that never come; any other change
    // fails: the length too is authenticated. Nothing is ever delivered.
    const auto length = [](const bytes& b) { return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]; };
    if (i >= record_header_size || length(bad) < length(one)) CHECK(err);
    CHECK(delivered == 0);
  }
  bytes replay = one;
  replay.insert(replay.end(), one.begin(), one.end());
  auto [err1, d1] = run(replay, 1);
  CHECK(err1);
  CHECK(d1 == 100);  // the first copy is fine; the second is refused
  auto [err2, d2] = run(two, 1);  // out of order: the first record is missing
  CHECK(err2);
  CHECK(d2 == 0);
  auto [err3, d3] = run(one, 2);
  CHECK(err3);
  CHECK(d3 == 0);
}

TEST_CASE("an oversized record length is refused before anything is buffered", "[lstp][records][hostile]") {
  record_opener open(keys(1));
  bytes header{0x7F, 0xFF, 0xFF, 0xFF};
  auto err = open.receive(header, [](byte_view) { return true; });
  REQUIRE(err);
  CHECK(err->code == wire_error::frame_too_large);
  bytes tiny{0, 0, 0, 3};
  record_opener open2(keys(1));
  CHECK(open2.receive(tiny, [](byte_view) { return true; }));
}

TEST_CASE("both ends switch to the record layer once verified, either end may decline it", "[lstp][tunnel][records]") {
  for (bool client_offers : {true, false}) {
    tunnel_limits c;
    c.record_layer = client_offers;
    lstp_test::tunnel_pair p;  // the server offers it
    if (!client_offers) {
      // Only the server offers it: rebuild the client without the feature.
      tunnel_params cp{lstp_test::make_info(end_role::client, "c", lstp_test::test_keys(), 1),
                       lstp_test::test_keys().psk, c};
      p.client = std::make_unique<tunnel>(cp, p.rng, p.now);
    }
    p.pump();
    REQUIRE(p.both_up());
    CHECK(p.client->record_layer_active() == client_offers);
    CHECK(p.server->record_layer_active() == client_offers);
    auto id = p.open_and_begin();
    auto big = pattern(700000);
    // More than a credit window: sent as credit comes back from the app.
    std::size_t sent = 0;
    while (sent < big.size()) {
      const auto n = p.client->send_data(id, byte_view(big).subspan(sent), true);  // FIN with the last byte
      REQUIRE(n > 0);
      sent += n;
      p.pump();
      p.server->consumed(id, n, p.now);
      p.pump();
    }
    p.server->send_data(id, pattern(3000), true);
    p.pump();
    CHECK(p.server_events.data[id] == big);
    CHECK(p.client_events.data[id] == pattern(3000));
  }
}

TEST_CASE("after a key update records open only under the next keys, in order", "[lstp][records][hostile]") {
  const auto next = next_record_keys(keys(1));
  CHECK(next.key != keys(1).key);
  CHECK(next.iv != keys(1).iv);
  CHECK(next_record_keys(keys(1)).key == next.key);  // both ends derive the same
  // The sender: one record, the one that carries the update, one under the next keys.
  record_sealer seal(keys(1));
  bytes r1, update, r2;
  seal.seal(r1, pattern(100));
  seal.seal(update, pattern(12));
  CHECK(seal.sealed_under_key() == 112);
  seal.update_keys();
  CHECK(seal.sealed_under_key() == 0);
  seal.seal(r2, pattern(200));
  const auto open_all = [](record_opener& o, const std::vector<const bytes*>& records, bool update_after_second) {
    std::vector<std::size_t> sizes;
    std::optional<error_info> err;
    int n = 0;
    for (auto* r : records) {
      err = o.receive(*r, [&](byte_view p) {
        sizes.push_back(p.size());
        return true;
      });
      if (err) break;
      if (++n == 2 && update_after_second) o.update_keys();
    }
    return std::pair{sizes, err};
  };
  SECTION("in order, the receiver moving on when it reads the update") {
    record_opener o(keys(1));
    auto [sizes, err] = open_all(o, {&r1, &update, &r2}, true);
    CHECK_FALSE(err);
    CHECK(sizes == std::vector<std::size_t>{100, 12, 200});
  }
  SECTION("a middle that drops the update: the next record fails, nothing of it is used") {
    record_opener o(keys(1));
    auto [sizes, err] = open_all(o, {&r1, &r2}, false);
    REQUIRE(err);
    CHECK(err->reason == "a record failed authentication (altered on the way?)");
    CHECK(sizes == std::vector<std::size_t>{100});
  }
  SECTION("a middle that replays the update: the copy fails") {
    record_opener o(keys(1));
    auto [sizes, err] = open_all(o, {&r1, &update, &update, &r2}, true);
    REQUIRE(err);
    CHECK(sizes == std::vector<std::size_t>{100, 12});
  }
  SECTION("a receiver that does not move on cannot open what follows") {
    record_opener o(keys(1));
    auto [sizes, err] = open_all(o, {&r1, &update, &r2}, false);
    REQUIRE(err);
    CHECK(sizes == std::vector<std::size_t>{100, 12});
  }
}

TEST_CASE("a chunk larger than the room left in the buffer is copied in whole", "[lstp][records]") {
  // Regression: append() took space() for a promise of `want` bytes of
  // room, but it promises min(want, 64 KiB): a 120 KiB chunk with 110 KiB
  // left overflowed the buffer.
  record_sealer seal(keys(3));
  bytes wire;
  const auto a = pattern(60 * 1024), b = pattern(250 * 1024);
  seal.seal(wire, a);
  const auto r1 = wire.size();
  seal.seal(wire, b);
  record_opener open(keys(3));
  std::vector<bytes> got;
  const auto take = [&](std::size_t from, std::size_t n) {
    auto err = open.receive(byte_view(wire).subspan(from, n), [&](byte_view p) {
      got.emplace_back(p.begin(), p.end());
      return true;
    });
    REQUIRE_FALSE(err);
    return from + n;
  };
  auto at = take(0, r1 + 10);
  at = take(at, 100 * 1024);
  at = take(at, 30 * 1024);
  at = take(at, 120 * 1024);
  take(at, wire.size() - at);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == a);
  CHECK(got[1] == b);
}
