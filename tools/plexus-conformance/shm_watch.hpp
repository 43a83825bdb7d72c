// Shared-memory names of plexus in /dev/shm, before and after a session: a
// name that appeared and is still there once every rank has exited leaked
// (PLX-P-13). Other jobs may run beside this one, so a new name counts as
// ours only when it carries the pid of a process of this run
// ("/plexus-<uid>-<pid>-...", core::ShmSegment's scheme); others are
// reported as notes.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

namespace plexus::conformance {

std::set<std::string> plexus_shm_names();

struct ShmLeaks {
  std::vector<std::string> ours, others;
};

ShmLeaks find_shm_leaks(const std::set<std::string> &before, const std::vector<pid_t> &pids);

// shm_unlink()s the names, so a failed run leaves /dev/shm clean.
void remove_shm_names(const std::vector<std::string> &names);

}  // namespace plexus::conformance
