// auto's composite unique id: one 256-byte plx_unique_id that carries the
// id of every member backend, so a host hands one id around as it does for
// one backend (PLX-L-28). Layout 2 of the loader's header (unique_id.hpp):
//
//   0..7   "PLEXUSID"             12..15 checksum over all 256 bytes
//   8..11  layout = 2             16     composite version (2)
//   17     member count (1..8)    18..19 body bytes (little endian)
//   20..   body: per member, in member order, a label (u8 length + text)
//          and its 192-byte payload coded (u8 length + code); zeros after
//
// A label is "nccl" or "shm-native#1"; an instance of the previous
// member's plugin (auto keeps a plugin's instances together) is written
// as its "#1" alone. A payload's code is a sequence of tokens:
//
//   b (1..255)             the byte b
//   0, n (1..255)          n zero bytes
//   0, 0, o (u16 LE), n    n (1..255) bytes copied from offset o of the
//                          earlier members' payloads laid end to end
//
// and the payload's bytes after the code are zeros. Members' payloads are
// mostly zeros (names padded with NULs, unused fields), and those of
// different members share text: every rendezvous name of a process starts
// "/plexus-<euid>-<pid>-rdv-", up to 25 bytes that a copy writes in 5. Four
// members (p2p-tree, nccl, shm-native, shm-native#1) fit only so; version 1
// (zero runs only, full labels) needed ~275 bytes for them. The encoder is
// greedy: at each byte, the longest copy if it is shorter than the plain
// tokens for the same bytes. An id whose members do not fit is refused when
// it is made, never truncated; ids pass only between processes of one
// build, so an id of another version is refused, never converted.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "plexus/plugin.h"

namespace plexus::loader {

constexpr uint8_t composite_id_version = 2;
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

// The code of one payload, exposed for the tests and the fuzzer; `earlier`
// is the payloads of the members before it, end to end (what copies read).
std::vector<uint8_t> encode_payload(std::span<const uint8_t> earlier, const uint8_t *data, size_t size);
// False when `code` is malformed, decodes to more than `size` bytes or
// copies from outside `earlier`; the rest of `out` is zero.
bool decode_payload(std::span<const uint8_t> code, std::span<const uint8_t> earlier, uint8_t *out,
                    size_t size);

}  // namespace plexus::loader
