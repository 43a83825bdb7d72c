// The identity element of each reduction, for ranks that take part in a
// reduction without contributing (PLX_COLL_FLAG_NO_CONTRIBUTION): reducing
// with it leaves every other value bit-for-bit unchanged.
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/cpu_reduce.hpp"
#include "core/dtype.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

template <typename T>
void identity_int(plx_reduce_op op, void *out) {
  T v = 0;
  if (op == PLX_PROD) v = 1;
  if (op == PLX_MIN) v = std::numeric_limits<T>::max();
  if (op == PLX_MAX) v = std::numeric_limits<T>::lowest();
  std::memcpy(out, &v, sizeof(v));
}

// Float identities by bit pattern: -0.0 for sums (x + -0.0 == x even for
// x = +0.0), 1 for products, +inf for min, -inf for max.
template <typename Bits>
void identity_float(plx_reduce_op op, Bits neg_zero, Bits one, Bits pos_inf, Bits neg_inf, void *out) {
  const Bits v = op == PLX_PROD ? one : op == PLX_MIN ? pos_inf : op == PLX_MAX ? neg_inf : neg_zero;
  std::memcpy(out, &v, sizeof(v));
}

bool identity_element(plx_dtype dtype, plx_reduce_op op, void *out) {
  switch (dtype) {
    case PLX_INT8: identity_int<int8_t>(op, out); return true;
    case PLX_UINT8: identity_int<uint8_t>(op, out); return true;
    case PLX_INT32: identity_int<int32_t>(op, out); return true;
    case PLX_UINT32: identity_int<uint32_t>(op, out); return true;
    case PLX_INT64: identity_int<int64_t>(op, out); return true;
    case PLX_UINT64: identity_int<uint64_t>(op, out); return true;
    case PLX_FLOAT16: identity_float<uint16_t>(op, 0x8000, 0x3C00, 0x7C00, 0xFC00, out); return true;
    case PLX_BFLOAT16: identity_float<uint16_t>(op, 0x8000, 0x3F80, 0x7F80, 0xFF80, out); return true;
    case PLX_FLOAT32:
      identity_float<uint32_t>(op, 0x80000000u, 0x3F800000u, 0x7F800000u, 0xFF800000u, out);
      return true;
    case PLX_FLOAT64:
      identity_float<uint64_t>(op, 0x8000000000000000ull, 0x3FF0000000000000ull,
                               0x7FF0000000000000ull, 0xFFF0000000000000ull, out);
      return true;
    default: return false;
  }
}

}  // namespace

bool identity_pattern(plx_dtype dtype, plx_reduce_op op, uint64_t *pattern) {
  uint8_t element[8];
  if (op < 0 || op >= PLX_REDUCE_OP_COUNT || !identity_element(dtype, op, element)) return false;
  const size_t size = kDtypeBytes[dtype];
  uint8_t bytes[8];
  for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = element[i % size];
  std::memcpy(pattern, bytes, sizeof(bytes));
  return true;
}

plx_status fill_identity(plx_dtype dtype, plx_reduce_op op, void *dst, size_t count) {
  uint8_t element[8];
  if (op < 0 || op >= PLX_REDUCE_OP_COUNT || !identity_element(dtype, op, element))
    return fail(PLX_ERR_INVALID_ARGUMENT, "fill_identity: dtype {} or op {} is unknown", dtype, op);
  const size_t size = kDtypeBytes[dtype];
  auto *out = static_cast<uint8_t *>(dst);
  if (count == 0) return PLX_OK;
  std::memcpy(out, element, size);
  // Doubling copies: log2(count) memcpy calls instead of count stores.
  for (size_t done = 1; done < count; done *= 2)
    std::memcpy(out + done * size, out, std::min(done, count - done) * size);
  return PLX_OK;
}

}  // namespace plexus::core
