// auto's composite unique id (loader/composite_id.hpp) as a pure unit: the
// members' ids go in and come out whole, and any damage is refused.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <span>
#include <string>

#include "core/rendezvous.hpp"
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

// A rendezvous id from core::make_rendezvous_id, its euid and pid widened
// to 4 and 7 digits (pid_max reaches 4194304), as on the machine where four
// members did not fit in composite version 1.
plexus::core::RendezvousId wide_rendezvous_id() {
  plexus::core::RendezvousId rid;
  REQUIRE(plexus::core::make_rendezvous_id(&rid) == PLX_OK);
  const std::string name = rid.name;
  const std::string wide = "/plexus-1000-4194303" + name.substr(name.find("-rdv-"));
  REQUIRE(wide.size() < sizeof(rid.name));
  std::memset(rid.name, 0, sizeof(rid.name));
  std::memcpy(rid.name, wide.data(), wide.size());
  return rid;
}

// shm-native's payload is a rendezvous id; p2p-tree's puts a header before it.
CompositeIdMember rendezvous_member(const std::string &label, size_t header) {
  CompositeIdMember m;
  m.label = label;
  const plexus::core::RendezvousId rid = wide_rendezvous_id();
  const uint8_t p2p_header[] = {0x58, 0x50, 0x32, 0x54, 1, 0, 0, 0};  // magic, version 1
  if (header > 0) std::memcpy(m.payload.data(), p2p_header, sizeof(p2p_header));
  std::memcpy(m.payload.data() + header, &rid, sizeof(rid));
  return m;
}

// nccl's: a 16-byte header, NCCL's id (8-byte magic and a socket address,
// taken as 36 random bytes, which an IPv6 address does not exceed), zeros
// to the 24-byte domain key at 144: 60 random bytes in all.
CompositeIdMember nccl_random() {
  CompositeIdMember m;
  m.label = "nccl";
  const uint8_t header[] = {0x4c, 0x58, 0x43, 0x4e, 2, 0, 0, 0, 0xaf, 0x58, 0, 0, 0, 0, 0, 0};
  std::memcpy(m.payload.data(), header, sizeof(header));
  std::mt19937 random(2024);
  for (size_t i = 16; i < 16 + 36; ++i) m.payload[i] = static_cast<uint8_t>(random());
  for (size_t i = 144; i < 168; ++i) m.payload[i] = static_cast<uint8_t>(random());
  return m;
}

// The four members of conformance.auto-composite.2 on a GPU machine.
std::vector<CompositeIdMember> four_members() {
  return {rendezvous_member("p2p-tree", 8), nccl_random(), rendezvous_member("shm-native", 0),
          rendezvous_member("shm-native#1", 0)};
}

size_t body_bytes(const plx_unique_id &id) { return id.bytes[18] | (static_cast<size_t>(id.bytes[19]) << 8); }

std::string rejection(const plx_unique_id &id) {
  std::vector<CompositeIdMember> out;
  CHECK(unpack_composite_id("plx_comm_init", id, &out) == PLX_ERR_INVALID_ARGUMENT);
  return plexus::core::last_message();
}

bool has(const std::string &text, const std::string &word) { return text.find(word) != std::string::npos; }

}  // namespace

// Unpacks `id` and checks it gives back `in`, label and payload.
static void check_unpacks_to(const plx_unique_id &id, const std::vector<CompositeIdMember> &in) {
  std::vector<CompositeIdMember> out;
  REQUIRE(unpack_composite_id("plx_comm_init", id, &out) == PLX_OK);
  REQUIRE(out.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(out[i].label == in[i].label);
    CHECK(out[i].payload == in[i].payload);
  }
}

TEST_CASE("Loader.CompositeId.round_trip") {
  const std::vector<CompositeIdMember> in = {member("p2p-tree", 1), nccl_like(7), member("shm-native", 99)};
  plx_unique_id id{};
  REQUIRE(pack_composite_id(in, &id) == PLX_OK);
  check_unpacks_to(id, in);
}

