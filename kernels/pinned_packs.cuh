// The block-wide element loops of pinned-host's bulk reductions: staging a
// range of the caller's input into a stage (through the wire type),
// reducing a range over every rank in rank order, and copying reduced wire
// values back out. Stage addresses are 16-byte aligned, so the host side
// always moves whole 16-byte packs; the caller's buffers may have any
// (element) alignment and take the element path when unaligned.
#pragma once

#include "kernels/pinned_common.cuh"

namespace plexus::kernels::pinned::device {

template <class E, class W, int Op>
struct Packs {
  using S = typename E::S;
  using Wt = typename W::Wt;
  using A = typename E::A;
  static constexpr int P = 16 / sizeof(Wt);  // wire elements of one 16-byte pack

  // n elements of the caller's input into a stage, as wire values.
  static __device__ void stage_in(Wt *host, const S *in, uint64_t n) {
    const bool aligned = aligned16(in);
    const uint64_t packs = n / P;
    for (uint64_t k = threadIdx.x; k < packs; k += blockDim.x) {
      alignas(16) S x[P];
      alignas(16) Wt w[P];
      load_dev(x, in + k * P, aligned);
#pragma unroll
      for (int j = 0; j < P; ++j) w[j] = W::encode(x[j]);
      store_host(host + k * P, w);
    }
    for (uint64_t i = packs * P + threadIdx.x; i < n; i += blockDim.x) host[i] = W::encode(in[i]);
  }

  // n copies of the operator's identity (a rank that adds nothing, CPU helper).
  static __device__ void stage_identity(Wt *host, uint64_t n) {
    const Wt id = W::round(identity<Op, A>());
    alignas(16) Wt w[P];
#pragma unroll
    for (int j = 0; j < P; ++j) w[j] = id;
    const uint64_t packs = n / P;
    for (uint64_t k = threadIdx.x; k < packs; k += blockDim.x) store_host(host + k * P, w);
    for (uint64_t i = packs * P + threadIdx.x; i < n; i += blockDim.x) host[i] = id;
  }

  // One pack (or, at the tail, one element: m == 1) of the reduction.
  template <int M, class SrcOf>
  static __device__ void combine_ranks(const Channel &c, A (&acc)[M], const S *own, SrcOf src, uint32_t skips,
                                       bool own_aligned) {
#pragma unroll
    for (int j = 0; j < M; ++j) acc[j] = identity<Op, A>();
    for (int r = 0; r < c.nranks; ++r) {
      alignas(16) Wt w[M];
      if (r == c.rank) {
        if (own == nullptr) continue;
        alignas(16) S x[M];
        if constexpr (M == P) load_dev(x, own, own_aligned);
        else x[0] = own[0];
#pragma unroll
        for (int j = 0; j < M; ++j) w[j] = W::encode(x[j]);
      } else {
        if ((skips >> r) & 1u) continue;
        if constexpr (M == P) load_host(w, src(r));
        else w[0] = *reinterpret_cast<const volatile Wt *>(src(r));
      }
#pragma unroll
      for (int j = 0; j < M; ++j) acc[j] = kernels::device::combine<Op>(acc[j], W::decode(w[j]));
    }
  }

  // Reduces n elements over the ranks in rank order: this rank's from own
  // (device; NULL adds nothing), rank r's wire values from src(r) (host;
  // ranks in skips add nothing). The result, rounded to the wire type, goes
  // to out (device, may be NULL) and result (host, may be NULL).
  template <class SrcOf>
  static __device__ void reduce(const Channel &c, uint64_t n, const S *own, SrcOf src, uint32_t skips, S *out,
                                Wt *result) {
    const bool own_aligned = aligned16(own), out_aligned = aligned16(out);
    const uint64_t packs = n / P;
    for (uint64_t k = threadIdx.x; k < packs; k += blockDim.x) {
      A acc[P];
      combine_ranks<P>(c, acc, own == nullptr ? nullptr : own + k * P, [&](int r) { return src(r) + k * P; },
                       skips, own_aligned);
      alignas(16) Wt w[P];
      alignas(16) S y[P];
#pragma unroll
      for (int j = 0; j < P; ++j) {
        w[j] = W::round(kernels::device::finish<Op>(acc[j], c.nranks));
        y[j] = W::output(w[j]);
      }
      if (result != nullptr) store_host(result + k * P, w);
      if (out != nullptr) store_dev(out + k * P, y, out_aligned);
    }
    for (uint64_t i = packs * P + threadIdx.x; i < n; i += blockDim.x) {
      A acc[1];
      combine_ranks<1>(c, acc, own == nullptr ? nullptr : own + i, [&](int r) { return src(r) + i; }, skips, false);
      const Wt w = W::round(kernels::device::finish<Op>(acc[0], c.nranks));
      if (result != nullptr) result[i] = w;
      if (out != nullptr) out[i] = W::output(w);
    }
  }

  // n reduced wire values from a peer's stage into out.
  static __device__ void copy_out(S *out, const Wt *host, uint64_t n) {
    const bool aligned = aligned16(out);
    const uint64_t packs = n / P;
    for (uint64_t k = threadIdx.x; k < packs; k += blockDim.x) {
      alignas(16) Wt w[P];
      alignas(16) S y[P];
      load_host(w, host + k * P);
#pragma unroll
      for (int j = 0; j < P; ++j) y[j] = W::output(w[j]);
      store_dev(out + k * P, y, aligned);
    }
    for (uint64_t i = packs * P + threadIdx.x; i < n; i += blockDim.x)
      out[i] = W::output(*reinterpret_cast<const volatile Wt *>(host + i));
  }
};

}  // namespace plexus::kernels::pinned::device
