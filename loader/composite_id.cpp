#include "loader/composite_id.hpp"

#include <fmt/format.h>

#include <cstring>

#include "core/status.hpp"
#include "loader/tune.hpp"
#include "loader/unique_id.hpp"

namespace plexus::loader {
namespace {

constexpr size_t fixed_bytes = 20;  // header up to and including the body length
constexpr size_t body_capacity = PLX_UNIQUE_ID_BYTES - fixed_bytes;

struct Reader {
  const uint8_t *at;
  const uint8_t *end;
  bool take(size_t n, const uint8_t **out) {
    if (static_cast<size_t>(end - at) < n) return false;
    *out = at, at += n;
    return true;
  }
};

void append_member(const CompositeIdMember &m, std::vector<uint8_t> *body) {
  const std::vector<uint8_t> code = zero_run_encode(m.payload.data(), m.payload.size());
  body->push_back(static_cast<uint8_t>(m.label.size()));
  body->insert(body->end(), m.label.begin(), m.label.end());
  body->push_back(static_cast<uint8_t>(code.size()));
  body->insert(body->end(), code.begin(), code.end());
}

// The plugin a layout-1 id names, bounded even when no NUL ends it.
std::string plugin_of(const plx_unique_id &id) {
  const char *name = reinterpret_cast<const char *>(id.bytes + 16);
  return std::string(name, strnlen(name, 31));
}

plx_status damaged(const char *fn, std::string_view why) {
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id is corrupted ({}): pass the 256 bytes of "
                    "plx_get_unique_id unchanged", fn, why);
}

// One member from the body: label, then its coded payload.
bool read_member(Reader *r, CompositeIdMember *m) {
  const uint8_t *len = nullptr, *label = nullptr, *code_len = nullptr, *code = nullptr;
  if (!r->take(1, &len) || !r->take(*len, &label) || !r->take(1, &code_len) || !r->take(*code_len, &code))
    return false;
  m->label.assign(reinterpret_cast<const char *>(label), *len);
  std::string name;
  int32_t instance = 0;
  if (!parse_backend_label(m->label, &name, &instance)) return false;
  return zero_run_decode(code, *code_len, m->payload.data(), m->payload.size());
}

plx_status read_body(const char *fn, const plx_unique_id &id, std::vector<CompositeIdMember> *out) {
  const size_t count = id.bytes[17];
  const size_t body = id.bytes[18] | (static_cast<size_t>(id.bytes[19]) << 8);
  if (count == 0 || count > composite_id_max_members) return damaged(fn, "member count");
  if (body > body_capacity) return damaged(fn, "body length");
  Reader r{id.bytes + fixed_bytes, id.bytes + fixed_bytes + body};
  std::vector<CompositeIdMember> members(count);
  for (CompositeIdMember &m : members)
    if (!read_member(&r, &m)) return damaged(fn, "a member's label or code");
  if (r.at != r.end) return damaged(fn, "bytes left in the body");
  for (const uint8_t *p = r.end; p < id.bytes + PLX_UNIQUE_ID_BYTES; ++p)
    if (*p != 0) return damaged(fn, "bytes after the body");
  *out = std::move(members);
  return PLX_OK;
}

}  // namespace

std::vector<uint8_t> zero_run_encode(const uint8_t *data, size_t size) {
  while (size > 0 && data[size - 1] == 0) --size;  // trailing zeros are implied
  std::vector<uint8_t> code;
  for (size_t i = 0; i < size;) {
    if (data[i] != 0) {
      code.push_back(data[i++]);
      continue;
    }
    size_t run = 0;
    while (i < size && data[i] == 0 && run < 255) ++i, ++run;
    code.push_back(0);
    code.push_back(static_cast<uint8_t>(run));
  }
  return code;
}

bool zero_run_decode(const uint8_t *code, size_t code_size, uint8_t *out, size_t size) {
  std::memset(out, 0, size);
  size_t at = 0;
  for (size_t i = 0; i < code_size; ++i) {
    if (code[i] != 0) {
      if (at >= size) return false;
      out[at++] = code[i];
      continue;
    }
    // A zero needs a count after it, of 1 or more, that stays inside `out`.
    if (++i >= code_size || code[i] == 0 || at + code[i] > size) return false;
    at += code[i];
  }
  return true;
}

plx_status pack_composite_id(const std::vector<CompositeIdMember> &members, plx_unique_id *out) {
  if (members.empty() || members.size() > composite_id_max_members)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "auto: a composite id holds 1 to {} members, not {}",
                      composite_id_max_members, members.size());
  std::vector<uint8_t> body;
  for (const CompositeIdMember &m : members) append_member(m, &body);
  if (body.size() > body_capacity)
    return core::fail(PLX_ERR_UNSUPPORTED, "auto: the ids of its {} backends need {} bytes, more than "
                      "the {} a plx_unique_id has room for; open fewer backends (PLEXUS_BACKEND, "
                      "PLEXUS_TUNE)", members.size(), body.size(), body_capacity);
  plx_unique_id id{};
  std::memcpy(id.bytes, unique_id_magic, sizeof(unique_id_magic));
  std::memcpy(id.bytes + 8, &id_layout_composite, sizeof(id_layout_composite));
  id.bytes[16] = composite_id_version;
  id.bytes[17] = static_cast<uint8_t>(members.size());
  id.bytes[18] = static_cast<uint8_t>(body.size() & 0xff), id.bytes[19] = static_cast<uint8_t>(body.size() >> 8);
  std::memcpy(id.bytes + fixed_bytes, body.data(), body.size());
  const uint32_t sum = unique_id_checksum(id);
  std::memcpy(id.bytes + 12, &sum, sizeof(sum));
  *out = id;
  return PLX_OK;
}

plx_status unpack_composite_id(const char *fn, const plx_unique_id &id, std::vector<CompositeIdMember> *out) {
  uint32_t layout = 0, sum = 0;
  std::memcpy(&layout, id.bytes + 8, sizeof(layout));
  std::memcpy(&sum, id.bytes + 12, sizeof(sum));
  if (std::memcmp(id.bytes, unique_id_magic, sizeof(unique_id_magic)) != 0 ||
      (layout != id_layout_composite && layout != id_layout_plugin))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id is not a plexus unique id (bad magic or layout)", fn);
  if (sum != unique_id_checksum(id)) return damaged(fn, "checksum mismatch");
  if (layout == id_layout_plugin)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id was made by backend '{}', not by auto over "
                      "several backends: open the backend with the same spec on every rank", fn,
                      plugin_of(id));
  if (id.bytes[16] != composite_id_version)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id has composite version {}; this loader reads {}",
                      fn, id.bytes[16], composite_id_version);
  return read_body(fn, id, out);
}

}  // namespace plexus::loader