TEST_CASE("Loader.CompositeId.four_real_members_fit") {
  const std::vector<CompositeIdMember> in = four_members();
  plx_unique_id id{};
  REQUIRE_MESSAGE(pack_composite_id(in, &id) == PLX_OK, plexus::core::last_message());
  MESSAGE("four members take " << body_bytes(id) << " of 236 body bytes");
  check_unpacks_to(id, in);
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
  CHECK(has(rejection(resealed(16, 3)), "composite version 3, this loader reads only 2"));
  CHECK(has(rejection(resealed(17, 0)), "member count"));
  CHECK(has(rejection(resealed(17, 9)), "member count"));
  CHECK(has(rejection(resealed(19, 1)), "body length"));
  CHECK(has(rejection(resealed(255, 1)), "bytes after the body"));
  CHECK(has(rejection(resealed(21, 'A')), "a member's label"));
  CHECK(has(rejection(resealed(20, 200)), "a member runs past the body"));
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

TEST_CASE("Loader.CompositeId.an_id_of_version_1_is_refused") {
  // An id as composite version 1 wrote it: one member, full label, a code
  // of zero runs (here literals only).
  plx_unique_id id{};
  std::memcpy(id.bytes, unique_id_magic, sizeof(unique_id_magic));
  std::memcpy(id.bytes + 8, &id_layout_composite, sizeof(id_layout_composite));
  const uint8_t header[] = {1, 1, 15, 0};  // version 1, 1 member, 15 body bytes
  const uint8_t body[] = {10, 's', 'h', 'm', '-', 'n', 'a', 't', 'i', 'v', 'e', 3, '/', 'p', 'x'};
  std::memcpy(id.bytes + 16, header, sizeof(header));
  std::memcpy(id.bytes + 20, body, sizeof(body));
  const uint32_t sum = unique_id_checksum(id);
  std::memcpy(id.bytes + 12, &sum, sizeof(sum));
  const std::string why = rejection(id);
  CHECK(has(why, "id has composite version 1, this loader reads only 2"));
  CHECK(has(why, "same plexus build"));
}

// Offset of member 1's code in an id of two members (the body's layout in
// composite_id.hpp).
size_t second_code_at(const plx_unique_id &id) {
  size_t at = 20;
  at += 1 + id.bytes[at];  // label
  at += 1 + id.bytes[at];  // code
  at += 1 + id.bytes[at];  // label
  return at + 1;
}

TEST_CASE("Loader.CompositeId.instances_share_their_label_and_name") {
  const std::vector<CompositeIdMember> in = {rendezvous_member("shm-native", 0), rendezvous_member("shm-native#1", 0)};
  plx_unique_id id{};
  REQUIRE(pack_composite_id(in, &id) == PLX_OK);
  // The second label is "#1", its code starts with a copy of the first's
  // "/plexus-1000-4194303-rdv-" (25 bytes, maybe more when the hex agrees).
  const size_t code = second_code_at(id);
  CHECK(std::string(reinterpret_cast<const char *>(id.bytes + code - 4), 3) == std::string("\x02#1", 3));
  CHECK(std::vector<uint8_t>(id.bytes + code, id.bytes + code + 3) == std::vector<uint8_t>{0, 0, 0});
  CHECK(id.bytes[code + 4] >= 25);
  std::vector<CompositeIdMember> out;
  REQUIRE(unpack_composite_id("plx_comm_init", id, &out) == PLX_OK);
  REQUIRE(out.size() == 2);
  CHECK(out[1].label == "shm-native#1");
  CHECK(out[1].payload == in[1].payload);
}

TEST_CASE("Loader.CompositeId.a_copy_from_outside_is_refused") {
  plx_unique_id id{};
  REQUIRE(pack_composite_id({rendezvous_member("shm-native", 0), rendezvous_member("shm-native#1", 0)}, &id) == PLX_OK);
  const size_t code = second_code_at(id);
  auto copy_changed = [&](size_t at, uint8_t value) {
    plx_unique_id bad = id;
    bad.bytes[code + at] = value;
    const uint32_t sum = unique_id_checksum(bad);
    std::memcpy(bad.bytes + 12, &sum, sizeof(sum));
    return rejection(bad);
  };
  CHECK(has(copy_changed(2, 180), "a member's code"));  // offset 180 + 25 bytes > the 192 before it
  CHECK(has(copy_changed(3, 1), "a member's code"));    // offset 256
  CHECK(has(copy_changed(4, 0), "a member's code"));    // a copy of nothing
  CHECK(has(copy_changed(4, 193), "a member's code"));  // more than the 192 before it
  plx_unique_id first{};  // a "#1" needs a member before it
  REQUIRE(pack_composite_id({member("p2", 1)}, &first) == PLX_OK);
  first.bytes[21] = '#', first.bytes[22] = '1';
  const uint32_t sum = unique_id_checksum(first);
  std::memcpy(first.bytes + 12, &sum, sizeof(sum));
  CHECK(has(rejection(first), "a member's label"));
}

TEST_CASE("Loader.CompositeId.what_does_not_fit_is_refused_when_made") {
  std::vector<CompositeIdMember> full(3);
  std::mt19937 random(7);  // nothing to copy between them
  for (size_t i = 0; i < full.size(); ++i) {
    full[i].label = "m" + std::to_string(i);
    for (uint8_t &b : full[i].payload) b = static_cast<uint8_t>(random() | 1);
  }
  plx_unique_id id{};
  CHECK(pack_composite_id(full, &id) == PLX_ERR_UNSUPPORTED);
  CHECK(has(plexus::core::last_message(), "more than the 236 a plx_unique_id has room for"));
  CHECK(pack_composite_id({}, &id) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pack_composite_id(std::vector<CompositeIdMember>(9, member("a", 1)), &id) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pack_composite_id({member("Shm", 1)}, &id) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(has(plexus::core::last_message(), "'Shm' is not a backend label"));
}

TEST_CASE("Loader.CompositeId.zero_runs") {
  const uint8_t data[] = {1, 0, 0, 0, 2, 0, 3};
  const std::vector<uint8_t> code = encode_payload({}, data, sizeof(data));
  CHECK(code == std::vector<uint8_t>{1, 0, 3, 2, 0, 1, 3});
  uint8_t back[10];
  REQUIRE(decode_payload(code, {}, back, sizeof(back)));
  CHECK(std::memcmp(back, data, sizeof(data)) == 0);
  CHECK(back[7] == 0);
  std::vector<uint8_t> zeros(600, 0);
  zeros[599] = 5;
  const std::vector<uint8_t> long_run = encode_payload({}, zeros.data(), zeros.size());
  CHECK(long_run == std::vector<uint8_t>{0, 255, 0, 255, 0, 89, 5});
  const std::vector<uint8_t> no_count = {7, 0}, too_long = {0, 11}, short_copy = {0, 0, 0, 0};
  CHECK_FALSE(decode_payload(no_count, {}, back, sizeof(back)));
  CHECK_FALSE(decode_payload(too_long, {}, back, sizeof(back)));
  CHECK_FALSE(decode_payload(short_copy, {}, back, sizeof(back)));
  CHECK(encode_payload({}, zeros.data(), 10).empty());  // trailing zeros are implied
}

TEST_CASE("Loader.CompositeId.copies") {
  const std::string earlier_text = "xx/plexus-0-1-rdv-ab", data = "/plexus-0-1-rdv-cd";
  const std::span<const uint8_t> earlier(reinterpret_cast<const uint8_t *>(earlier_text.data()), earlier_text.size());
  const std::vector<uint8_t> code = encode_payload(earlier, reinterpret_cast<const uint8_t *>(data.data()), data.size());
  CHECK(code == std::vector<uint8_t>{0, 0, 2, 0, 16, 'c', 'd'});  // 16 bytes from offset 2
  uint8_t back[20];
  REQUIRE(decode_payload(code, earlier, back, sizeof(back)));
  CHECK(std::string(reinterpret_cast<const char *>(back), data.size()) == data);
  CHECK(back[data.size()] == 0);
  const std::vector<uint8_t> to_the_end = {0, 0, 4, 0, 16}, past_earlier = {0, 0, 5, 0, 16};
  const std::vector<uint8_t> past_out = {0, 0, 0, 0, 20, 1};
  CHECK(decode_payload(to_the_end, earlier, back, sizeof(back)));
  CHECK_FALSE(decode_payload(past_earlier, earlier, back, sizeof(back)));
  CHECK_FALSE(decode_payload(past_out, earlier, back, sizeof(back)));
  CHECK_FALSE(decode_payload(code, {}, back, sizeof(back)));  // the first member has nothing to copy
  // A short match is cheaper as literals: 5 shared bytes stay plain.
  CHECK(encode_payload(earlier, earlier.data() + 2, 5) == std::vector<uint8_t>{'/', 'p', 'l', 'e', 'x'});
}

// The plugin-id check takes only what seal_unique_id writes: bytes it
// leaves zero (the name's padding, the reserved field) that are not, under
// a checksum made to match, are refused (found by fuzz.unique_id).
TEST_CASE("Loader.UniqueId.only_bytes_as_sealed_pass") {
  plx_unique_id sealed{};
  for (size_t i = sizeof(UniqueIdHeader); i < PLX_UNIQUE_ID_BYTES; ++i) sealed.bytes[i] = static_cast<uint8_t>(i * 7);
  seal_unique_id(&sealed, "shm-native");
  REQUIRE(check_unique_id("plx_comm_init", &sealed, "shm-native") == PLX_OK);
  const size_t padding = offsetof(UniqueIdHeader, plugin) + std::strlen("shm-native") + 1;
  for (const size_t at : {padding, offsetof(UniqueIdHeader, plugin) + 31, offsetof(UniqueIdHeader, reserved),
                          offsetof(UniqueIdHeader, reserved) + 15}) {
    CAPTURE(at);
    plx_unique_id id = sealed;
    id.bytes[at] = 'n';
    const uint32_t sum = unique_id_checksum(id);
    std::memcpy(id.bytes + offsetof(UniqueIdHeader, checksum), &sum, sizeof(sum));
    CHECK(check_unique_id("plx_comm_init", &id, "shm-native") == PLX_ERR_INVALID_ARGUMENT);
    CHECK(plexus::core::last_message().find("reserved header bytes are not zero") != std::string::npos);
  }
}

// A plugin's id whose name fills its 32 bytes without a NUL, checksum
// resealed (what fuzz.unique_id forged): refused, and the message names
// the first 31 bytes without reading past the field (ASan stage).
TEST_CASE("Loader.UniqueId.name_without_nul_is_refused_within_its_field") {
  plx_unique_id id{};
  seal_unique_id(&id, "shm-native");
  auto *header = reinterpret_cast<UniqueIdHeader *>(id.bytes);
  std::memset(header->plugin, 'x', sizeof(header->plugin));
  header->checksum = unique_id_checksum(id);
  REQUIRE(check_unique_id("fuzz", &id, "shm-native") == PLX_ERR_INVALID_ARGUMENT);
  const std::string message = plexus::core::last_message();
  CHECK(message.find("made by backend '" + std::string(31, 'x') + "', not by 'shm-native'") != std::string::npos);
  seal_unique_id(&id, "shm-native");
  CHECK(check_unique_id("fuzz", &id, "shm-native") == PLX_OK);
  CHECK(check_unique_id("fuzz", &id, "shm-nativ") == PLX_ERR_INVALID_ARGUMENT);
}
