#include "tests/plugins/shm-native/fork_ranks.hpp"

#include <dirent.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace plexus::test {

int count_fds() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

int run_ranks(int nranks, const std::function<int(plx_comm_h, int)> &body, int timeout_ms,
              std::vector<pid_t> *pids_out) {
  return run_ranks_on_backend(nranks, [&](plx_backend_h, plx_comm_h c, int r) { return body(c, r); },
                              timeout_ms, pids_out);
}

namespace {

// Forks one process per rank that runs rank_main(rank) and exits with its
// code; returns how many exited with 0, *pids_out (when given) their pids.
int fork_ranks(int nranks, const std::function<int(int)> &rank_main, std::vector<pid_t> *pids_out = nullptr) {
  std::vector<pid_t> pids;
  for (int r = 0; r < nranks; ++r) {
    const pid_t pid = fork();
    if (pid == 0) _exit(rank_main(r));
    pids.push_back(pid);
  }
  int succeeded = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    succeeded += WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (pids_out) *pids_out = pids;
  return succeeded;
}

}  // namespace

int run_ranks_on_backend(int nranks, const std::function<int(plx_backend_h, plx_comm_h, int)> &body,
                         int timeout_ms, std::vector<pid_t> *pids_out,
                         const std::function<void(int)> &before_init) {
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  plx_unique_id id;
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  const int succeeded = fork_ranks(nranks, [&](int r) {
    plx_comm_config cfg = PLX_COMM_CONFIG_INIT;
    cfg.timeout_ms = timeout_ms;
    if (before_init) before_init(r);
    const int fds = count_fds();
    plx_comm_h comm = nullptr;
    int code = plx_comm_init(backend, &id, nranks, r, &cfg, &comm) == PLX_OK ? body(backend, comm, r) : 90;
    if (comm && plx_comm_destroy(comm) != PLX_OK) code = code ? code : 81;
    if (code == 0 && count_fds() != fds) code = 80;
    if (code) fprintf(stderr, "rank %d exits with %d: %s\n", r, code, plx_last_error());
    return code;
  }, pids_out);
  plx_backend_close(backend);
  return nranks - succeeded;
}

int ranks_refused_at_init(int nranks, const std::function<void(int)> &setup, const char *naming) {
  plx_backend_h parent = nullptr;
  REQUIRE(plx_backend_open("shm-native", &parent) == PLX_OK);
  plx_unique_id id;
  REQUIRE(plx_get_unique_id(parent, &id) == PLX_OK);
  const int refused = fork_ranks(nranks, [&](int r) {
    setup(r);
    plx_backend_h backend = nullptr;
    plx_comm_h comm = nullptr;
    const plx_comm_config cfg = PLX_COMM_CONFIG_INIT;
    const bool ok = plx_backend_open("shm-native", &backend) == PLX_OK &&
                    plx_comm_init(backend, &id, nranks, r, &cfg, &comm) == PLX_ERR_INVALID_USAGE &&
                    std::strstr(plx_last_error(), naming) != nullptr;
    return ok && comm == nullptr ? 0 : 1;
  });
  plx_backend_close(parent);
  return refused;
}

}  // namespace plexus::test
