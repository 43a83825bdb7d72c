// Unguessable random bytes from the kernel (getrandom), for shared-memory
// names and rendezvous nonces that another user must not be able to predict.
#pragma once

#include <cstddef>
#include <string>

#include "plexus/types.h"

namespace plexus::core {

// Fills `bytes` bytes at `out`; PLX_ERR_SYSTEM (last error set) when the
// kernel cannot deliver them.
plx_status random_bytes(void *out, size_t bytes);

// 2 * n_bytes lowercase hex digits, or "" when random_bytes failed (the last
// error then says why).
std::string random_hex(size_t n_bytes);

}  // namespace plexus::core
