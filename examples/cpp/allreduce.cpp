// allreduce.cpp: the smallest plexus host in C++ (plexus/plexus.hpp). Opens
// the backend PLEXUS_BACKEND names, joins a communicator of N ranks (this
// process and N-1 forks) and sums a float vector in host memory across them.
//   PLEXUS_BACKEND=shm-native ./plexus-example-allreduce-cpp 4
#include <plexus/plexus.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// One rank's work. RAII closes the communicator and the backend on every
// path; a failing call throws plexus::error with plx_last_error()'s text.
bool run_rank(plexus::backend &backend, const plx_unique_id &id, int nranks, int rank) {
  plexus::comm comm(backend, id, nranks, rank);
  std::vector<float> v(1000, 1.0f);
  v[0] = static_cast<float>(rank);
  comm.all_reduce(v);  // in place, sum; host memory: returns with the result
  std::printf("rank %d: %g %g\n", rank, v[0], v[1]);
  return v[1] == static_cast<float>(nranks) &&
         v[0] == static_cast<float>(nranks * (nranks - 1) / 2);
}

}  // namespace

int main(int argc, char **argv) {
  int nranks = argc > 1 ? std::atoi(argv[1]) : 1, rank = 0;
  bool ok = false;
  try {
    plexus::backend backend;  // no spec: read PLEXUS_BACKEND
    plx_unique_id id = backend.unique_id();
    // Every rank needs the id: here fork copies it; a real host sends the
    // 256 bytes over its own channel (a TCP store, MPI_Bcast).
    for (int r = 1; r < nranks && rank == 0; ++r)
      if (fork() == 0) rank = r;
    ok = run_rank(backend, id, nranks, rank);
  } catch (const plexus::error &e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
  }
  int status = 0;
  if (rank == 0)
    while (wait(&status) > 0) ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return ok ? 0 : 1;
}
