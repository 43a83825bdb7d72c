#include "loader/composite_id.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/status.hpp"
#include "loader/tune.hpp"
#include "loader/unique_id.hpp"

namespace plexus::loader {
namespace {

constexpr size_t fixed_bytes = 20;  // header up to and including the body length
constexpr size_t body_capacity = PLX_UNIQUE_ID_BYTES - fixed_bytes;
// A code too long for its u8 length never fits the body either, so the fit
// check refuses it before a wrong length byte could be written.
static_assert(body_capacity <= 255);
constexpr size_t copy_token_bytes = 5;  // 0, 0, offset (u16), count
constexpr size_t max_count = 255;       // of a zero run or a copy
static_assert(composite_id_max_members * PLX_UNIQUE_ID_PAYLOAD_BYTES <= 0xffff, "a copy's offset is a u16");

struct Reader {
  const uint8_t *at;
  const uint8_t *end;
  bool take(size_t n, const uint8_t **out) {
    if (static_cast<size_t>(end - at) < n) return false;
    *out = at, at += n;
    return true;
  }
};

// The plugin part of a label: "shm-native" of "shm-native#1".
std::string_view plugin_part(std::string_view label) { return label.substr(0, label.find('#')); }

// The label as written: an instance of the previous member's plugin keeps
// only its "#1" (auto keeps a plugin's instances together).
std::string_view written_label(std::string_view label, const CompositeIdMember *prev) {
  const size_t hash = label.find('#');
  if (prev == nullptr || hash == std::string_view::npos || hash == 0) return label;
  return plugin_part(prev->label) == label.substr(0, hash) ? label.substr(hash) : label;
}

// The whole label back from what written_label wrote; false when the
// result is not a backend label (a "#1" needs a member before it).
bool read_label(std::string_view written, const CompositeIdMember *prev, std::string *label) {
  const bool instance_only = !written.empty() && written.front() == '#';
  if (instance_only && prev == nullptr) return false;
  *label = instance_only ? std::string(plugin_part(prev->label)).append(written) : std::string(written);
  std::string name;
  int32_t instance = 0;
  return parse_backend_label(*label, &name, &instance);
}

// One plain token at data[0] (size > 0): the byte, or the run of zeros
// there; returns the bytes it covers.
size_t plain_token(const uint8_t *data, size_t size, std::vector<uint8_t> *code) {
  if (data[0] != 0) {
    code->push_back(data[0]);
    return 1;
  }
  size_t run = 0;
  while (run < size && run < max_count && data[run] == 0) ++run;
  code->push_back(0), code->push_back(static_cast<uint8_t>(run));
  return run;
}

// Bytes the plain tokens take for data[0, size), what a copy must beat.
size_t plain_cost(const uint8_t *data, size_t size) {
  std::vector<uint8_t> plain;
  for (size_t i = 0; i < size;) i += plain_token(data + i, size - i, &plain);
  return plain.size();
}

struct Match {
  size_t offset = 0, count = 0;
};

// The longest prefix of data[0, size) found in `earlier` (first wins).
// Quadratic, over at most 7 x 192 bytes, once per plx_get_unique_id.
Match longest_match(std::span<const uint8_t> earlier, const uint8_t *data, size_t size) {
  Match best;
  const size_t cap = std::min(size, max_count);
  for (size_t o = 0; o < earlier.size() && best.count < cap; ++o) {
    size_t n = 0;
    while (n < cap && o + n < earlier.size() && earlier[o + n] == data[n]) ++n;
    if (n > best.count) best = {o, n};
  }
  return best;
}

size_t copy_token(Match m, std::vector<uint8_t> *code) {
  code->insert(code->end(), {0, 0, static_cast<uint8_t>(m.offset & 0xff), static_cast<uint8_t>(m.offset >> 8),
                             static_cast<uint8_t>(m.count)});
  return m.count;
}

// After a 0: a zero run (count 1..255), or a 0 and a copy, which must read
// inside `earlier` and write inside out[0, size).
bool decode_escape(Reader *r, std::span<const uint8_t> earlier, uint8_t *out, size_t size, size_t *at) {
  const uint8_t *run = nullptr, *copy = nullptr;
  if (!r->take(1, &run)) return false;
  if (*run != 0) {
    if (*at + *run > size) return false;
    *at += *run;  // out is zeroed already
    return true;
  }
  if (!r->take(3, &copy)) return false;
  const size_t offset = copy[0] | (static_cast<size_t>(copy[1]) << 8), count = copy[2];
  if (count == 0 || offset + count > earlier.size() || *at + count > size) return false;
  std::memcpy(out + *at, earlier.data() + offset, count);
  *at += count;
  return true;
}

// Appends a member's label and code to the body.
void append_member(const CompositeIdMember &m, const CompositeIdMember *prev, std::span<const uint8_t> earlier,
                   std::vector<uint8_t> *body) {
  const std::string_view label = written_label(m.label, prev);
  const std::vector<uint8_t> code = encode_payload(earlier, m.payload.data(), m.payload.size());
  body->push_back(static_cast<uint8_t>(label.size()));
  body->insert(body->end(), label.begin(), label.end());
  body->push_back(static_cast<uint8_t>(code.size()));
  body->insert(body->end(), code.begin(), code.end());
}

std::vector<uint8_t> encode_body(const std::vector<CompositeIdMember> &members) {
  std::vector<uint8_t> body, earlier;
  for (size_t i = 0; i < members.size(); ++i) {
    append_member(members[i], i > 0 ? &members[i - 1] : nullptr, earlier, &body);
    earlier.insert(earlier.end(), members[i].payload.begin(), members[i].payload.end());
  }
  return body;
}

// What the id can carry: 1 to 8 members, each a backend label (so that
// what is written reads back the same).
plx_status check_members(const std::vector<CompositeIdMember> &members) {
  if (members.empty() || members.size() > composite_id_max_members)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "auto: a composite id holds 1 to {} members, not {}",
                      composite_id_max_members, members.size());
  std::string name;
  int32_t instance = 0;
  for (const CompositeIdMember &m : members)
    if (!parse_backend_label(m.label, &name, &instance))
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "auto: '{}' is not a backend label", m.label);
  return PLX_OK;
}

