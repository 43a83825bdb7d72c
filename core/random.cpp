#include "core/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/status.hpp"

namespace plexus::core {

plx_status random_bytes(void *out, size_t bytes) {
  auto *next = static_cast<unsigned char *>(out);
  while (bytes > 0) {
    // Flags 0: the urandom pool, which blocks only before it is first seeded.
    const ssize_t got = ::getrandom(next, bytes, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      return fail(PLX_ERR_SYSTEM, "getrandom: {} (errno {})", std::strerror(errno), errno);
    next += got;
    bytes -= static_cast<size_t>(got);
  }
  return PLX_OK;
}

std::string random_hex(size_t n_bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::vector<unsigned char> raw(n_bytes);
  if (random_bytes(raw.data(), raw.size()) != PLX_OK) return {};
  std::string hex;
  hex.reserve(2 * n_bytes);
  for (const unsigned char byte : raw) {
    hex.push_back(digits[byte >> 4]);
    hex.push_back(digits[byte & 0xf]);
  }
  return hex;
}

}  // namespace plexus::core
