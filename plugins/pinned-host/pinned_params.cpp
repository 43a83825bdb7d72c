// PLEXUS_PINNED_HOST_* parameters (declared in pinned_plugin.cpp's table):
// a bad value is an error naming the variable, never a silent default.
#include "plugins/pinned-host/pinned_params.hpp"

#include <string_view>

#include "core/params.hpp"
#include "core/status.hpp"

namespace plexus::pinned_host {
namespace {

constexpr const char *kPlugin = "pinned-host";

plx_status size_param(const plx_host_services &s, const char *name, uint64_t lo, uint64_t hi, uint64_t multiple,
                      uint64_t *out) {
  const char *text = s.param_get(kPlugin, name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_size(text);
  if (!v || *v < lo || *v > hi || *v % multiple != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: PLEXUS_PINNED_HOST_{}={} must be a size from {} to "
                      "{} bytes, a multiple of {} (K, M, G suffixes allowed)", name, text, lo, hi, multiple);
  *out = *v;
  return PLX_OK;
}

plx_status int_param(const plx_host_services &s, const char *name, int64_t lo, int64_t hi, int32_t *out) {
  const char *text = s.param_get(kPlugin, name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_int(text);
  if (!v || *v < lo || *v > hi)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: PLEXUS_PINNED_HOST_{}={} must be an integer "
                      "from {} to {}", name, text, lo, hi);
  *out = static_cast<int32_t>(*v);
  return PLX_OK;
}

plx_status algo_param(const plx_host_services &s, int32_t *out) {
  const char *text = s.param_get(kPlugin, "ALGO");
  if (text == nullptr) return PLX_OK;
  const std::string_view v(text);
  if (v.empty() || v == "auto") *out = PLX_ALGO_AUTO;
  else if (v == "ll") *out = PLX_ALGO_LOW_LATENCY;
  else if (v == "one_shot") *out = PLX_ALGO_ONE_SHOT;
  else if (v == "two_shot") *out = PLX_ALGO_TWO_SHOT;
  else if (v == "cpu") *out = PLX_ALGO_CPU_STAR;
  else if (v == "copy") *out = PLX_ALGO_COPY;
  else
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: PLEXUS_PINNED_HOST_ALGO={} must be auto, ll, "
                      "one_shot, two_shot, cpu or copy", text);
  return PLX_OK;
}

plx_status wire_param(const plx_host_services &s, int32_t *out) {
  const char *text = s.param_get(kPlugin, "WIRE");
  if (text == nullptr) return PLX_OK;
  const std::string_view v(text);
  if (v.empty() || v == "native") *out = -1;
  else if (v == "bf16" || v == "bfloat16") *out = PLX_BFLOAT16;
  else if (v == "fp16" || v == "float16") *out = PLX_FLOAT16;
  else
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: PLEXUS_PINNED_HOST_WIRE={} must be native, bf16 "
                      "or fp16", text);
  return PLX_OK;
}

plx_status bool_param(const plx_host_services &s, const char *name, bool *out) {
  const char *text = s.param_get(kPlugin, name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_bool(text);
  if (!v)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: PLEXUS_PINNED_HOST_{}={} must be 0 or 1", name, text);
  *out = *v;
  return PLX_OK;
}

plx_status defrag_param(const plx_host_services &s, double *out) {
  const char *text = s.param_get(nullptr, "DEFRAG_THRESHOLD");
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_double(text);
  if (!v || !(*v >= 0.0 && *v <= 1.0))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: PLEXUS_DEFRAG_THRESHOLD={} must be a fraction "
                      "between 0 and 1", text);
  *out = *v;
  return PLX_OK;
}

// A hint this plugin does not implement is ignored (never an error).
int32_t known_or_auto(const Params &p, int32_t algo) {
  const bool known = algo == PLX_ALGO_LOW_LATENCY || algo == PLX_ALGO_ONE_SHOT || algo == PLX_ALGO_TWO_SHOT ||
                     (algo == PLX_ALGO_CPU_STAR && cpu_helper_runs(p)) || (algo == PLX_ALGO_COPY && copy_path_runs(p));
  return known ? algo : PLX_ALGO_AUTO;
}

}  // namespace

