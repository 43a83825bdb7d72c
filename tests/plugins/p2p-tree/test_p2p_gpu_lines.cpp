// p2p-tree's wire protocols under load, on every GPU (up to 4; skipped with
// fewer than two): LL and LL128 one-shots and the LL128 two-shot launched
// back to back with no host synchronisation between them (a torn LL128
// line, or a stale line taken for a fresh one, shows as a wrong element;
// the two-shot's runs of several launches included), and the two-shot with
// copy blocks. Every output is
// poisoned first and compared element by element with core's CPU reduction.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using namespace plexus::test::p2p;  // Stream, Device, input_of, reference, check_same

constexpr int kBackToBack = 24;

// kBackToBack all-reduces of `count` elements (algorithm hint `algo`), each
// with its own random inputs and its own poisoned output, queued at once,
// then checked.
void check_back_to_back(plx_comm_h comm, int rank, int nranks, plx_dtype dtype, plx_reduce_op op, uint64_t count,
                        int32_t algo, uint32_t round, const Stream &stream) {
  const size_t es = plx_dtype_size(dtype), bytes = count * es;
  std::vector<std::vector<Bytes>> inputs(kBackToBack);
  std::vector<std::unique_ptr<Device>> in, out;
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = algo;
  for (int k = 0; k < kBackToBack; ++k) {
    for (int r = 0; r < nranks; ++r) inputs[k].push_back(input_of(r, dtype, count, round * 1000 + k));
    in.push_back(std::make_unique<Device>(bytes + es));
    out.push_back(std::make_unique<Device>(bytes + es));
    in[k]->put(es, inputs[k][rank]);  // unaligned by one element
    out[k]->put(0, Bytes(bytes + es, 0xA5));
  }
  for (int k = 0; k < kBackToBack; ++k)
    PLX_OK_OR_FAIL(plx_all_reduce(comm, in[k]->p + es, out[k]->p + es, count, dtype, op, &opts, stream.s));
  stream.sync();
  for (int k = 0; k < kBackToBack; ++k)
    check_same(out[k]->get(es, bytes), reference(dtype, op, inputs[k], count), es,
               std::string(plx_dtype_string(dtype)) + " count " + std::to_string(count) + " call " + std::to_string(k));
}

using Sizes = std::vector<uint64_t>;
const Sizes kLineSizes = {8, 480, 4096, 65536 + 8, 300000};

void check_lines(plx_comm_h comm, int rank, int nranks, int32_t algo, const Sizes &sizes) {
  Stream stream;
  uint32_t round = 0;
  for (uint64_t bytes : sizes)
    for (plx_dtype dtype : {PLX_BFLOAT16, PLX_FLOAT32, PLX_INT8, PLX_FLOAT64})
      check_back_to_back(comm, rank, nranks, dtype, dtype == PLX_INT8 ? PLX_MAX : PLX_SUM,
                         std::max<uint64_t>(1, bytes / plx_dtype_size(dtype)), algo, ++round, stream);
}

int ranks_for_lines() { return std::min(cuda_devices(), 4); }

using Settings = std::vector<std::pair<const char *, const char *>>;

// Runs check_lines with the settings in every rank (set before the ranks
// fork, removed after).
void run_lines(const char *test_case, const Settings &settings, int32_t algo, const Sizes &sizes = kLineSizes) {
  const int nranks = ranks_for_lines();
  if (nranks < 2) {
    plexus::test::skip_case(std::string("fewer than two GPUs for ") + test_case);
    return;
  }
  for (const auto &[name, value] : settings) setenv(name, value, 1);
  run_p2p_ranks(test_case, nranks, [nranks, algo, &sizes](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    check_lines(comm, rank, nranks, algo, sizes);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
  for (const auto &setting : settings) unsetenv(setting.first);
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.ll128_lines_back_to_back") {
  run_lines("plugins.p2p_tree.gpu.ll128_lines_back_to_back", {{"PLEXUS_P2P_TREE_LL128_MIN_BYTES", "0"}},
            PLX_ALGO_ONE_SHOT);
}

TEST_CASE("plugins.p2p_tree.gpu.ll_lines_back_to_back") {
  run_lines("plugins.p2p_tree.gpu.ll_lines_back_to_back", {{"PLEXUS_P2P_TREE_LL128", "0"}}, PLX_ALGO_ONE_SHOT);
}

// Every size through the LL128 two-shot, in slots of 64 KiB of payload, so
// 300000 bytes take several launches (60 KiB per rank and launch).
TEST_CASE("plugins.p2p_tree.gpu.ll128_two_shot_back_to_back") {
  run_lines("plugins.p2p_tree.gpu.ll128_two_shot_back_to_back",
            {{"PLEXUS_P2P_TREE_ONESHOT_MAX_BYTES", "64K"}, {"PLEXUS_P2P_TREE_ALGO", "ll128_two_shot"}}, PLX_ALGO_AUTO);
}

// The two-shot with copy blocks: 4 workers and 3 copy blocks (copy block 0
// serves workers 0 and 3), 4 MiB slots, so shares of 4 rounds (from 3 MiB)
// and runs of several launches (9 MiB), each round copied out while the
// workers go on; the small sizes take the one-round kernel.
TEST_CASE("plugins.p2p_tree.gpu.two_shot_copy_blocks_back_to_back") {
  run_lines("plugins.p2p_tree.gpu.two_shot_copy_blocks_back_to_back",
            {{"PLEXUS_P2P_TREE_ALGO", "two_shot"}, {"PLEXUS_P2P_TREE_SLOT_BYTES", "4M"},
             {"PLEXUS_P2P_TREE_MAX_BLOCKS", "4"}, {"PLEXUS_P2P_TREE_COPY_BLOCKS", "3"}},
            PLX_ALGO_AUTO, {8, 65536 + 8, 300000, (3 << 20) + 24, (9 << 20) + 40});
}
