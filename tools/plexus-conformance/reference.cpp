// Block by block: the inputs of every rank for a block of elements are
// generated into typed arrays and reduced in double (floats) or Int
// (integers), then compared with what the backend wrote.
#include "reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace plexus::conformance {
namespace {

constexpr size_t kBlock = 2048;

template <typename T, typename Acc>
void combine(plx_reduce_op op, const T *x, Acc *acc, size_t n) {
  switch (op) {
    case PLX_PROD:
      for (size_t j = 0; j < n; ++j) acc[j] *= widen(x[j]);
      break;
    case PLX_MIN:
      for (size_t j = 0; j < n; ++j) acc[j] = std::min<Acc>(acc[j], widen(x[j]));
      break;
    case PLX_MAX:
      for (size_t j = 0; j < n; ++j) acc[j] = std::max<Acc>(acc[j], widen(x[j]));
      break;
    default:
      for (size_t j = 0; j < n; ++j) acc[j] += widen(x[j]);
      break;
  }
}

// acc[j] = the reduction over the contributing ranks of input element
// first + j; for floats also magnitude[j] = the sum of their |x|.
template <typename T, typename Acc>
void reduce_block(const InputRule &rule, uint64_t first, size_t n, Acc *acc, double *magnitude) {
  T x[kBlock];
  bool first_rank = true;
  for (int32_t r = 0; r < rule.nranks; ++r) {
    if (r == rule.absent) continue;
    const uint64_t key = rank_key(rule, r);
    for (size_t j = 0; j < n; ++j) x[j] = input_value<T>(rule, key, first + j);
    if (first_rank)
      for (size_t j = 0; j < n; ++j) acc[j] = widen(x[j]);
    else
      combine(rule.op, x, acc, n);
    if constexpr (is_float_type<T>)
      for (size_t j = 0; j < n; ++j)
        magnitude[j] = (first_rank ? 0.0 : magnitude[j]) + std::fabs(widen(x[j]));
    first_rank = false;
  }
}

template <typename T>
T load(const void *base, uint64_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t *>(base) + i * sizeof(T), sizeof(T));
  return v;
}

// |got - want| <= 2 u |want| + 2 nranks u_acc magnitude + floor (see
// dtypes.cpp); MIN and MAX exact, AVG's magnitude over nranks, PROD's that
// of the result. A narrower wire dtype rounds every contribution and the
// result it carries: its u replaces both where larger, and MIN and MAX
// are then within 2 u |want|.
double wider(double own, int32_t wire, double (*of)(plx_dtype)) {
  return wire < 0 ? own : std::max(own, of(wire));
}

bool picks_an_input(plx_reduce_op op) { return op == PLX_MIN || op == PLX_MAX; }

struct Tolerance {
  double result, accumulation, floor;
  bool exact, of_result;
  explicit Tolerance(const InputRule &rule)
      : result(2 * wider(unit_roundoff(rule.dtype), rule.wire, unit_roundoff)),
        accumulation(picks_an_input(rule.op) ? 0.0
                                             : 2.0 * rule.nranks *
                                                   wider(accumulator_roundoff(rule.dtype), rule.wire, unit_roundoff) /
                                                   (rule.op == PLX_AVG ? rule.nranks : 1)),
        floor(wider(smallest_normal(rule.dtype), rule.wire, smallest_normal)),
        exact(picks_an_input(rule.op) && result == 2 * unit_roundoff(rule.dtype)),
        of_result(rule.op == PLX_PROD) {}
  double operator()(double want, double magnitude) const {
    if (exact) return 0.0;
    return result * std::fabs(want) + accumulation * (of_result ? std::fabs(want) : magnitude) + floor;
  }
};

// v rounded to the wire dtype (to nearest even), or v where the wire is
// not a narrower float (-1, the data's own dtype, an integer).
double round_to_wire(double v, int32_t wire) {
  if (wire == PLX_FLOAT16) return widen(narrow<Half>(v));
  if (wire == PLX_BFLOAT16) return widen(narrow<BFloat>(v));
  if (wire == PLX_FLOAT32) return widen(narrow<float>(v));
  return v;
}

// A result that travelled as a narrower float was rounded to it
// (PLX-P-24): every element is a value of the wire dtype. The tolerance
// alone passes a backend that ignores the wire dtype (its own is closer).
void note_off_the_wire(const InputRule &rule, double have, uint64_t j, Mismatch *m) {
  if (round_to_wire(have, rule.wire) == have || m->count++ > 0) return;
  m->first = fmt::format("element {} got {:.17g}, not a {} value: a result that travels as {} is rounded "
                         "to it (PLX-P-24)", j, have, plx_dtype_string(rule.wire), plx_dtype_string(rule.wire));
}

