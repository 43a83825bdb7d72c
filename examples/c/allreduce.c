/* allreduce.c: the smallest plexus host. Opens the backend PLEXUS_BACKEND
 * names, joins a communicator of N ranks (this process and N-1 forks) and
 * sums a float32 vector in host memory across them.
 *   PLEXUS_BACKEND=shm-native ./plexus-example-allreduce 4 */
#define _POSIX_C_SOURCE 200809L
#include <plexus/plexus.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(call)                                                                      \
  do {                                                                                   \
    plx_status s_ = (call);                                                              \
    if (s_ != PLX_OK) {                                                                  \
      fprintf(stderr, "%s failed: %s: %s\n", #call, plx_status_string(s_), plx_last_error()); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

int main(int argc, char **argv) {
  int nranks = argc > 1 ? atoi(argv[1]) : 1, rank = 0, ok = 1, status;
  plx_backend_h backend;
  plx_unique_id id;
  plx_comm_h comm;
  CHECK(plx_backend_open(NULL, &backend)); /* NULL: read PLEXUS_BACKEND */
  CHECK(plx_get_unique_id(backend, &id));
  /* Every rank needs the id: here fork copies it; a real host sends the 256
   * bytes over its own channel (a TCP store, MPI_Bcast). */
  for (int r = 1; r < nranks && rank == 0; ++r)
    if (fork() == 0) rank = r;
  CHECK(plx_comm_init(backend, &id, nranks, rank, NULL, &comm));
  float v[4] = {(float)rank, 1.0f, 2.0f, 3.0f};
  /* In place; stream NULL: host memory, the call returns with the result. */
  CHECK(plx_all_reduce(comm, v, v, 4, PLX_FLOAT32, PLX_SUM, NULL, NULL));
  printf("rank %d: %g %g %g %g\n", rank, v[0], v[1], v[2], v[3]);
  ok = v[1] == (float)nranks && v[0] == (float)(nranks * (nranks - 1) / 2);
  CHECK(plx_comm_destroy(comm));
  CHECK(plx_backend_close(backend));
  if (rank == 0)
    while (wait(&status) > 0) ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return ok ? 0 : 1;
}
