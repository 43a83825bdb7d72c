#include "dtypes.hpp"

namespace plexus::conformance {

bool is_float(plx_dtype d) {
  return d == PLX_FLOAT16 || d == PLX_BFLOAT16 || d == PLX_FLOAT32 || d == PLX_FLOAT64;
}

bool is_signed_int(plx_dtype d) { return d == PLX_INT8 || d == PLX_INT32 || d == PLX_INT64; }

Int int_max(plx_dtype d) {
  const int bits = static_cast<int>(plx_dtype_size(d)) * 8;
  return (Int{1} << (is_signed_int(d) ? bits - 1 : bits)) - 1;
}

// A float result passes when
//   |got - want| <= 2 u(dtype) |want| + 2 nranks u(accumulator) magnitude + smallest normal
// with u the unit roundoff (2^-11 float16, 2^-8 bfloat16, 2^-24 float32,
// 2^-53 float64) and magnitude the sum of |x| over the ranks (SUM; over
// nranks for AVG) or |want| (PROD): the final rounding, plus the worst
// error of summing nranks values in any order. The accumulator is float32
// for float16 and bfloat16 (PLX-P-8), so a backend that accumulates in
// half precision fails; MIN and MAX must be exact.
double unit_roundoff(plx_dtype d) {
  switch (d) {
    case PLX_FLOAT16: return std::ldexp(1.0, -11);
    case PLX_BFLOAT16: return std::ldexp(1.0, -8);
    case PLX_FLOAT32: return std::ldexp(1.0, -24);
    default: return std::ldexp(1.0, -53);
  }
}

double accumulator_roundoff(plx_dtype d) {
  return d == PLX_FLOAT16 || d == PLX_BFLOAT16 ? unit_roundoff(PLX_FLOAT32) : unit_roundoff(d);
}

double smallest_normal(plx_dtype d) {
  switch (d) {
    case PLX_FLOAT16: return std::ldexp(1.0, -14);
    case PLX_BFLOAT16:
    case PLX_FLOAT32: return std::ldexp(1.0, -126);
    default: return std::ldexp(1.0, -1022);
  }
}

const char *int_text(Int v, char (&buf)[48]) {
  char *p = buf + sizeof(buf) - 1;
  *p = '\0';
  const bool negative = v < 0;
  unsigned __int128 u = negative ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  do {
    *--p = static_cast<char>('0' + static_cast<int>(u % 10));
    u /= 10;
  } while (u != 0);
  if (negative) *--p = '-';
  return p;
}

}  // namespace plexus::conformance
