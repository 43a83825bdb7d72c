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

  // This rank's pack at `own` (device) as wire values: the contribution
  // every other rank sees.
  static __device__ __forceinline__ void own_pack(Wt (&w)[P], const S *own, bool aligned) {
    alignas(16) S x[P];
    load_dev(x, own, aligned);
#pragma unroll
    for (int j = 0; j < P; ++j) w[j] = W::encode(x[j]);
  }

  static __device__ __forceinline__ void accumulate(A (&acc)[P], const Wt (&w)[P]) {
#pragma unroll
    for (int j = 0; j < P; ++j) acc[j] = kernels::device::combine<Op>(acc[j], W::decode(w[j]));
  }

  // Packs k and k2 (when `two`) over the ranks in rank order: both loads of
  // a rank are in flight together, since a read of host memory takes
  // microseconds over PCIe.
  template <class SrcOf>
  static __device__ void combine_two(const Channel &c, uint64_t k, uint64_t k2, bool two, const S *own, SrcOf src,
                                     uint32_t skips, bool own_aligned, A (&a0)[P], A (&a1)[P]) {
#pragma unroll
    for (int j = 0; j < P; ++j) a0[j] = a1[j] = identity<Op, A>();
    for (int r = 0; r < c.nranks; ++r) {
      alignas(16) Wt w0[P];
      alignas(16) Wt w1[P];
      if (r == c.rank) {
        if (own == nullptr) continue;
        own_pack(w0, own + k * P, own_aligned);
        if (two) own_pack(w1, own + k2 * P, own_aligned);
      } else {
        if ((skips >> r) & 1u) continue;
        load_host(w0, src(r) + k * P);
        if (two) load_host(w1, src(r) + k2 * P);
      }
      accumulate(a0, w0);
      if (two) accumulate(a1, w1);
    }
  }

  // The tail's single elements, one at a time.
  template <class SrcOf>
  static __device__ A combine_one(const Channel &c, uint64_t i, const S *own, SrcOf src, uint32_t skips) {
    A acc = identity<Op, A>();
    for (int r = 0; r < c.nranks; ++r) {
      if (r == c.rank && own == nullptr) continue;
      if (r != c.rank && ((skips >> r) & 1u)) continue;
      const Wt w = r == c.rank ? W::encode(own[i]) : *reinterpret_cast<const volatile Wt *>(src(r) + i);
      acc = kernels::device::combine<Op>(acc, W::decode(w));
    }
    return acc;
  }

  // Pack k of the result, rounded to the wire type, to out and result.
  static __device__ __forceinline__ void finish_pack(const Channel &c, const A (&acc)[P], uint64_t k, S *out,
                                                     Wt *result, bool out_aligned) {
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

  // Reduces n elements over the ranks in rank order: this rank's from own
  // (device; NULL adds nothing), rank r's wire values from src(r) (host;
  // ranks in skips add nothing). The result, rounded to the wire type, goes
  // to out (device, may be NULL) and result (host, may be NULL).
  template <class SrcOf>
  static __device__ void reduce(const Channel &c, uint64_t n, const S *own, SrcOf src, uint32_t skips, S *out,
                                Wt *result) {
    const bool own_aligned = aligned16(own), out_aligned = aligned16(out);
    const uint64_t packs = n / P, stride = blockDim.x;
    for (uint64_t k = threadIdx.x; k < packs; k += 2 * stride) {
      const uint64_t k2 = k + stride;
      A a0[P], a1[P];
      combine_two(c, k, k2, k2 < packs, own, src, skips, own_aligned, a0, a1);
      finish_pack(c, a0, k, out, result, out_aligned);
      if (k2 < packs) finish_pack(c, a1, k2, out, result, out_aligned);
    }
    for (uint64_t i = packs * P + threadIdx.x; i < n; i += blockDim.x) {
      const Wt w = W::round(kernels::device::finish<Op>(combine_one(c, i, own, src, skips), c.nranks));
      if (result != nullptr) result[i] = w;
      if (out != nullptr) out[i] = W::output(w);
    }
  }

  // n reduced wire values from a peer's stage into out, two packs in flight.
  static __device__ void copy_out(S *out, const Wt *host, uint64_t n) {
    const bool aligned = aligned16(out);
    const uint64_t packs = n / P, stride = blockDim.x;
    for (uint64_t k = threadIdx.x; k < packs; k += 2 * stride) {
      const bool two = k + stride < packs;
      alignas(16) Wt w0[P];
      alignas(16) Wt w1[P];
      load_host(w0, host + k * P);
      if (two) load_host(w1, host + (k + stride) * P);
      store_out(out + k * P, w0, aligned);
      if (two) store_out(out + (k + stride) * P, w1, aligned);
    }
    for (uint64_t i = packs * P + threadIdx.x; i < n; i += blockDim.x)
      out[i] = W::output(*reinterpret_cast<const volatile Wt *>(host + i));
  }

  static __device__ __forceinline__ void store_out(S *out, const Wt (&w)[P], bool aligned) {
    alignas(16) S y[P];
#pragma unroll
    for (int j = 0; j < P; ++j) y[j] = W::output(w[j]);
    store_dev(out, y, aligned);
  }
};

}  // namespace plexus::kernels::pinned::device
