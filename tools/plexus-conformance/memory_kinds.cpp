#include "memory_kinds.hpp"

#include <fmt/format.h>

#include "device.hpp"

namespace plexus::conformance {
namespace {

bool has(uint32_t mask, int32_t bit) { return (mask >> bit) & 1u; }

// The kind the sessions other than data use. A stream-ordered backend is
// tested on device memory even when it also takes host memory: its error
// paths (timeouts, lost peers, abort) are the stream-ordered ones.
plx_mem_kind work_kind(const plx_backend_props &p, const std::vector<MemSource> &data) {
  auto planned = [&](plx_mem_kind k) {
    for (const MemSource &s : data)
      if (s.kind == k && !s.pool) return true;
    return false;
  };
  if ((p.capabilities & PLX_CAP_STREAM_ORDERED) && planned(PLX_MEM_DEVICE)) return PLX_MEM_DEVICE;
  for (const plx_mem_kind k : {PLX_MEM_HOST, PLX_MEM_DEVICE, PLX_MEM_PINNED_HOST})
    if (planned(k)) return k;
  return -1;
}

// Pinned-host or device memory: the kit's own buffers, and the backend's
// pool when it offers that kind.
void plan_cuda_kind(const plx_backend_props &p, plx_mem_kind kind, MemoryPlan *plan) {
  if (!device::built()) {
    plan->notes.push_back(fmt::format("{} buffers skipped: plexus-conformance was built without CUDA",
                                      mem_kind_name(kind)));
    return;
  }
  plan->data.push_back({kind, false});
  if (has(p.alloc_kind_mask, kind)) plan->data.push_back({kind, true});
  plan->cuda = true;
}

}  // namespace

const char *mem_kind_name(plx_mem_kind kind) {
  static const char *const names[] = {"host", "shared_host", "pinned_host", "device"};
  return kind >= 0 && kind < PLX_MEM_KIND_COUNT ? names[kind] : "?";
}

std::string mem_source_name(MemSource source) {
  return std::string(mem_kind_name(source.kind)) + (source.pool && source.kind != PLX_MEM_SHARED_HOST ? " pool" : "");
}

bool is_device_memory(plx_mem_kind kind) { return kind == PLX_MEM_DEVICE; }
bool needs_cuda(plx_mem_kind kind) { return kind == PLX_MEM_DEVICE || kind == PLX_MEM_PINNED_HOST; }

bool parse_mem_kinds(std::string_view text, uint32_t *mask) {
  *mask = 0;
  for (size_t at = 0; at <= text.size();) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string_view name = text.substr(at, comma - at);
    int32_t found = -1;
    for (plx_mem_kind k = 0; k < PLX_MEM_KIND_COUNT; ++k)
      if (name == mem_kind_name(k)) found = k;
    if (found < 0) return false;
    *mask |= PLX_BIT(found);
    at = comma + 1;
  }
  return *mask != 0;
}

MemoryPlan plan_memory(const plx_backend_props &p, uint32_t wanted, bool explicit_mem) {
  MemoryPlan plan;
  for (plx_mem_kind kind = 0; kind < PLX_MEM_KIND_COUNT; ++kind) {
    const bool accepted = has(p.mem_kind_mask, kind);
    if (!has(wanted, kind)) {
      if (accepted) plan.notes.push_back(fmt::format("{} buffers skipped: not in --mem", mem_kind_name(kind)));
      continue;
    }
    if (!accepted) {
      if (explicit_mem)
        plan.notes.push_back(fmt::format("--mem names {}, which the backend does not accept (mem_kind_mask); "
                                         "not tested",
                                         mem_kind_name(kind)));
      continue;
    }
    if (kind == PLX_MEM_HOST) plan.data.push_back({kind, false});
    if (kind == PLX_MEM_SHARED_HOST && has(p.alloc_kind_mask, kind)) plan.data.push_back({kind, true});
    if (kind == PLX_MEM_SHARED_HOST && !has(p.alloc_kind_mask, kind))
      plan.notes.push_back(
          "shared_host buffers skipped: plx_mem_alloc does not offer PLX_MEM_SHARED_HOST (alloc_kind_mask)");
    if (needs_cuda(kind)) plan_cuda_kind(p, kind, &plan);
  }
  plan.work = work_kind(p, plan.data);
  if (plan.work < 0)
    plan.notes.push_back("no memory the kit can allocate for the sessions beyond data; they are skipped");
  return plan;
}

}  // namespace plexus::conformance
