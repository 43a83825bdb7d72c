// The launcher's children: the rank processes and mpirun. Every child dies
// with the launcher (PR_SET_PDEATHSIG), reads /dev/null, and writes result
// lines into a pipe the launcher polls. On a failure or the timeout the
// launcher stops and reaps every child, so none outlives a run or stays a
// zombie.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::bench {

struct SpawnSpec {
  std::string name;               // "rank 2", "mpirun": for messages
  std::string exe;
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // NAME=value, added to the launcher's environment
  // A rank writes its results into a pipe it gets as PLEXUS_BENCH_FD.
  // mpirun closes such descriptors (and relaying its ranks' stdout would
  // wake it amid the timings), so its rank 0 opens the FIFO that
  // PLEXUS_BENCH_RESULTS names instead, and mpirun's stdout goes to stderr.
  bool fifo = false;
  int death_signal = SIGKILL;     // mpirun gets SIGTERM, to stop its own ranks
  bool own_group = false;         // signals then go to the whole group
};

struct Child {
  std::string name;
  pid_t pid = -1;
  bool own_group = false;
  int fd = -1;           // read end of the pipe or FIFO; -1 after EOF
  std::string pending;   // a line not yet complete
  bool reaped = false;
  int status = 0;
};

using LineHandler = std::function<void(Child &, std::string_view)>;

// Starts a child; false after printing why.
bool spawn(const SpawnSpec &spec, Child *out);

// Hands every complete line to on_line until all children have closed their
// pipes and exited. Returns "" on success, else why it stopped early (a
// child failed, or the deadline passed); the children left are the
// caller's to stop.
std::string pump(std::vector<Child> &kids, std::chrono::steady_clock::time_point deadline,
                 const LineHandler &on_line);

// Lets the children exit by themselves for `grace` (they see a peer's
// failure), then SIGTERM, then SIGKILL; reaps them all and closes the pipes.
void stop_all(std::vector<Child> &kids, std::chrono::milliseconds grace);

// mpirun's ranks outlive a killed mpirun for a moment; as a subreaper the
// launcher inherits them instead of init (which may never reap them), and
// reap_orphans() collects every such child until none is left or `wait`
// has passed.
void become_subreaper();
void reap_orphans(std::chrono::milliseconds wait);

// SIGINT, SIGTERM and SIGHUP end pump() instead of the launcher, so that
// the children are stopped and the FIFOs removed on the way out.
void catch_stop_signals();

// "exited with status 3", "killed by signal 9".
std::string describe_status(int status);

}  // namespace plexus::bench