plx_status read_params(const plx_host_services &s, Params *p) {
  if (plx_status st = size_param(s, "LL_MAX_BYTES", 0, uint64_t{16} << 20, 8, &p->ll_max_bytes)) return st;
  if (plx_status st = size_param(s, "ONESHOT_MAX_BYTES", 0, uint64_t{1} << 40, 1, &p->oneshot_max_bytes)) return st;
  if (plx_status st = size_param(s, "STAGE_BYTES", 64 << 10, uint64_t{64} << 20, kp::kPage, &p->stage_bytes)) return st;
  if (plx_status st = size_param(s, "CPU_MIN_BYTES", 0, uint64_t{1} << 40, 1, &p->cpu_min_bytes)) return st;
  if (plx_status st = size_param(s, "COPY_MIN_BYTES", 0, uint64_t{1} << 40, 1, &p->copy_min_bytes)) return st;
  if (plx_status st = size_param(s, "COPY_CHUNK_BYTES", 64 << 10, uint64_t{256} << 20, kp::kPage, &p->copy_chunk_bytes))
    return st;
  if (plx_status st = int_param(s, "COPY_STAGES", 2, kp::kMaxCeStages, &p->copy_stages)) return st;
  if (plx_status st = int_param(s, "STAGES", 2, kp::kMaxStages, &p->stages)) return st;
  if (plx_status st = algo_param(s, &p->forced_algo)) return st;
  if (plx_status st = wire_param(s, &p->wire)) return st;
  if (plx_status st = int_param(s, "MAX_BLOCKS", 1, kp::kMaxBlocks, &p->max_blocks)) return st;
  if (plx_status st = int_param(s, "LL_BLOCKS", 1, kp::kMaxBlocks, &p->ll_blocks)) return st;
  if (plx_status st = int_param(s, "WATCHDOG_POLL_MS", 1, 10000, &p->watchdog_poll_ms)) return st;
  if (plx_status st = bool_param(s, "ENABLE", &p->enable)) return st;
  return defrag_param(s, &p->defrag_threshold);
}

// The LL area holds at least one page, so a barrier has its line even with
// LL_MAX_BYTES=0 (which keeps data off the LL path).
kp::Layout layout_of(const Params &p, int32_t nranks) {
  kp::Layout l;
  l.nranks = static_cast<uint32_t>(nranks);
  l.stages = static_cast<uint32_t>(p.stages);
  l.stage_bytes = p.stage_bytes;
  l.ll_bytes = kp::round_up(kp::max_u(p.ll_max_bytes, kp::kPage), kp::kPage);
  l.ce_stages = copy_path_runs(p) ? static_cast<uint32_t>(p.copy_stages) : 0;
  l.ce_bytes = copy_path_runs(p) ? p.copy_chunk_bytes : 0;
  return l;
}

int32_t wire_of(int32_t dtype, int32_t asked, int32_t default_wire) {
  const int32_t w = asked != -1 ? asked : dtype == PLX_FLOAT32 ? default_wire : -1;
  if (w == -1 || w == dtype) return dtype;
  if (dtype == PLX_FLOAT32 && (w == PLX_BFLOAT16 || w == PLX_FLOAT16)) return w;
  return -1;
}

bool cpu_helper_runs(const Params &p) { return p.cpu_min_bytes > 0 || p.forced_algo == PLX_ALGO_CPU_STAR; }
bool copy_path_runs(const Params &p) { return p.copy_min_bytes > 0 || p.forced_algo == PLX_ALGO_COPY; }

// Asked for: the copy engines or the CPU helper where they apply, else LL
// when the payload fits, else the bulk algorithm asked for. Left to us: LL
// when it fits, the copy engines from COPY_MIN_BYTES, the CPU helper from
// CPU_MIN_BYTES, one-shot up to ONESHOT_MAX_BYTES, two-shot above.
// Reduce-scatter has one bulk algorithm (two-shot's first half).
int32_t choose_reduction(const Params &p, int32_t coll, uint64_t count, uint64_t ws, int32_t nranks, int32_t hint,
                         uint32_t bars) {
  const bool scatter = coll == PLX_COLL_REDUCE_SCATTER;
  const bool copy = copy_path_runs(p) && !scatter && bars == 0;
  int32_t asked = known_or_auto(p, p.forced_algo != PLX_ALGO_AUTO ? p.forced_algo : hint);
  if ((asked == PLX_ALGO_COPY && copy) || (asked == PLX_ALGO_CPU_STAR && !scatter)) return asked;
  if (asked == PLX_ALGO_COPY || asked == PLX_ALGO_CPU_STAR) asked = PLX_ALGO_AUTO;  // where they do not apply
  const uint64_t lines = kp::ll_lines_for(count, ws) * (scatter ? nranks : 1);
  if (lines * 8 <= p.ll_max_bytes && (asked == PLX_ALGO_LOW_LATENCY || asked == PLX_ALGO_AUTO))
    return PLX_ALGO_LOW_LATENCY;
  if (scatter) return PLX_ALGO_TWO_SHOT;
  if (asked == PLX_ALGO_ONE_SHOT || asked == PLX_ALGO_TWO_SHOT) return asked;
  if (copy && p.copy_min_bytes > 0 && count * ws >= p.copy_min_bytes) return PLX_ALGO_COPY;
  if (p.cpu_min_bytes > 0 && count * ws >= p.cpu_min_bytes) return PLX_ALGO_CPU_STAR;
  return count * ws <= p.oneshot_max_bytes ? PLX_ALGO_ONE_SHOT : PLX_ALGO_TWO_SHOT;
}

int32_t choose_copy(const Params &p, uint64_t bytes, int32_t hint) {
  const int32_t asked = known_or_auto(p, p.forced_algo != PLX_ALGO_AUTO ? p.forced_algo : hint);
  const bool bulk_asked = asked == PLX_ALGO_ONE_SHOT || asked == PLX_ALGO_TWO_SHOT;
  return bytes <= p.ll_max_bytes && !bulk_asked ? PLX_ALGO_LOW_LATENCY : PLX_ALGO_ONE_SHOT;
}

}  // namespace plexus::pinned_host
