// core::IdentityBuffers on a GPU (suite 'gpu'; gpu_main skips without one):
// every dtype's and op's identity bit for bit, buffers shared by pattern,
// growth that keeps the outgrown buffer readable, a buffer made while the
// stream is captured into a graph, and stand_in_for_absent_rank's lengths.
#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "core/dtype.hpp"
#include "core/identity_buffers.hpp"
#include "core/status.hpp"

using plexus::core::IdentityBuffers;

namespace {

std::vector<uint8_t> download(const void *p, size_t bytes) {
  std::vector<uint8_t> v(bytes, 0x5A);
  REQUIRE(cudaMemcpy(v.data(), p, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
  return v;
}

std::vector<uint8_t> identity_of(plx_dtype dtype, plx_reduce_op op, uint64_t count) {
  std::vector<uint8_t> v(count * plexus::core::kDtypeBytes[dtype]);
  REQUIRE(plexus::core::fill_identity(dtype, op, v.data(), count) == PLX_OK);
  return v;
}

const void *get(IdentityBuffers &buffers, plx_dtype dtype, plx_reduce_op op, uint64_t count) {
  const void *p = nullptr;
  const plx_status s = buffers.get(dtype, op, count, &p);
  INFO(plexus::core::last_message());
  REQUIRE(s == PLX_OK);
  REQUIRE(p != nullptr);
  return p;
}

}  // namespace

TEST_CASE("core.identity_buffers.every_dtype_and_op") {
  IdentityBuffers buffers(0);
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op) {
      const uint64_t count = 100003;  // past one 64 KiB block for every dtype: the doubling copies
      const void *p = get(buffers, dtype, op, count);
      INFO("dtype ", dtype, " op ", op);
      CHECK(download(p, count * plexus::core::kDtypeBytes[dtype]) == identity_of(dtype, op, count));
    }
  const void *p = nullptr;
  CHECK(buffers.get(PLX_FLOAT32, 9, 1, &p) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(buffers.get(42, PLX_SUM, 1, &p) == PLX_ERR_INVALID_ARGUMENT);
}

TEST_CASE("core.identity_buffers.shared_by_pattern_and_grown") {
  IdentityBuffers buffers(0);
  const void *zeros = get(buffers, PLX_INT32, PLX_SUM, 1000);
  CHECK(get(buffers, PLX_UINT8, PLX_AVG, 4000) == zeros);  // every integer sum's identity is zero bytes
  const void *neg_zero = get(buffers, PLX_FLOAT32, PLX_SUM, 1000);
  CHECK(neg_zero != zeros);  // -0.0f
  const uint64_t before = buffers.bytes_held();
  const uint64_t big = (uint64_t{48} << 20) / 4 + 5;
  const void *grown = get(buffers, PLX_FLOAT32, PLX_SUM, big);
  CHECK(grown != neg_zero);
  CHECK(buffers.bytes_held() >= before + big * 4);
  CHECK(download(grown, big * 4) == identity_of(PLX_FLOAT32, PLX_SUM, big));
  // The outgrown buffer stays (a captured graph may read it), unchanged.
  CHECK(download(neg_zero, 1000 * 4) == identity_of(PLX_FLOAT32, PLX_SUM, 1000));
  CHECK(get(buffers, PLX_FLOAT32, PLX_SUM, 7) == grown);
}

TEST_CASE("core.identity_buffers.made_while_the_stream_is_captured") {
  IdentityBuffers buffers(0);
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  const uint64_t count = 300001;
  void *out = nullptr;
  REQUIRE(cudaMalloc(&out, count * 2) == cudaSuccess);
  REQUIRE(cudaMemset(out, 0x11, count * 2) == cudaSuccess);
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const void *p = nullptr;
  const plx_status made = buffers.get(PLX_BFLOAT16, PLX_MIN, count, &p);
  const cudaError_t copied = cudaMemcpyAsync(out, p, count * 2, cudaMemcpyDeviceToDevice, stream);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);  // the allocation did not end the capture
  REQUIRE(made == PLX_OK);
  REQUIRE(copied == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(download(out, count * 2) == identity_of(PLX_BFLOAT16, PLX_MIN, count));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaFree(out);
  cudaStreamDestroy(stream);
}

TEST_CASE("core.identity_buffers.stand_in_is_as_long_as_the_input") {
  IdentityBuffers buffers(0);
  plx_coll_options options = PLX_COLL_OPTIONS_INIT, out{};
  options.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  plx_coll_desc d{};
  d.struct_size = sizeof(d);
  d.coll = PLX_COLL_REDUCE_SCATTER, d.count = 70001, d.dtype = PLX_FLOAT64, d.op = PLX_MAX;
  d.options = &options;
  plx_coll_desc stand_in{};
  REQUIRE(plexus::core::stand_in_for_absent_rank(buffers, d, 3, "test", &out, &stand_in) == PLX_OK);
  REQUIRE(stand_in.send != nullptr);
  CHECK(out.flags == 0);
  CHECK(download(stand_in.send, 3 * 70001 * 8) == identity_of(PLX_FLOAT64, PLX_MAX, 3 * 70001));
  d.coll = PLX_COLL_ALL_REDUCE;
  REQUIRE(plexus::core::stand_in_for_absent_rank(buffers, d, 3, "test", &out, &stand_in) == PLX_OK);
  CHECK(download(stand_in.send, 70001 * 8) == identity_of(PLX_FLOAT64, PLX_MAX, 70001));
}
