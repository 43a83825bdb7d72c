#include "loader/unique_id.hpp"

#include <cstring>
#include <string_view>

#include "core/status.hpp"

namespace plexus::loader {
namespace {

constexpr const char (&id_magic)[8] = unique_id_magic;

// What seal_unique_id leaves zero: the plugin name's padding after its NUL
// and the reserved bytes. A newer plexus may give them a meaning; this one
// must not take such an id for its own.
bool zero_padded(const UniqueIdHeader &header) {
  const size_t name = strnlen(header.plugin, sizeof(header.plugin));
  for (size_t i = name; i < sizeof(header.plugin); ++i)
    if (header.plugin[i] != '\0') return false;
  for (const uint8_t b : header.reserved)
    if (b != 0) return false;
  return true;
}

}  // namespace

uint32_t unique_id_checksum(const plx_unique_id &id) {
  plx_unique_id copy = id;
  reinterpret_cast<UniqueIdHeader *>(copy.bytes)->checksum = 0;
  uint32_t h = 2166136261u;
  for (const uint8_t b : copy.bytes) h = (h ^ b) * 16777619u;
  return h;
}

void seal_unique_id(plx_unique_id *id, const char *plugin) {
  UniqueIdHeader header{};
  std::memcpy(header.magic, id_magic, sizeof(id_magic));
  header.layout = id_layout_plugin;
  std::strncpy(header.plugin, plugin, sizeof(header.plugin) - 1);
  std::memcpy(id->bytes, &header, sizeof(header));
  reinterpret_cast<UniqueIdHeader *>(id->bytes)->checksum = unique_id_checksum(*id);
}

plx_status check_unique_id(const char *fn, const plx_unique_id *id, const char *plugin) {
  UniqueIdHeader header;
  std::memcpy(&header, id->bytes, sizeof(header));
  const bool magic = std::memcmp(header.magic, id_magic, sizeof(id_magic)) == 0;
  if (magic && header.layout == id_layout_composite)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id was made by auto over several backends, not "
                      "by '{}': open the backend with the same spec on every rank", fn, plugin);
  if (!magic || header.layout != id_layout_plugin)
    return core::fail(PLX_ERR_INVALID_ARGUMENT,
                      "{}: id is not a plexus unique id (bad magic or layout)", fn);
  if (header.checksum != unique_id_checksum(*id))
    return core::fail(PLX_ERR_INVALID_ARGUMENT,
                      "{}: id is corrupted (checksum mismatch): pass the 256 bytes unchanged", fn);
  // The name may fill its field without a NUL (a forged id): never strlen it.
  const std::string_view made_by(header.plugin, strnlen(header.plugin, sizeof(header.plugin)));
  if (made_by.size() == sizeof(header.plugin) || made_by != plugin)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id was made by backend '{}', not by '{}'", fn,
                      made_by.substr(0, sizeof(header.plugin) - 1), plugin);
  if (!zero_padded(header))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id's reserved header bytes are not zero (made by "
                      "a newer plexus, or altered and resealed): pass the id of plx_get_unique_id", fn);
  return PLX_OK;
}

}  // namespace plexus::loader
