// auto's composite unique id: one 256-byte plx_unique_id that carries the
// id of every member backend, so a host hands one id around as it does for
// one backend (PLX-L-28). Layout 2 of the loader's header (unique_id.hpp):
//
//   0..7   "PLEXUSID"             12..15 checksum over all 256 bytes
//   8..11  layout = 2             16     composite version (1)
//   17     member count (1..8)    18..19 body bytes (little endian)
//   20..   body: per member, a label (u8 length + "shm-native#1") and its
//          192-byte payload run-length coded (u8 length + code); zeros after
//
// Members' payloads are mostly zeros (names padded with NULs, unused
// fields), which is why three fit: the code writes a zero as 0x00 and a
// count of zeros, any other byte as itself. An id whose members do not fit
// is refused when it is made, never truncated.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "plexus/plugin.h"

namespace plexus::loader {

constexpr uint8_t composite_id_version = 1;
constexpr size_t composite_id_max_members = 8;

struct CompositeIdMember {
  std::string label;  // "nccl", "shm-native#1"
  std::array<uint8_t, PLX_UNIQUE_ID_PAYLOAD_BYTES> payload{};
};

// Packs and seals; PLX_ERR_UNSUPPORTED (naming the bytes needed) when the
// members do not fit, PLX_ERR_INVALID_ARGUMENT for no or too many members.
plx_status pack_composite_id(const std::vector<CompositeIdMember> &members, plx_unique_id *out);

// Checks and unpacks an id made by pack_composite_id: any damage (checksum,
// version, lengths, labels, bytes after the body) is
// PLX_ERR_INVALID_ARGUMENT with the reason, naming `fn`.
plx_status unpack_composite_id(const char *fn, const plx_unique_id &id,
                               std::vector<CompositeIdMember> *out);

// The run-length code of the body, exposed for the tests and the fuzzer.
std::vector<uint8_t> zero_run_encode(const uint8_t *data, size_t size);
// False when `code` is malformed or decodes to more than `size` bytes; the
// rest of `out` is zero.
bool zero_run_decode(const uint8_t *code, size_t code_size, uint8_t *out, size_t size);

}  // namespace plexus::loader
