// GPU test cases that cannot run on this machine (too few GPUs, a plugin
// that declines it) report that here instead of passing quietly: the
// reason goes to the test's log, the executable's summary counts the
// skipped cases, and an executable whose every case was skipped exits 77,
// which meson reports as skipped (tests/gpu_main.cpp).
#pragma once

#include <string>

namespace plexus::test {

// Marks the running test case skipped for `why`; the case then returns.
void skip_case(const std::string &why);

}  // namespace plexus::test
