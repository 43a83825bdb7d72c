// The topology session (PLX-P-19), with PLX_CAP_TOPOLOGY: rank 0 asks
// plx_backend_topology for the summary and the JSON. The summary must be
// sane, the JSON one object (with a "gpus" array of gpu_count entries when
// the backend sees GPUs), and the buffer rules those of plx_load_report:
// capacity 0 gives *needed (the size with the NUL), a smaller buffer is
// truncated and NUL-terminated, never written past its capacity, and the
// call still returns PLX_OK. The other ranks have nothing to do.
#include <cstring>
#include <vector>

#include "sessions.hpp"
#include "tools/plexus-info/json_value.hpp"

namespace plexus::conformance {
namespace {

constexpr char kSentinel = '\x5a';
constexpr size_t kGuard = 64;  // bytes past the capacity that must stay untouched

bool in_tristate(int32_t v) { return v >= -1 && v <= 1; }

void summary_case(RankContext &ctx, plx_topology_info *info) {
  CaseScope c(ctx.out, "PLX-P-19", "topology", "summary");
  *info = plx_topology_info{};
  info->struct_size = sizeof(*info);
  size_t needed = 0;
  const plx_status s = plx_backend_topology(ctx.backend, info, nullptr, 0, &needed);
  if (!c.expect(s == PLX_OK, "plx_backend_topology(info only) returned {}", status_text(s))) return;
  const plx_topology_info &t = *info;
  c.expect(t.gpu_count >= 0 && t.numa_node_count >= 1 && t.core_count >= 1 && t.pu_count >= t.core_count,
           "gpu_count {}, numa_node_count {}, core_count {}, pu_count {}: want gpus >= 0, NUMA nodes >= 1, "
           "hardware threads >= cores >= 1",
           t.gpu_count, t.numa_node_count, t.core_count, t.pu_count);
  c.expect(in_tristate(t.p2p_all_pairs) && in_tristate(t.nvlink_all_pairs),
           "p2p_all_pairs {} and nvlink_all_pairs {} must each be -1, 0 or 1", t.p2p_all_pairs, t.nvlink_all_pairs);
  c.expect(needed >= 3, "*needed is {} with capacity 0, want the JSON's size with its NUL (at least 3, \"{{}}\")",
           needed);
}

// The JSON whole: asked for its size first, then read into a buffer with
// room to spare (a topology may grow between calls: a GPU's state).
bool read_whole(RankContext &ctx, CaseScope &c, std::string *json) {
  size_t needed = 0, again = 0;
  plx_status s = plx_backend_topology(ctx.backend, nullptr, nullptr, 0, &needed);
  if (!c.expect(s == PLX_OK && needed > 0, "capacity 0: {} with *needed {}", status_text(s), needed)) return false;
  std::vector<char> buf(needed + 4096 + kGuard, kSentinel);
  s = plx_backend_topology(ctx.backend, nullptr, buf.data(), needed + 4096, &again);
  if (!c.expect(s == PLX_OK, "capacity {}: {}", needed + 4096, status_text(s))) return false;
  const char *nul = static_cast<const char *>(std::memchr(buf.data(), '\0', needed + 4096));
  if (!c.expect(nul != nullptr, "the JSON is not NUL-terminated within the capacity")) return false;
  json->assign(buf.data(), static_cast<size_t>(nul - buf.data()));
  return c.expect(again == json->size() + 1, "*needed is {} but the JSON has {} bytes and its NUL", again,
                  json->size() + 1);
}

void json_case(RankContext &ctx, const plx_topology_info &info) {
  CaseScope c(ctx.out, "PLX-P-19", "topology", "JSON");
  std::string json;
  if (!read_whole(ctx, c, &json)) return;
  const std::optional<info::JsonValue> root = info::parse_json(json);
  if (!c.expect(root.has_value(), "not valid JSON: {}", json.substr(0, 200))) return;
  if (!c.expect(root->kind == info::JsonValue::Kind::object, "the JSON is not an object: {}", json.substr(0, 200)))
    return;
  if (info.gpu_count <= 0) return;
  const info::JsonValue *gpus = root->get("gpus");
  c.expect(gpus && gpus->kind == info::JsonValue::Kind::array && gpus->items.size() == size_t(info.gpu_count),
           "gpu_count is {} but the JSON has {}", info.gpu_count,
           !gpus ? std::string("no \"gpus\"")
                 : fmt::format("\"gpus\" with {} entries", gpus->kind == info::JsonValue::Kind::array
                                                                ? gpus->items.size()
                                                                : size_t{0}));
}

// A buffer of `capacity` bytes, smaller than the JSON: the first
// capacity - 1 bytes and a NUL, nothing past it, PLX_OK, the full size.
void truncation_case(RankContext &ctx, size_t capacity) {
  CaseScope c(ctx.out, "PLX-P-19", "topology", fmt::format("truncated to {} byte{}", capacity, capacity == 1 ? "" : "s"));
  size_t needed = 0;
  std::vector<char> buf(capacity + kGuard, kSentinel);
  const plx_status s = plx_backend_topology(ctx.backend, nullptr, buf.data(), capacity, &needed);
  if (!c.expect(s == PLX_OK, "plx_backend_topology returned {}, want PLX_OK (truncation is no error)", status_text(s)))
    return;
  c.expect(needed > capacity, "*needed is {}, want the whole JSON's size (more than the capacity {})", needed, capacity);
  c.expect(buf[capacity - 1] == '\0', "the last byte of the buffer is {:#04x}, want the NUL",
           static_cast<unsigned char>(buf[capacity - 1]));
  c.expect(std::memchr(buf.data(), '\0', capacity - 1) == nullptr, "a NUL before the end of the truncated text");
  for (size_t k = capacity; k < buf.size(); ++k)
    if (!c.expect(buf[k] == kSentinel, "byte {} past a capacity of {} was written", k - capacity, capacity)) return;
}

}  // namespace

void run_topology_session(RankContext &ctx) {
  if (ctx.rank() != 0) return;
  plx_topology_info info{};
  summary_case(ctx, &info);
  json_case(ctx, info);
  size_t needed = 0;
  if (plx_backend_topology(ctx.backend, nullptr, nullptr, 0, &needed) != PLX_OK || needed < 3) return;
  truncation_case(ctx, 1);
  truncation_case(ctx, needed / 2);
}

}  // namespace plexus::conformance
