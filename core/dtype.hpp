// Bytes of one element of each plx_dtype (the table behind the ABI's
// plx_dtype_size), for the plugins' and the loader's hot paths: one
// definition, checked against the ABI's numbering.
#pragma once

#include <cstdint>

#include "plexus/types.h"

namespace plexus::core {

inline constexpr uint64_t kDtypeBytes[PLX_DTYPE_COUNT] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};

// 0 for a value outside the enumeration (callers that validated the dtype
// index kDtypeBytes directly).
constexpr uint64_t dtype_bytes(plx_dtype dtype) {
  return dtype >= 0 && dtype < PLX_DTYPE_COUNT ? kDtypeBytes[dtype] : 0;
}

static_assert(kDtypeBytes[PLX_INT8] == 1 && kDtypeBytes[PLX_UINT8] == 1);
static_assert(kDtypeBytes[PLX_INT32] == 4 && kDtypeBytes[PLX_UINT32] == 4);
static_assert(kDtypeBytes[PLX_INT64] == 8 && kDtypeBytes[PLX_UINT64] == 8);
static_assert(kDtypeBytes[PLX_FLOAT16] == 2 && kDtypeBytes[PLX_BFLOAT16] == 2);
static_assert(kDtypeBytes[PLX_FLOAT32] == 4 && kDtypeBytes[PLX_FLOAT64] == 8);

}  // namespace plexus::core
