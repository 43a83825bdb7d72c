// auto's composite unique id (loader/composite_id.hpp) as a pure unit: the
// members' ids go in and come out whole, and any damage is refused.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "core/status.hpp"
#include "loader/composite_id.hpp"
#include "loader/unique_id.hpp"

using namespace plexus::loader;

namespace {

// A payload like a rendezvous id: a NUL-padded name, then a nonce.
CompositeIdMember member(const std::string &label, uint8_t seed) {
  CompositeIdMember m;
  m.label = label;
  const std::string name = "/plexus-1000-4711-rdv-0123456789abcdef";
  std::memcpy(m.payload.data(), name.data(), name.size());
  for (int i = 0; i < 8; ++i) m.payload[64 + i] = static_cast<uint8_t>(seed + i * 37);
  return m;
}

// Like nccl's: a header, a 128-byte id with a short address in it, a key.
CompositeIdMember nccl_like(uint8_t seed) {
  CompositeIdMember m;
  m.label = "nccl";
  for (int i = 0; i < 16; ++i) m.payload[i] = static_cast<uint8_t>(i % 3 ? seed + i : 0);
  for (int i = 16; i < 16 + 24; ++i) m.payload[i] = static_cast<uint8_t>(seed ^ i);
  for (int i = 144; i < 168; ++i) m.payload[i] = static_cast<uint8_t>(seed * i | 1);
  return m;
}

std::string rejection(const plx_unique_id &id) {
  std::vector<CompositeIdMember> out;
  CHECK(unpack_composite_id("plx_comm_init", id, &out) == PLX_ERR_INVALID_ARGUMENT);
  return plexus::core::last_message();
}

bool has(const std::string &text, const std::string &word) { return text.find(word) != std::string::npos; }

}  // namespace

TEST_CASE("Loader.CompositeId.round_trip") {
  const std::vector<CompositeIdMember> in = {member("p2p-tree", 1), nccl_like(7), member("shm-native", 99)};
  plx_unique_id id{};
  REQUIRE(pack_composite_id(in, &id) == PLX_OK);
  std::vector<CompositeIdMember> out;
  REQUIRE(unpack_composite_id("plx_comm_init", id, &out) == PLX_OK);
  REQUIRE(out.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(out[i].label == in[i].label);
    CHECK(out[i].payload == in[i].payload);
  }
}

TEST_CASE("Loader.CompositeId.any_changed_byte_is_refused") {
  plx_unique_id id{};
  REQUIRE(pack_composite_id({member("shm-native", 3), member("shm-native#1", 4)}, &id) == PLX_OK);
  for (size_t at = 0; at < sizeof(id.bytes); ++at) {
    plx_unique_id bad = id;
    bad.bytes[at] ^= 0x5a;
    CAPTURE(at);
    rejection(bad);
  }
}

TEST_CASE("Loader.CompositeId.damage_is_named") {
  plx_unique_id id{};
  REQUIRE(pack_composite_id({member("shm-native", 3)}, &id) == PLX_OK);
  auto resealed = [&id](size_t at, uint8_t value) {
    plx_unique_id bad = id;
    bad.bytes[at] = value;
    const uint32_t sum = unique_id_checksum(bad);
    std::memcpy(bad.bytes + 12, &sum, sizeof(sum));
    return bad;
  };
  CHECK(has(rejection(resealed(16, 2)), "composite version 2; this loader reads 1"));
  CHECK(has(rejection(resealed(17, 0)), "member count"));
  CHECK(has(rejection(resealed(17, 9)), "member count"));
  CHECK(has(rejection(resealed(19, 1)), "body length"));
  CHECK(has(rejection(resealed(255, 1)), "bytes after the body"));
  CHECK(has(rejection(resealed(21, 'A')), "a member's label or code"));
  plx_unique_id flipped = id;
  flipped.bytes[40] ^= 1;
  CHECK(has(rejection(flipped), "checksum mismatch"));
  plx_unique_id plugin_id{};
  seal_unique_id(&plugin_id, "shm-native");
  CHECK(has(rejection(plugin_id), "made by backend 'shm-native', not by auto"));
  CHECK(has(rejection(plx_unique_id{}), "not a plexus unique id"));
  // The plugin-id check names a composite id for what it is.
  CHECK(check_unique_id("plx_comm_init", &id, "shm-native") == PLX_ERR_INVALID_ARGUMENT);
  CHECK(has(plexus::core::last_message(), "made by auto over several backends"));
}

TEST_CASE("Loader.CompositeId.what_does_not_fit_is_refused_when_made") {
  std::vector<CompositeIdMember> full(3);
  for (size_t i = 0; i < full.size(); ++i) {
    full[i].label = "m" + std::to_string(i);
    for (size_t b = 0; b < full[i].payload.size(); ++b) full[i].payload[b] = static_cast<uint8_t>(b | 1);
  }
  plx_unique_id id{};
  CHECK(pack_composite_id(full, &id) == PLX_ERR_UNSUPPORTED);
  CHECK(has(plexus::core::last_message(), "more than the 236 a plx_unique_id has room for"));
  CHECK(pack_composite_id({}, &id) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pack_composite_id(std::vector<CompositeIdMember>(9, member("a", 1)), &id) == PLX_ERR_INVALID_ARGUMENT);
}

TEST_CASE("Loader.CompositeId.zero_runs") {
  const uint8_t data[] = {1, 0, 0, 0, 2, 0, 3};
  const std::vector<uint8_t> code = zero_run_encode(data, sizeof(data));
  CHECK(code == std::vector<uint8_t>{1, 0, 3, 2, 0, 1, 3});
  uint8_t back[10];
  REQUIRE(zero_run_decode(code.data(), code.size(), back, sizeof(back)));
  CHECK(std::memcmp(back, data, sizeof(data)) == 0);
  CHECK(back[7] == 0);
  std::vector<uint8_t> zeros(600, 0);
  zeros[599] = 5;
  const std::vector<uint8_t> long_run = zero_run_encode(zeros.data(), zeros.size());
  CHECK(long_run == std::vector<uint8_t>{0, 255, 0, 255, 0, 89, 5});
  const uint8_t bad_count[] = {0, 0}, no_count[] = {7, 0}, too_long[] = {0, 11};
  CHECK_FALSE(zero_run_decode(bad_count, 2, back, sizeof(back)));
  CHECK_FALSE(zero_run_decode(no_count, 2, back, sizeof(back)));
  CHECK_FALSE(zero_run_decode(too_long, 2, back, sizeof(back)));
  CHECK(zero_run_encode(zeros.data(), 10).empty());  // trailing zeros are implied
}
