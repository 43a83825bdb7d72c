// auto's composite unique id (loader/composite_id.hpp) as a pure unit: its
// decoder reads copies and runs at offsets the id names, so every bound is
// the fuzzer's to break. Promises:
//  - any body under an intact header unpacks to PLX_OK or to
//    PLX_ERR_INVALID_ARGUMENT with a message, reading nothing outside the
//    id (ASan); what unpacks packs and unpacks again to the same members;
//  - members of the fuzzer's choosing pack to PLX_OK or PLX_ERR_UNSUPPORTED
//    (too big), and what packs unpacks to exactly those members.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "core/status.hpp"
#include "fuzz_check.hpp"
#include "loader/composite_id.hpp"
#include "loader/unique_id.hpp"

using namespace plexus::loader;

namespace {

bool same(const std::vector<CompositeIdMember> &a, const std::vector<CompositeIdMember> &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].label != b[i].label || a[i].payload != b[i].payload) return false;
  return true;
}

// Packs and unpacks; the members must come back whole.
void round_trip(const std::vector<CompositeIdMember> &members) {
  plx_unique_id id{};
  const plx_status s = pack_composite_id(members, &id);
  FUZZ_EXPECT(s == PLX_OK || s == PLX_ERR_UNSUPPORTED, "pack failed otherwise than 'too big'", s,
              plexus::core::last_message().c_str());
  if (s != PLX_OK) return;
  std::vector<CompositeIdMember> back;
  FUZZ_EXPECT(unpack_composite_id("fuzz", id, &back) == PLX_OK, "a packed id does not unpack", -1,
              plexus::core::last_message().c_str());
  FUZZ_EXPECT(same(members, back), "a packed id unpacks to other members", 0, nullptr);
}

// The fuzzer's body under a sealed header of this version.
void forged_body(FuzzedDataProvider &in) {
  plx_unique_id id{};
  std::memcpy(id.bytes, unique_id_magic, sizeof(unique_id_magic));
  std::memcpy(id.bytes + 8, &id_layout_composite, sizeof(id_layout_composite));
  id.bytes[16] = composite_id_version;
  id.bytes[17] = in.ConsumeIntegralInRange<uint8_t>(0, composite_id_max_members + 1);
  const std::vector<uint8_t> body = in.ConsumeBytes<uint8_t>(PLX_UNIQUE_ID_BYTES - 20);
  id.bytes[18] = static_cast<uint8_t>(in.ConsumeBool() ? body.size() : in.ConsumeIntegral<uint8_t>());
  if (!body.empty()) std::memcpy(id.bytes + 20, body.data(), body.size());
  const uint32_t sum = unique_id_checksum(id);
  std::memcpy(id.bytes + 12, &sum, sizeof(sum));
  std::vector<CompositeIdMember> members;
  const plx_status s = unpack_composite_id("fuzz", id, &members);
  FUZZ_EXPECT(s == PLX_OK || s == PLX_ERR_INVALID_ARGUMENT, "unpack returned another status", s, nullptr);
  FUZZ_EXPECT(s == PLX_OK || !plexus::core::last_message().empty(), "a rejection without a message", s, nullptr);
  if (s == PLX_OK) round_trip(members);
}

// Members from a few labels (instances next to each other, as auto makes
// them) and payloads that often repeat each other's bytes.
void chosen_members(FuzzedDataProvider &in) {
  static const char *const labels[] = {"p2p-tree", "nccl", "shm-native", "shm-native#1", "shm-native#2", "x"};
  std::vector<CompositeIdMember> members(in.ConsumeIntegralInRange<size_t>(1, composite_id_max_members));
  for (size_t i = 0; i < members.size(); ++i) {
    CompositeIdMember &m = members[i];
    m.label = labels[in.ConsumeIntegralInRange<size_t>(0, std::size(labels) - 1)];
    if (i > 0 && in.ConsumeBool()) m.payload = members[i - 1].payload;
    const size_t at = in.ConsumeIntegralInRange<size_t>(0, m.payload.size() - 1);
    const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
    if (!bytes.empty()) std::memcpy(m.payload.data() + at, bytes.data(), std::min(bytes.size(), m.payload.size() - at));
  }
  round_trip(members);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool())
    forged_body(in);
  else
    chosen_members(in);
  return 0;
}
