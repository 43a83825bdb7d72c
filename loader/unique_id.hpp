// The loader's part of a plx_unique_id: a magic, a layout version, the name
// of the plugin that made it and a checksum over the whole id, so that a
// corrupted, truncated or foreign id is rejected before a plugin reads its
// payload (PLX-L-12).
#pragma once

#include <cstdint>

#include "plexus/plugin.h"

namespace plexus::loader {

struct UniqueIdHeader {
  char magic[8];        // "PLEXUSID"
  uint32_t layout;      // 1
  uint32_t checksum;    // FNV-1a over the id with this field zeroed
  char plugin[32];      // NUL-terminated plugin name
  uint8_t reserved[16]; // zero
};
static_assert(sizeof(UniqueIdHeader) + PLX_UNIQUE_ID_PAYLOAD_BYTES == PLX_UNIQUE_ID_BYTES);

// Layouts of the header: one plugin's id, or auto's composite id carrying
// several (loader/composite_id.hpp).
inline constexpr char unique_id_magic[8] = {'P', 'L', 'E', 'X', 'U', 'S', 'I', 'D'};
constexpr uint32_t id_layout_plugin = 1;
constexpr uint32_t id_layout_composite = 2;

// FNV-1a over the 256 bytes with the checksum field read as zero.
uint32_t unique_id_checksum(const plx_unique_id &id);

// Writes the header for `plugin` around a payload already in id->bytes.
void seal_unique_id(plx_unique_id *id, const char *plugin);

// PLX_OK when the id is intact and was made by `plugin`; otherwise
// PLX_ERR_INVALID_ARGUMENT with the reason in the last error.
plx_status check_unique_id(const char *fn, const plx_unique_id *id, const char *plugin);

inline uint8_t *unique_id_payload(plx_unique_id *id) {
  return id->bytes + sizeof(UniqueIdHeader);
}
inline const uint8_t *unique_id_payload(const plx_unique_id *id) {
  return id->bytes + sizeof(UniqueIdHeader);
}

}  // namespace plexus::loader
