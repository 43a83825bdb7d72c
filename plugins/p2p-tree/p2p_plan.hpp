// How a collective is cut into kernel launches that each fit one exchange
// area (SLOT_BYTES): pure arithmetic, shared by p2p_coll.cpp and the CPU
// unit test that checks its invariants (every element covered once, every
// launch's layout inside the area, chunk strides on 16-byte vectors).
#pragma once

#include <algorithm>
#include <cstdint>

namespace plexus::p2p_tree {

// One launch of a reduction: elements [offset, offset + total) of the
// caller's buffers (reduce-scatter: of each rank's block), cut into
// nranks chunks of `chunk` elements for two-shot.
struct ReducePiece {
  uint64_t offset = 0;
  uint64_t total = 0;      // elements this launch (reduce-scatter: chunk * nranks)
  uint64_t chunk = 0;      // two-shot / reduce-scatter: elements of one rank's chunk
  uint64_t in_stride = 0;  // elements between chunks in the caller's input
};

constexpr uint64_t round_up(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

// Bytes of an input area a launch fills: one-shot `total` elements; the
// two-shot kernels lay chunk c at c * round_up(chunk, vector) elements.
constexpr uint64_t area_bytes_used(const ReducePiece &p, bool one_shot, uint64_t esize, uint64_t nranks) {
  return one_shot ? p.total * esize : nranks * round_up(p.chunk, 16 / esize) * esize;
}

// Bytes of one bulk one-shot launch: every rank's whole input, each
// rounded up to 16-byte vectors, shares one input area.
constexpr uint64_t bulk_capacity(uint64_t slot_bytes, uint64_t nranks) { return slot_bytes / nranks / 16 * 16; }

// All-reduce and reduce: count elements.
template <class Emit>
void plan_reduce(uint64_t count, uint64_t esize, uint64_t nranks, uint64_t slot_bytes, bool one_shot, Emit &&emit) {
  const uint64_t vec = 16 / esize, slot_elems = slot_bytes / esize;
  const uint64_t max_elems = one_shot ? slot_elems : slot_elems / (nranks * vec) * (nranks * vec);
  for (uint64_t o = 0, n = 0; o < count; o += n) {
    n = std::min(count - o, max_elems);
    const uint64_t chunk = round_up((n + nranks - 1) / nranks, vec);
    emit(ReducePiece{o, n, chunk, chunk});
  }
}

// Reduce-scatter: count elements per rank (the input holds nranks blocks).
template <class Emit>
void plan_reduce_scatter(uint64_t count, uint64_t esize, uint64_t nranks, uint64_t slot_bytes, Emit &&emit) {
  const uint64_t vec = 16 / esize;
  const uint64_t max_elems = slot_bytes / esize / (nranks * vec) * vec;  // per rank and launch
  for (uint64_t o = 0, m = 0; o < count; o += m) {
    m = std::min(count - o, max_elems);
    emit(ReducePiece{o, m * nranks, m, count});
  }
}

// Broadcast and all-gather: bytes per rank, at most one area a launch.
template <class Emit>
void plan_copies(uint64_t bytes, uint64_t slot_bytes, Emit &&emit) {
  for (uint64_t o = 0, m = 0; o < bytes; o += m) {
    m = std::min(bytes - o, slot_bytes);
    emit(o, m);
  }
}

// Gather: rank q gives bytes[q] (zero allowed, the same list on every
// rank). A launch carries up to gather_stride bytes of every rank's part,
// rank q's in slot q of the root's input area; emit(offset) for each
// launch, whose piece of rank q is gather_piece(bytes[q], offset, stride).
constexpr uint64_t gather_stride(uint64_t slot_bytes, uint64_t nranks) { return slot_bytes / nranks / 16 * 16; }
constexpr uint64_t gather_piece(uint64_t bytes, uint64_t offset, uint64_t stride) {
  return bytes > offset ? std::min(bytes - offset, stride) : 0;
}

template <class Emit>
void plan_gather(const uint64_t *bytes, uint64_t nranks, uint64_t slot_bytes, Emit &&emit) {
  const uint64_t largest = *std::max_element(bytes, bytes + nranks), stride = gather_stride(slot_bytes, nranks);
  for (uint64_t o = 0; o < largest; o += stride) emit(o);
}

}  // namespace plexus::p2p_tree
