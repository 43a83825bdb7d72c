// One-shot reductions of at most inline_input_bytes (see InlineInput in
// shm_comm.hpp): no slots, one cache-line transfer per peer and step.
#include <cstring>

#include "core/cpu_reduce.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {
namespace {

constexpr int32_t max_sources = 1024;

// This rank's input, or the operator's identity when it contributes nothing.
plx_status write_inline(Op &op, InlineInput &line) {
  if (op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION)
    return core::fill_identity(op.desc.dtype, op.desc.op, line.data, op.desc.count);
  std::memcpy(line.data, op.desc.send, op.desc.count * op.elem_bytes);
  return PLX_OK;
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
  // Polls the peers' lines first, then falls back to the ordinary wait on
  // their `arrive`, published after the line.
  auto line_written = [&c, step](int32_t r) {
    return reached(c.control(r).inline_input[step & 1u].step.load(std::memory_order_acquire), step + 1);
  };
  if (plx_status s = on_each_arrival(c, line_written, &RankControl::arrive, step + 1, op.deadline, op.label,
                                     [](int32_t) { return PLX_OK; }))
    return s;
  op.record(PLX_ALGO_ONE_SHOT);
  if (!to_all && c.rank() != op.desc.root) return PLX_OK;
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r) sources[r] = c.control(r).inline_input[step & 1u].data;
  return core::reduce_into(op.desc.dtype, op.desc.op, op.desc.recv, sources, c.nranks(), op.desc.count);
}

}  // namespace plexus::shm_native
