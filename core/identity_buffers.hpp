// Device buffers that hold a reduction's identity element, for a rank that
// takes part in a reduction without contributing
// (PLX_COLL_FLAG_NO_CONTRIBUTION) on a backend whose kernels, or NCCL, read
// an input buffer: the rank's send buffer is replaced by one of these, and
// the collective runs as if the rank had passed the identity itself. The
// identity leaves every other rank's value bit for bit unchanged
// (core::fill_identity), so the result is the one the flag promises.
//
// A buffer is filled once, when it is made, and never written again: calls
// of one group, graphs captured earlier and kernels still in flight may all
// read it. A larger call makes a larger buffer; the smaller one stays until
// the communicator is destroyed, because a captured graph may still read it.
#pragma once

#include <cstdint>
#include <vector>

#include "plexus/plugin.h"
#include "plexus/types.h"

namespace plexus::core {

class IdentityBuffers {
 public:
  explicit IdentityBuffers(int device) : device_(device) {}
  // Frees every buffer: the owner has synchronised the device, or it is lost.
  ~IdentityBuffers();
  IdentityBuffers(const IdentityBuffers &) = delete;
  IdentityBuffers &operator=(const IdentityBuffers &) = delete;

  // *out = a device buffer on the communicator's device holding at least
  // `count` elements of the identity of `op` for `dtype`, ready when this
  // returns (the fill is synchronous; later work on any stream sees it).
  // Allocating is the only slow path, and it may run while the caller's
  // stream is being captured into a CUDA graph (the capture is not
  // disturbed). PLX_ERR_INVALID_ARGUMENT for an unknown dtype or op,
  // PLX_ERR_OUT_OF_MEMORY or PLX_ERR_DEVICE when CUDA fails.
  plx_status get(plx_dtype dtype, plx_reduce_op op, uint64_t count, const void **out);

  // Bytes held, retired buffers included (statistics and tests).
  uint64_t bytes_held() const;

 private:
  struct Buffer {
    uint64_t pattern;  // the identity repeated over 8 bytes (identity_pattern)
    uint64_t bytes;
    void *ptr;
  };
  plx_status make(uint64_t pattern, uint64_t bytes, Buffer *made);

  int device_;
  std::vector<Buffer> current_;  // the largest of each pattern
  std::vector<Buffer> retired_;  // outgrown, kept for graphs that read them
};

// The collective a plugin runs for a rank that passed
// PLX_COLL_FLAG_NO_CONTRIBUTION: `desc` with `send` an identity buffer as long
// as the rank's input (count elements; count x nranks for reduce-scatter)
// and its options without the flag (*options, which stand_in->options points
// to). Only reductions take the flag: for any other collective
// PLX_ERR_UNSUPPORTED naming `plugin`; the errors of IdentityBuffers::get.
// A count of 0 makes no buffer (send becomes NULL).
plx_status stand_in_for_absent_rank(IdentityBuffers &buffers, const plx_coll_desc &desc, int32_t nranks,
                                    const char *plugin, plx_coll_options *options, plx_coll_desc *stand_in);

}  // namespace plexus::core
