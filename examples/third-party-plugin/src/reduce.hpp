// Element-wise reduction of the ranks' inputs on the CPU.
#pragma once

#include <plexus/types.h>

#include <cstddef>
#include <cstdint>

namespace example_shm {

// Bytes of one element; 0 for a dtype this plugin does not know.
size_t dtype_size(plx_dtype dtype);

// out[i] = op over ranks 0..n-1 of in[r][i], for i < count. Ranks are
// combined in rank order, so every rank that reduces the same inputs gets
// the same bits (PLX-P-8). float16 and bfloat16 accumulate in float;
// integers wrap; AVG divides the sum by n (truncating for integers). `out`
// may be unaligned and may be one of the inputs' buffers.
void reduce(plx_dtype dtype, plx_reduce_op op, void *out, const void *const *in, int32_t n, size_t count);

}  // namespace example_shm
