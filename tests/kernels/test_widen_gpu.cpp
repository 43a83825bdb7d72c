// kernels/widen.hpp against conversions written here independently: every
// 16-bit pattern class (NaN, infinities, subnormals, -0) widened exactly,
// random float32 bits (ties, overflow, NaN) narrowed to nearest even with
// the canonical NaN; aligned and unaligned buffers, every tail length. The
// gathered reduction against core's scalar CPU reduction, bit for bit.
#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/widen.hpp"
#include "tests/plugins/gpu_data.hpp"

namespace {

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t float_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float widen_ref(uint16_t v, plx_dtype dtype) {
  if (dtype == PLX_BFLOAT16) return bits_to_float(uint32_t{v} << 16);
  _Float16 h;
  std::memcpy(&h, &v, 2);
  return static_cast<float>(h);
}

uint16_t narrow_ref(float f, plx_dtype dtype) {
  if (std::isnan(f)) return dtype == PLX_BFLOAT16 ? 0x7FC0 : 0x7E00;
  if (dtype == PLX_FLOAT16) {
    const _Float16 h = static_cast<_Float16>(f);  // round to nearest even
    uint16_t v;
    std::memcpy(&v, &h, 2);
    return v;
  }
  const uint32_t b = float_to_bits(f);
  const uint32_t lower = b & 0xFFFFu, upper = b >> 16;
  const bool up = lower > 0x8000u || (lower == 0x8000u && (upper & 1u));
  return static_cast<uint16_t>(upper + (up ? 1u : 0u));
}

// Device buffer of `bytes` plus 16, so an offset of one element stays inside.
struct DeviceBytes {
  void *p = nullptr;
  explicit DeviceBytes(size_t bytes) { REQUIRE(cudaMalloc(&p, bytes + 16) == cudaSuccess); }
  ~DeviceBytes() { cudaFree(p); }
  template <class T>
  T *at(size_t offset_bytes) const { return reinterpret_cast<T *>(static_cast<char *>(p) + offset_bytes); }
};

void check_widen(plx_dtype dtype, uint64_t n, size_t in_off, size_t out_off, std::mt19937_64 &gen) {
  std::vector<uint16_t> in(n);
  for (uint16_t &v : in) v = static_cast<uint16_t>(gen());
  DeviceBytes din(n * 2), dout(n * 4);
  REQUIRE(cudaMemcpy(din.at<uint16_t>(in_off), in.data(), n * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemset(dout.p, 0xA5, n * 4 + 16) == cudaSuccess);  // poison
  REQUIRE(plexus::kernels::launch_widen(din.at<uint16_t>(in_off), dout.at<float>(out_off), n, dtype, nullptr) == cudaSuccess);
  std::vector<float> out(n);
  REQUIRE(cudaMemcpy(out.data(), dout.at<float>(out_off), n * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const float want = widen_ref(in[i], dtype);
    const bool same = std::isnan(want) ? std::isnan(out[i]) : float_to_bits(out[i]) == float_to_bits(want);
    wrong += same ? 0 : 1;
  }
  CHECK_MESSAGE(wrong == 0, "dtype ", dtype, " n ", n, " offsets ", in_off, "/", out_off);
}

void check_narrow(plx_dtype dtype, uint64_t n, size_t in_off, size_t out_off, std::mt19937_64 &gen) {
  std::vector<float> in(n);
  for (uint64_t i = 0; i < n; ++i) {  // any bits, a quarter of them ties of the half type
    uint32_t b = static_cast<uint32_t>(gen());
    if (i % 4 == 1) b = (b & (dtype == PLX_BFLOAT16 ? 0xFFFF0000u : 0xFFFFE000u)) | (dtype == PLX_BFLOAT16 ? 0x8000u : 0x1000u);
    in[i] = bits_to_float(b);
  }
  DeviceBytes din(n * 4), dout(n * 2);
  REQUIRE(cudaMemcpy(din.at<float>(in_off), in.data(), n * 4, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemset(dout.p, 0xA5, n * 2 + 16) == cudaSuccess);
  REQUIRE(plexus::kernels::launch_narrow(din.at<float>(in_off), dout.at<uint16_t>(out_off), n, dtype, nullptr) == cudaSuccess);
  std::vector<uint16_t> out(n);
  REQUIRE(cudaMemcpy(out.data(), dout.at<uint16_t>(out_off), n * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < n; ++i) wrong += out[i] == narrow_ref(in[i], dtype) ? 0 : 1;
  CHECK_MESSAGE(wrong == 0, "dtype ", dtype, " n ", n, " offsets ", in_off, "/", out_off);
}

constexpr uint64_t kCounts[] = {1, 7, 8, 9, 15, 16, 17, 1000, (1u << 20) + 3};
// Byte offsets {half-type buffer, float buffer}: a half type may sit at any
// even address, a float at any multiple of 4 (the nccl plugin's float
// blocks are aligned; a reduce-scatter's part of one need not be to 16).
constexpr size_t kOffsets[][2] = {{0, 0}, {2, 0}, {0, 4}, {2, 4}, {14, 12}};

}  // namespace

TEST_CASE("kernels.widen.gpu.widen_is_exact") {
  std::mt19937_64 gen(11);
  for (plx_dtype dtype : {PLX_FLOAT16, PLX_BFLOAT16})
    for (uint64_t n : kCounts)
      for (const auto &off : kOffsets) check_widen(dtype, n, off[0], off[1], gen);
}

TEST_CASE("kernels.widen.gpu.narrow_rounds_to_nearest_even") {
  std::mt19937_64 gen(12);
  for (plx_dtype dtype : {PLX_FLOAT16, PLX_BFLOAT16})
    for (uint64_t n : kCounts)
      for (const auto &off : kOffsets) check_narrow(dtype, n, off[1], off[0], gen);
}

TEST_CASE("kernels.widen.gpu.other_dtypes_are_refused") {
  DeviceBytes d(64);
  CHECK(plexus::kernels::launch_widen(d.p, d.at<float>(0), 4, PLX_FLOAT32, nullptr) == cudaErrorInvalidValue);
  CHECK(plexus::kernels::launch_narrow(d.at<float>(0), d.p, 4, PLX_INT32, nullptr) == cudaErrorInvalidValue);
}

// nranks inputs of `count` random elements, `stride` apart in one buffer
// (the all-gather's layout), reduced on the GPU and by core's CPU path.
static void check_gathered(plx_dtype dtype, plx_reduce_op op, int nranks, uint64_t count, uint64_t seed) {
  const uint64_t stride = count + 5;
  std::vector<plexus::test::Bytes> inputs;
  plexus::test::Bytes packed(nranks * stride * 2, 0x5A);
  for (int q = 0; q < nranks; ++q) {
    inputs.push_back(plexus::test::random_input(seed + q, dtype, count));
    std::memcpy(packed.data() + q * stride * 2, inputs.back().data(), count * 2);
  }
  const plexus::test::Bytes want = plexus::test::reference(dtype, op, inputs, count);
  DeviceBytes din(packed.size()), dout(count * 2);
  REQUIRE(cudaMemcpy(din.p, packed.data(), packed.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemset(dout.p, 0xA5, count * 2 + 16) == cudaSuccess);  // poison
  REQUIRE(plexus::kernels::launch_reduce_gathered(din.p, stride, nranks, dout.p, count, dtype, op, nullptr) == cudaSuccess);
  plexus::test::Bytes got(count * 2);
  REQUIRE(cudaMemcpy(got.data(), dout.p, got.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < count * 2; i += 2) wrong += std::memcmp(&got[i], &want[i], 2) != 0;
  CHECK_MESSAGE(wrong == 0, "dtype ", dtype, " op ", op, " nranks ", nranks, " count ", count);
}

TEST_CASE("kernels.widen.gpu.gathered_reduction_matches_the_cpu") {
  uint64_t seed = 100;
  for (plx_dtype dtype : {PLX_FLOAT16, PLX_BFLOAT16})
    for (plx_reduce_op op : {PLX_SUM, PLX_PROD, PLX_MIN, PLX_MAX, PLX_AVG})
      for (int nranks : {2, 3, 8})
        for (uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1000}, uint64_t{70001}})
          check_gathered(dtype, op, nranks, count, seed += 16);
  DeviceBytes d(64);
  CHECK(plexus::kernels::launch_reduce_gathered(d.p, 4, 2, d.p, 4, PLX_FLOAT32, PLX_SUM, nullptr) == cudaErrorInvalidValue);
}
