#include "tools/plexus-bench/columns.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#if PLEXUS_BENCH_HAVE_NCCL
#include "tools/plexus-bench/raw_nccl.hpp"
#endif

namespace plexus::bench {
namespace {

int cannot(const std::string &message) {
  std::fprintf(stderr, "plexus-bench: %s\n", message.c_str());
  return 2;
}

std::string find_on_path(const char *program) {
  const char *path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    const size_t colon = std::min(dirs.find(':', at), dirs.size());
    const std::string candidate = dirs.substr(at, colon - at) + "/" + program;
    if (colon > at && access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return "";
}

// What a backend must offer for this run, or "" when it does.
std::string missing_memory(const Options &o, const plx_backend_props &p) {
  if (on_device(o) && !(p.mem_kind_mask & PLX_BIT(PLX_MEM_DEVICE)))
    return "takes no device memory: measure it with --mem host or shared_host";
  if (o.mem == Mem::device_pool && !(p.alloc_kind_mask & PLX_BIT(PLX_MEM_DEVICE)))
    return "has no device pool (plx_mem_alloc of PLX_MEM_DEVICE): use --mem device";
  if (!on_device(o) && !(p.mem_kind_mask & PLX_BIT(PLX_MEM_HOST)))
    return "takes no host memory: measure it with --mem device";
  return "";
}

std::string missing(const Options &o, const plx_backend_props &p) {
  if (std::string why = missing_memory(o, p); !why.empty()) return why;
  if (is_queue(o)) return p.capabilities & PLX_CAP_QUEUE ? "" : "has no queues (PLX_CAP_QUEUE)";
  if (!(p.capabilities & PLX_CAP_COLL(coll_kind(o.coll)))) return fmt::format("has no {}", coll_name(o.coll));
  if (!(p.dtype_mask & PLX_BIT(o.dtype))) return fmt::format("has no dtype {}", dtype_name(o.dtype));
  if (is_reduction(o.coll) && !(p.reduce_op_mask & PLX_BIT(o.redop)))
    return fmt::format("has no reduction op {}", redop_name(o.redop));
  return "";
}

bool default_is_auto(const std::string &spec) {
  const char *env = std::getenv("PLEXUS_BACKEND");
  return spec.empty() && (env == nullptr || *env == '\0' || std::string_view(env) == "auto");
}

// Until auto routes by memory kind (a composite communicator), the default
// backend of a host-memory run on a GPU machine would be a device-only
// plugin: auto then moves on past the backends that cannot take the
// memory measured ("^nccl" and so on), as a user would exclude them.
int open_default_for_memory(const Options &o, plx_backend_h *backend, plx_backend_props *props) {
  std::string excluded;
  for (int tries = 0; tries < 8; ++tries) {
    const char *spec = excluded.empty() ? nullptr : excluded.c_str();
    if (plx_status s = plx_backend_open(spec, backend))
      return cannot(fmt::format("cannot open the default backend{}: {}: {}", excluded.empty() ? "" : " (" + excluded + ")",
                                plx_status_string(s), plx_last_error()));
    plx_backend_props_get(*backend, props);
    if (missing_memory(o, *props).empty()) return 0;
    excluded += (excluded.empty() ? "^" : ",") + std::string(props->name);
    plx_backend_close(*backend);
    *backend = nullptr;
  }
  return cannot("no backend takes the memory measured: " + excluded);
}

int open_plexus(const Options &o, const std::string &spec, Column *c) {
  const std::string shown = spec.empty() ? "the default backend" : "backend '" + spec + "'";
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  if (default_is_auto(spec)) {
    if (int code = open_default_for_memory(o, &c->backend, &props)) return code;
  } else {
    if (plx_status s = plx_backend_open(spec.empty() ? nullptr : spec.c_str(), &c->backend))
      return cannot(fmt::format("cannot open {}: {}: {}", shown, plx_status_string(s), plx_last_error()));
    plx_backend_props_get(c->backend, &props);
  }
  c->label = props.name;
  // The ranks reopen the column by name, or by path when it was given as one
  // (here or through PLEXUS_BACKEND): a plugin outside the search path has
  // no name the ranks could find.
  const char *env = std::getenv("PLEXUS_BACKEND");
  const bool by_path = spec.rfind('/', 0) == 0 || (spec.empty() && env != nullptr && env[0] == '/');
  c->open_spec = by_path ? props.path : props.name;
  c->detail = fmt::format("{} {}.{}.{} ({})", props.name, props.version_major, props.version_minor,
                          props.version_patch, props.build_info ? props.build_info : "");
  if (const std::string why = missing(o, props); !why.empty()) return cannot(fmt::format("{} {}", c->label, why));
  plx_unique_id id{};
  if (plx_status s = plx_get_unique_id(c->backend, &id))
    return cannot(fmt::format("{}: plx_get_unique_id: {}: {}", c->label, plx_status_string(s), plx_last_error()));
  for (uint8_t b : id.bytes) c->id_hex += fmt::format("{:02x}", b);
  return 0;
}

std::string mpi_unsupported(const Options &o) {
  if (o.dtype == PLX_FLOAT16 || o.dtype == PLX_BFLOAT16)
    return fmt::format("Open MPI has no {} type", dtype_name(o.dtype));
  if (is_reduction(o.coll) && o.redop == PLX_AVG) return "MPI has no avg reduction";
  return "";
}

int open_mpi(const Options &o, Column *c) {
  c->label = mpi_peer;
  c->mpi = true;
  // Checked first, so the answer is the same with or without an MPI build.
  if (is_queue(o))
    return cannot("the mpi peer does not apply to --op queue: MPI has no single-writer, many-reader "
                  "message queue to compare with; drop 'mpi' from --backends");
  if (on_device(o))
    return cannot(fmt::format("the mpi peer measures host buffers only, not --mem {}; compare device buffers "
                              "with raw-nccl", mem_name(o.mem)));
#if PLEXUS_BENCH_HAVE_MPI
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  c->mpi_exe = (self.parent_path() / "plexus-bench-mpi").string();
  c->mpirun = find_on_path("mpirun");
  if (access(c->mpi_exe.c_str(), X_OK) != 0) return cannot("the mpi peer: " + c->mpi_exe + " is missing");
  if (c->mpirun.empty()) return cannot("the mpi peer: no mpirun on PATH (apt-get install openmpi-bin)");
  if (const std::string why = mpi_unsupported(o); !why.empty()) return cannot("the mpi peer: " + why);
  return 0;
#else
  (void)o;
  return cannot("the mpi peer: plexus-bench was built without MPI (apt-get install libopenmpi-dev "
                "openmpi-bin, then meson setup --reconfigure)");
#endif
}

int open_raw_nccl(const Options &o, Column *c) {
  c->label = c->open_spec = raw_nccl_peer;
  if (is_queue(o)) return cannot("the raw-nccl peer does not apply to --op queue: NCCL has no message queue");
  if (!on_device(o))
    return cannot(fmt::format("the raw-nccl peer measures device buffers: add --mem device (not --mem {})",
                              mem_name(o.mem)));
#if PLEXUS_BENCH_HAVE_NCCL
  plx_unique_id id{};
  std::string why;
  if (!raw_nccl_unique_id(&id, &c->detail, &why)) return cannot("the raw-nccl peer: " + why);
  for (uint8_t b : id.bytes) c->id_hex += fmt::format("{:02x}", b);
  return 0;
#else
  return cannot("the raw-nccl peer: plexus-bench was built without NCCL (install NCCL, then meson setup "
                "--reconfigure)");
#endif
}

int open_column(const Options &o, const std::string &spec, Column *c) {
  if (spec == mpi_peer) return open_mpi(o, c);
  if (spec == raw_nccl_peer) return open_raw_nccl(o, c);
  return open_plexus(o, spec, c);
}

}  // namespace

plx_coll_kind coll_kind(Coll c) {
  switch (c) {
    case Coll::all_reduce: return PLX_COLL_ALL_REDUCE;
    case Coll::reduce: return PLX_COLL_REDUCE;
    case Coll::broadcast: return PLX_COLL_BROADCAST;
    case Coll::all_gather: return PLX_COLL_ALL_GATHER;
    case Coll::reduce_scatter: return PLX_COLL_REDUCE_SCATTER;
    default: return PLX_COLL_GATHER;
  }
}

int open_columns(const Options &o, std::vector<Column> *out) {
  const std::vector<std::string> specs = o.backends.empty() ? std::vector<std::string>{""} : o.backends;
  for (const std::string &spec : specs) {
    out->emplace_back();
    if (int code = open_column(o, spec, &out->back())) return code;
  }
  for (size_t i = 0; i < out->size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if ((*out)[i].label == (*out)[j].label)
        return cannot(fmt::format("columns {} and {} are both {}", j + 1, i + 1, (*out)[i].label));
  return 0;
}

void close_columns(std::vector<Column> *cols) {
  for (Column &c : *cols)
    if (c.backend) plx_backend_close(c.backend), c.backend = nullptr;
}

std::string ids_env(const std::vector<Column> &cols) {
  std::string out;
  for (const Column &c : cols)
    if (!c.mpi) out += (out.empty() ? "" : ",") + c.open_spec + "=" + c.id_hex;
  return out;
}

bool parse_ids_env(const std::string &text, std::vector<std::pair<std::string, plx_unique_id>> *out) {
  for (size_t at = 0; at < text.size();) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string entry = text.substr(at, comma - at);
    const size_t eq = entry.rfind('=');
    if (eq == std::string::npos || entry.size() - eq - 1 != 2 * PLX_UNIQUE_ID_BYTES) return false;
    plx_unique_id id{};
    for (size_t i = 0; i < PLX_UNIQUE_ID_BYTES; ++i)
      id.bytes[i] = static_cast<uint8_t>(std::strtoul(entry.substr(eq + 1 + 2 * i, 2).c_str(), nullptr, 16));
    out->emplace_back(entry.substr(0, eq), id);
    at = comma + 1;
  }
  return true;
}

std::vector<int32_t> plexus_column_numbers(const Options &o) {
  if (o.backends.empty()) return {0};
  std::vector<int32_t> out;
  for (size_t i = 0; i < o.backends.size(); ++i)
    if (o.backends[i] != mpi_peer) out.push_back(static_cast<int32_t>(i));
  return out;
}

}  // namespace plexus::bench