// The loader's header (layout 2, unique_id.hpp) around the body, sealed.
plx_unique_id seal(const std::vector<uint8_t> &body, size_t count) {
  plx_unique_id id{};
  std::memcpy(id.bytes, unique_id_magic, sizeof(unique_id_magic));
  std::memcpy(id.bytes + 8, &id_layout_composite, sizeof(id_layout_composite));
  id.bytes[16] = composite_id_version;
  id.bytes[17] = static_cast<uint8_t>(count);
  id.bytes[18] = static_cast<uint8_t>(body.size() & 0xff), id.bytes[19] = static_cast<uint8_t>(body.size() >> 8);
  std::memcpy(id.bytes + fixed_bytes, body.data(), body.size());
  const uint32_t sum = unique_id_checksum(id);
  std::memcpy(id.bytes + 12, &sum, sizeof(sum));
  return id;
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

// One member from the body: label, then its coded payload; the reason
// when it is malformed, else null.
const char *read_member(Reader *r, const CompositeIdMember *prev, std::span<const uint8_t> earlier,
                        CompositeIdMember *m) {
  const uint8_t *len = nullptr, *label = nullptr, *code_len = nullptr, *code = nullptr;
  if (!r->take(1, &len) || !r->take(*len, &label) || !r->take(1, &code_len) || !r->take(*code_len, &code))
    return "a member runs past the body";
  if (!read_label({reinterpret_cast<const char *>(label), *len}, prev, &m->label)) return "a member's label";
  if (!decode_payload({code, *code_len}, earlier, m->payload.data(), m->payload.size()))
    return "a member's code";
  return nullptr;
}

// The members in order, each reading its copies from those before it.
const char *read_members(Reader *r, std::vector<CompositeIdMember> *members) {
  std::vector<uint8_t> earlier;
  for (size_t i = 0; i < members->size(); ++i) {
    CompositeIdMember &m = (*members)[i];
    if (const char *why = read_member(r, i > 0 ? &(*members)[i - 1] : nullptr, earlier, &m)) return why;
    earlier.insert(earlier.end(), m.payload.begin(), m.payload.end());
  }
  return r->at != r->end ? "bytes left in the body" : nullptr;
}

plx_status read_body(const char *fn, const plx_unique_id &id, std::vector<CompositeIdMember> *out) {
  const size_t count = id.bytes[17];
  const size_t body = id.bytes[18] | (static_cast<size_t>(id.bytes[19]) << 8);
  if (count == 0 || count > composite_id_max_members) return damaged(fn, "member count");
  if (body > body_capacity) return damaged(fn, "body length");
  Reader r{id.bytes + fixed_bytes, id.bytes + fixed_bytes + body};
  std::vector<CompositeIdMember> members(count);
  if (const char *why = read_members(&r, &members)) return damaged(fn, why);
  for (const uint8_t *p = r.end; p < id.bytes + PLX_UNIQUE_ID_BYTES; ++p)
    if (*p != 0) return damaged(fn, "bytes after the body");
  *out = std::move(members);
  return PLX_OK;
}

}  // namespace

std::vector<uint8_t> encode_payload(std::span<const uint8_t> earlier, const uint8_t *data, size_t size) {
  while (size > 0 && data[size - 1] == 0) --size;  // trailing zeros are implied
  std::vector<uint8_t> code;
  for (size_t i = 0; i < size;) {
    const Match m = longest_match(earlier, data + i, size - i);
    const bool copy = plain_cost(data + i, m.count) > copy_token_bytes;
    i += copy ? copy_token(m, &code) : plain_token(data + i, size - i, &code);
  }
  return code;
}

bool decode_payload(std::span<const uint8_t> code, std::span<const uint8_t> earlier, uint8_t *out, size_t size) {
  std::memset(out, 0, size);
  Reader r{code.data(), code.data() + code.size()};
  size_t at = 0;
  for (const uint8_t *b = nullptr; r.take(1, &b);) {
    if (*b == 0) {
      if (!decode_escape(&r, earlier, out, size, &at)) return false;
    } else if (at < size) {
      out[at++] = *b;
    } else {
      return false;
    }
  }
  return true;
}

plx_status pack_composite_id(const std::vector<CompositeIdMember> &members, plx_unique_id *out) {
  if (plx_status s = check_members(members)) return s;
  const std::vector<uint8_t> body = encode_body(members);
  if (body.size() > body_capacity)
    return core::fail(PLX_ERR_UNSUPPORTED, "auto: the ids of its {} backends need {} bytes, more than "
                      "the {} a plx_unique_id has room for; open fewer backends (PLEXUS_BACKEND, "
                      "PLEXUS_TUNE)", members.size(), body.size(), body_capacity);
  *out = seal(body, members.size());
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
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: id has composite version {}, this loader reads only "
                      "{}: every rank must run the same plexus build", fn, id.bytes[16],
                      composite_id_version);
  return read_body(fn, id, out);
}

}  // namespace plexus::loader
