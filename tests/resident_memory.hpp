// This process's resident memory, for the tests that look for leaks (the
// soak, the loader's handle memory).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace plexus::test {

// Resident set size in KiB, from /proc/self/statm; 0 when it cannot be read.
inline int64_t resident_kib() {
  long pages = 0, resident = 0;
  if (FILE *f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<int64_t>(resident) * (sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace plexus::test
