// Which memory the run tests, from the backend's description and --mem:
// the sources of the data cases (a memory kind, from the kit or from the
// backend's pool) and the one kind the other sessions use for their own
// calls. Host kinds need nothing; pinned-host and device memory need a GPU
// per rank and a kit built with CUDA (device.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/plexus.h"

namespace plexus::conformance {

struct MemSource {
  plx_mem_kind kind = PLX_MEM_HOST;
  bool pool = false;  // from plx_mem_alloc; else the kit allocates (malloc, cudaMalloc, cudaHostAlloc)
};

// "host", "shared_host", "pinned_host", "device"; "?" for anything else.
const char *mem_kind_name(plx_mem_kind kind);
// "device", "device pool", ...
std::string mem_source_name(MemSource source);
// Memory the host cannot read directly: data goes through copies.
bool is_device_memory(plx_mem_kind kind);
// Memory that needs CUDA (a GPU, a stream).
bool needs_cuda(plx_mem_kind kind);
// "host,device" -> PLX_BIT(HOST) | PLX_BIT(DEVICE); false on an unknown name.
bool parse_mem_kinds(std::string_view text, uint32_t *mask);

struct MemoryPlan {
  std::vector<MemSource> data;  // the data cases run once per source
  plx_mem_kind work = -1;  // memory of the other sessions' calls; -1: none usable
  bool cuda = false;  // some planned memory needs a GPU per rank
  std::vector<std::string> notes;  // kinds left out, and why
};

// `wanted`: the kinds --mem allows (every bit when not given); `explicit_mem`
// when --mem was given, so kinds it names that the backend lacks get a note.
MemoryPlan plan_memory(const plx_backend_props &props, uint32_t wanted, bool explicit_mem);

}  // namespace plexus::conformance
