// PLEXUS_P2P_TREE_* parameters (declared in p2p_plugin.cpp's table): a bad
// value is an error naming the variable, never a silent default.
#include <string_view>

#include "core/params.hpp"
#include "core/status.hpp"
#include "plugins/p2p-tree/p2p_backend.hpp"

namespace plexus::p2p_tree {
namespace {

constexpr const char *kPlugin = "p2p-tree";

plx_status size_param(const plx_host_services &s, const char *name, uint64_t lo, uint64_t hi, uint64_t *out) {
  const char *text = s.param_get(kPlugin, name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_size(text);
  if (!v || *v < lo || *v > hi)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_{}={} must be a size from {} "
                      "to {} bytes (K, M, G suffixes allowed)", name, text, lo, hi);
  *out = *v;
  return PLX_OK;
}

plx_status int_param(const plx_host_services &s, const char *name, int64_t lo, int64_t hi, int32_t *out) {
  const char *text = s.param_get(kPlugin, name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_int(text);
  if (!v || *v < lo || *v > hi)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_{}={} must be an integer "
                      "from {} to {}", name, text, lo, hi);
  *out = static_cast<int32_t>(*v);
  return PLX_OK;
}

plx_status bool_param(const plx_host_services &s, const char *name, bool *out) {
  const char *text = s.param_get(kPlugin, name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_bool(text);
  if (!v)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_{}={} must be 0 or 1", name, text);
  *out = *v;
  return PLX_OK;
}

plx_status algo_param(const plx_host_services &s, int32_t *out) {
  const char *text = s.param_get(kPlugin, "ALGO");
  if (text == nullptr) return PLX_OK;
  const std::string_view v(text);
  if (v.empty() || v == "auto") *out = PLX_ALGO_AUTO;
  else if (v == "one_shot") *out = PLX_ALGO_ONE_SHOT;
  else if (v == "one_shot_bulk") *out = kAlgoOneShotBulk;
  else if (v == "two_shot") *out = PLX_ALGO_TWO_SHOT;
  else if (v == "ll128_two_shot") *out = kAlgoLL128TwoShot;
  else if (v == "copy") *out = kAlgoCopy;
  else if (v == "ring") *out = PLX_ALGO_RING;
  else if (v == "tree") *out = PLX_ALGO_TREE;
  else if (v == "kary_tree") *out = PLX_ALGO_KARY_TREE;
  else
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_ALGO={} must be auto, "
                      "one_shot, one_shot_bulk, two_shot, ll128_two_shot, copy, ring, tree or kary_tree", text);
  return PLX_OK;
}

plx_status unlink_param(const plx_host_services &s, uint64_t *out) {
  const char *text = s.param_get(kPlugin, "UNLINK");
  if (text == nullptr || parse_unlink(text, out)) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_UNLINK={} must be a comma list "
                    "of rank pairs a-b (distinct ranks 0 to 7), e.g. 0-1,2-3", text);
}

// COPY_MIN_BYTES: a size, or "off" (never by size).
plx_status copy_min_param(const plx_host_services &s, uint64_t *out) {
  const char *text = s.param_get(kPlugin, "COPY_MIN_BYTES");
  if (text == nullptr) return PLX_OK;
  if (std::string_view(text) != "off") return size_param(s, "COPY_MIN_BYTES", 0, UINT64_MAX - 1, out);
  *out = UINT64_MAX;
  return PLX_OK;
}

}  // namespace

plx_status read_params(const plx_host_services &s, Params *p) {
  if (plx_status st = size_param(s, "ONESHOT_MAX_BYTES", 0, uint64_t{1} << 40, &p->oneshot_max_bytes)) return st;
  if (plx_status st = size_param(s, "SLOT_BYTES", 64 << 10, uint64_t{1} << 30, &p->slot_bytes)) return st;
  if (plx_status st = size_param(s, "BULK_MAX_BYTES", 0, uint64_t{1} << 40, &p->bulk_max_bytes)) return st;
  if (p->slot_bytes % 4096 != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_SLOT_BYTES={} must be a "
                      "multiple of 4096", p->slot_bytes);
  if (plx_status st = algo_param(s, &p->forced_algo)) return st;
  if (plx_status st = int_param(s, "TREE_ARITY", 2, kernels::kMaxRanks - 1, &p->tree_arity)) return st;
  if (plx_status st = unlink_param(s, &p->unlinked)) return st;
  if (plx_status st = int_param(s, "MAX_BLOCKS", 0, kernels::kMaxBlocks, &p->max_blocks)) return st;
  if (plx_status st = int_param(s, "WATCHDOG_POLL_MS", 1, 10000, &p->watchdog_poll_ms)) return st;
  if (plx_status st = bool_param(s, "ENABLE", &p->enable)) return st;
  if (plx_status st = bool_param(s, "PDL", &p->dependent_launch)) return st;
  if (plx_status st = bool_param(s, "SHARED_GPU", &p->shared_gpu)) return st;
  if (plx_status st = int_param(s, "LL_THREADS", 32, kernels::kThreads, &p->ll_threads)) return st;
  if (p->ll_threads % 32 != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_P2P_TREE_LL_THREADS={} must be a "
                      "multiple of 32", p->ll_threads);
  if (plx_status st = int_param(s, "COPY_BLOCKS", 0, kernels::kMaxBlocks, &p->copy_blocks)) return st;
  if (plx_status st = int_param(s, "ROUNDS", 1, kernels::kMaxRounds, &p->rounds)) return st;
  if (plx_status st = bool_param(s, "PROBE_PEER_COPIES", &p->probe_peer_copies)) return st;
  if (plx_status st = bool_param(s, "LL128", &p->ll128)) return st;
  if (plx_status st = size_param(s, "LL128_MIN_BYTES", 0, uint64_t{1} << 40, &p->ll128_min_bytes)) return st;
  if (plx_status st = size_param(s, "LL128_TWO_SHOT_MAX_BYTES", 0, uint64_t{1} << 40, &p->ll128_two_shot_max_bytes))
    return st;
  if (plx_status st = copy_min_param(s, &p->copy_min_bytes)) return st;
  if (plx_status st = int_param(s, "COPY_PIECES", 1, kernels::kCopyMaxPieces, &p->copy_pieces)) return st;
  if (plx_status st = int_param(s, "COPY_STREAMS", 0, kernels::kMaxRanks - 1, &p->copy_streams)) return st;
  if (const char *text = s.param_get(nullptr, "DEFRAG_THRESHOLD")) {
    const auto v = core::parse_double(text);
    if (!v || !(*v >= 0.0 && *v <= 1.0))
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: PLEXUS_DEFRAG_THRESHOLD={} must be a "
                        "fraction between 0 and 1", text);
    p->defrag_threshold = *v;
  }
  return PLX_OK;
}

}  // namespace plexus::p2p_tree
