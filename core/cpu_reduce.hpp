// CPU reductions of host buffers (shm-native): dst[i] = srcs[0][i] op
// srcs[1][i] op ... op srcs[nsrc-1][i], always combined in source order, so
// every rank that reduces the same inputs in the same order gets the same
// bits. One scalar path and AVX2 / AVX-512 paths chosen at run time; every
// path gives bit-identical results for every dtype and op.
//
// Numerics (the same in every path):
//  - integers: SUM and PROD wrap (two's complement, no UB for signed types);
//    AVG is the wrapped sum divided by nsrc, truncating toward zero;
//  - float32 accumulates in float32, float64 in float64, float16 and
//    bfloat16 in float32 across all sources, rounded once to the output
//    type (round to nearest even, overflow to +-inf, subnormals kept);
//  - AVG divides the sum by nsrc once, at the end, in the accumulation type;
//  - MIN/MAX on floats: NaN if any input is NaN; -0.0 is below +0.0, so
//    min(-0.0, +0.0) = -0.0 and max(-0.0, +0.0) = +0.0 in either order;
//  - every NaN result is written as the type's canonical quiet NaN (positive,
//    quiet bit only: 0x7E00, 0x7FC0, 0x7FC00000, 0x7FF8000000000000), so NaN
//    payloads and signs never depend on the path or on operand order.
// Paths agree under any MXCSR rounding of the arithmetic; with DAZ set the
// float16 rounding of float32 subnormals may differ (F16C vs integer code).
#pragma once

#include <cstddef>

#include "plexus/types.h"

namespace plexus::core {

enum class CpuIsa { scalar, avx2, avx512 };

// What this CPU (and OS) can run: avx512 = AVX-512 F+BW+VL, avx2 = AVX2+FMA+F16C.
CpuIsa detect_cpu_isa();

// detected, lowered by PLEXUS_CPU_ISA=scalar|avx2|avx512 (read once; a value
// above the CPU's or one not understood keeps the detected ISA).
CpuIsa active_cpu_isa();

// detected lowered by an override text as above; nullptr keeps detected.
CpuIsa clamp_cpu_isa(CpuIsa detected, const char *override_text);

const char *cpu_isa_name(CpuIsa isa);

// Reduces count elements of nsrc sources into dst (see the numerics above).
// dst may be one of the sources but must not otherwise overlap them. Errors:
// PLX_ERR_INVALID_ARGUMENT for an unknown dtype/op, nsrc < 1 or a null
// pointer with count > 0; PLX_ERR_UNSUPPORTED for an isa the CPU lacks.
plx_status reduce_into(plx_dtype dtype, plx_reduce_op op, void *dst, const void *const *srcs,
                       int nsrc, size_t count, CpuIsa isa = active_cpu_isa());

// reduce_into that also writes every result to `copy`, in the same pass: a
// result needed in two places (shm-native's two-shot: the slot its peers read
// and the rank's own recv) costs one store stream more instead of a second
// pass over it (2 ranks, 1 MiB all-reduce: the reduction 30.5 -> 27.5 us
// against reduce_into plus memcpy from L1). Like dst, `copy` may be one of
// the sources but must not otherwise overlap them, nor dst; a null `copy` is
// reduce_into.
plx_status reduce_into_both(plx_dtype dtype, plx_reduce_op op, void *dst, void *copy,
                            const void *const *srcs, int nsrc, size_t count,
                            CpuIsa isa = active_cpu_isa());

// Writes `count` copies of the identity element of `op` for `dtype` (0 or
// -0.0 for sums, 1 for products, the largest value or +inf for min, the
// smallest or -inf for max): reducing with it changes no value's bits.
plx_status fill_identity(plx_dtype dtype, plx_reduce_op op, void *dst, size_t count);

// The same identity element repeated over 8 bytes (every dtype's size divides
// 8), as the byte pattern that fills a buffer of any dtype's identity; false
// for an unknown dtype or op.
bool identity_pattern(plx_dtype dtype, plx_reduce_op op, uint64_t *pattern);

// float32 to `wire` (PLX_FLOAT16 or PLX_BFLOAT16) and back, element by
// element, rounding as the reductions do (nearest even, NaN canonical): a
// float32 reduction sent as a half type through host memory (shm-native).
// PLX_ERR_INVALID_ARGUMENT for another wire dtype. `isa` as for reduce_into
// (AVX2 vectors from avx2 up; the tests compare it with scalar).
plx_status narrow_floats(const float *src, void *dst, size_t n, plx_dtype wire, CpuIsa isa = active_cpu_isa());
plx_status widen_floats(const void *src, float *dst, size_t n, plx_dtype wire, CpuIsa isa = active_cpu_isa());

namespace detail {

// One validated call, as the per-ISA kernels receive it.
struct ReduceCall {
  plx_dtype dtype;
  plx_reduce_op op;
  void *dst;
  const void *const *srcs;
  int nsrc;
  size_t count;
  void *copy = nullptr;  // written with the same values as dst, when set
};

// cpu_reduce.cpp, cpu_reduce_avx2.cpp, cpu_reduce_avx512.cpp. The SIMD ones
// return false when they have no kernel (not built for this architecture).
void reduce_scalar(const ReduceCall &call);
bool reduce_avx2(const ReduceCall &call);
bool reduce_avx512(const ReduceCall &call);
// narrow_floats / widen_floats in AVX2 (+F16C) vectors: how many leading
// elements they converted (0 where not built), the rest is the caller's.
size_t narrow_avx2(const float *src, uint16_t *dst, size_t n, plx_dtype wire);
size_t widen_avx2(const uint16_t *src, float *dst, size_t n, plx_dtype wire);

}  // namespace detail
}  // namespace plexus::core
