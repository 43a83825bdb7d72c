// One-shot reductions of at most inline_input_bytes (see InlineInput in
// shm_comm.hpp): no slots, one cache-line transfer per peer and step.
#include <cstring>

#include "core/cpu_reduce.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {
namespace {

// This rank's input, or the operator's identity when it contributes nothing.
plx_status write_inline(Op &op, InlineInput &line) {
  if (op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION)
    return core::fill_identity(op.desc.dtype, op.desc.op, line.data, op.desc.count);
  std::memcpy(line.data, op.desc.send, op.desc.count * op.elem_bytes);
  return PLX_OK;
}

// Waits for rank r's input of `step`: polls its line first, then falls back
// to the ordinary wait on its `arrive`, published after the line.
plx_status wait_inline(Op &op, int32_t r, uint32_t step) {
  Comm &c = op.comm;
  SpinBudget &budget = c.spin_budget();
  const int32_t spins = budget.polls();
  const int32_t looks = spin_until(c.control(r).inline_input[step & 1u].step, step + 1, spins);
  budget.waited(looks < 0 ? spins + 1 : looks, spins);
  if (looks >= 0) return PLX_OK;
  return wait_rank(c, r, &RankControl::arrive, step + 1, op.deadline, op.label, true);
}

}  // namespace

bool fits_inline(const Op &op) {
  return op.desc.count * op.elem_bytes <= inline_input_bytes && op.comm.nranks() <= max_sources;
}

// Every rank publishes its input in its line and `arrive`, waits for every
// peer's (also ranks that get no result: a rank reuses its line two steps
// on, only once every peer has published the step between, so has read it),
// then reduces all lines in rank order.
plx_status inline_one_shot(Op &op, bool to_all) {
  Comm &c = op.comm;
  const uint32_t step = c.next_step();
  InlineInput &mine = c.control(c.rank()).inline_input[step & 1u];
  if (plx_status s = write_inline(op, mine)) return s;
  mine.step.store(step + 1, std::memory_order_release);
  publish(c, &RankControl::arrive, step + 1);
  for (int32_t r = 0; r < c.nranks(); ++r)
    if (r != c.rank())
      if (plx_status s = wait_inline(op, r, step)) return s;
  op.record(PLX_ALGO_ONE_SHOT);
  if (!to_all && c.rank() != op.desc.root) return PLX_OK;
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r) sources[r] = c.control(r).inline_input[step & 1u].data;
  return core::reduce_into(op.desc.dtype, op.desc.op, op.desc.recv, sources, c.nranks(), op.desc.count);
}

}  // namespace plexus::shm_native
