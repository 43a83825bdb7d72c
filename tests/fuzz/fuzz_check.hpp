// What every fuzz target checks besides "no crash": a broken promise is
// reported with the input's story and aborts, which libFuzzer records as a
// finding (an artifact the run names) like any sanitizer report.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include "plexus/types.h"

namespace plexus::fuzz {

[[noreturn]] inline void broken(const char *what, int status, const char *message) {
  std::fprintf(stderr, "fuzz: broken promise: %s (status %d, last error: %s)\n", what, status,
               message ? message : "(none)");
  std::abort();
}

inline bool one_of(plx_status status, std::initializer_list<plx_status> allowed) {
  for (const plx_status a : allowed)
    if (status == a) return true;
  return false;
}

}  // namespace plexus::fuzz

// Aborts with `what` unless `condition` holds.
#define FUZZ_EXPECT(condition, what, status, message) \
  do {                                                \
    if (!(condition)) ::plexus::fuzz::broken(what, status, message); \
  } while (0)