template <typename T>
void compare_floats(const InputRule &rule, const void *got, uint64_t base, uint64_t count, Mismatch *m) {
  double acc[kBlock], magnitude[kBlock];
  const Tolerance tolerance(rule);
  for (uint64_t done = 0; done < count; done += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, count - done));
    reduce_block<T>(rule, base + done, n, acc, magnitude);
    for (size_t j = 0; j < n; ++j) {
      const double want = rule.op == PLX_AVG ? acc[j] / rule.nranks : acc[j];
      const double have = widen(load<T>(got, done + j)), tol = tolerance(want, magnitude[j]);
      if (std::fabs(have - want) <= tol) {  // false for NaN too
        note_off_the_wire(rule, have, done + j, m);
        continue;
      }
      if (m->count++ == 0)
        m->first =
            fmt::format("element {} got {:.9g} want {:.9g} (tolerance {:.3g})", done + j, have, want, tol);
    }
  }
}

template <typename T>
void compare_ints(const InputRule &rule, const void *got, uint64_t base, uint64_t count, Mismatch *m) {
  Int acc[kBlock];
  for (uint64_t done = 0; done < count; done += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, count - done));
    reduce_block<T>(rule, base + done, n, acc, nullptr);
    for (size_t j = 0; j < n; ++j) {
      const Int want = rule.op == PLX_AVG ? acc[j] / rule.nranks : acc[j];  // truncates toward zero
      const Int have = widen(load<T>(got, done + j));
      char a[48], b[48];
      if (have != want && m->count++ == 0)
        m->first = fmt::format("element {} got {} want {}", done + j, int_text(have, a), int_text(want, b));
    }
  }
}

// Element j of `got` differs from `want` (both one element of T).
template <typename T>
std::string describe_element(uint64_t j, const void *have, const void *want) {
  if constexpr (is_float_type<T>)
    return fmt::format("element {} got {:.9g} want {:.9g}", j, widen(load<T>(have, 0)),
                       widen(load<T>(want, 0)));
  char a[48], b[48];
  return fmt::format("element {} got {} want {}", j, int_text(widen(load<T>(have, 0)), a),
                     int_text(widen(load<T>(want, 0)), b));
}

// A copy that travelled as a narrower float (PLX-P-24): the expected
// elements rounded to the wire dtype.
void round_block_to_wire(const InputRule &rule, void *block, uint64_t n) {
  with_dtype(rule.dtype, [&]<typename T>(T) {
    if constexpr (is_float_type<T>) {
      auto *v = static_cast<T *>(block);
      for (uint64_t j = 0; j < n; ++j) v[j] = narrow<T>(round_to_wire(widen(v[j]), rule.wire));
    }
  });
}

}  // namespace

std::string Mismatch::describe() const {
  if (count <= 1) return first;
  return fmt::format("{} elements wrong, first: {}", count, first);
}

Mismatch check_reduction(const InputRule &rule, const void *got, uint64_t base, uint64_t count) {
  Mismatch m;
  with_dtype(rule.dtype, [&]<typename T>(T) {
    if constexpr (is_float_type<T>)
      compare_floats<T>(rule, got, base, count, &m);
    else
      compare_ints<T>(rule, got, base, count, &m);
  });
  return m;
}

// Generate the expected bytes, compare with memcmp, and only look at single
// elements where a block differs.
Mismatch check_copies(const InputRule &rule, const void *got, const std::vector<Segment> &segments,
                      bool through_wire) {
  const size_t es = plx_dtype_size(rule.dtype);
  std::vector<uint8_t> want(kBlock * es);
  const auto *have = static_cast<const uint8_t *>(got);
  Mismatch m;
  uint64_t at = 0;  // element index in got
  for (const Segment &s : segments) {
    for (uint64_t done = 0; done < s.count; done += kBlock) {
      const uint64_t n = std::min<uint64_t>(kBlock, s.count - done);
      fill_input(rule, s.rank, s.first + done, n, want.data());
      if (through_wire) round_block_to_wire(rule, want.data(), n);
      const uint8_t *h = have + (at + done) * es;
      if (std::memcmp(h, want.data(), n * es) == 0) continue;
      for (uint64_t j = 0; j < n; ++j)
        if (std::memcmp(h + j * es, want.data() + j * es, es) != 0 && m.count++ == 0)
          m.first = with_dtype(rule.dtype, [&]<typename T>(T) {
            return describe_element<T>(at + done + j, h + j * es, want.data() + j * es);
          });
    }
    at += s.count;
  }
  return m;
}

}  // namespace plexus::conformance
