// Forked ranks of shm-native for the plugin's tests: each rank opens the
// backend, joins one communicator, runs a body and exits with its code.
#pragma once

#include <sys/types.h>

#include <functional>
#include <vector>

#include "plexus/plexus.h"

namespace plexus::test {

// Open descriptors of this process.
int count_fds();

// Runs body(comm, rank) on `nranks` forked ranks (timeout_ms for the
// communicator); a rank fails (exits non-zero) when the body does, when
// destroy fails, or when it has more descriptors after destroy than before
// init. Returns how many ranks failed; *pids_out gets their pids.
int run_ranks(int nranks, const std::function<int(plx_comm_h, int)> &body, int timeout_ms = 10000,
              std::vector<pid_t> *pids_out = nullptr);
// The same, with the backend the ranks' communicator came from; each rank
// runs before_init(rank), when given, before it joins the communicator.
int run_ranks_on_backend(int nranks, const std::function<int(plx_backend_h, plx_comm_h, int)> &body,
                         int timeout_ms = 10000, std::vector<pid_t> *pids_out = nullptr,
                         const std::function<void(int)> &before_init = {});

}  // namespace plexus::test
