// The parent side of a fault trial: plan, fork the ranks, strike, wait with
// a hang guard, look for leaked names, and judge what every rank reported.
#include "tests/faults/trial.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>

#include "tools/plexus-conformance/shm_watch.hpp"

namespace plexus::faults {
namespace {

struct Ranks {
  std::vector<pid_t> pids;
  std::vector<int> wait_status;
  RankReport *reports = nullptr;
  size_t map_bytes = 0;
};

template <typename... Args>
void problem(TrialResult *t, fmt::format_string<Args...> f, Args &&...args) {
  t->ok = false;
  t->problems.push_back(fmt::format(f, std::forward<Args>(args)...));
}

void sleep_until_ns(int64_t when) {
  for (int64_t left; (left = when - now_ns()) > 0;) usleep(static_cast<useconds_t>(std::min<int64_t>(left / 1000, 100000)));
}

void fork_ranks(plx_backend_h backend, const plx_unique_id &id, const Plan &plan, Ranks *r) {
  r->map_bytes = sizeof(RankReport) * static_cast<size_t>(plan.nranks);
  void *map = mmap(nullptr, r->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  r->reports = static_cast<RankReport *>(map);
  for (int32_t k = 0; k < plan.nranks; ++k) new (&r->reports[k]) RankReport();
  for (int32_t k = 0; k < plan.nranks; ++k) {
    const pid_t pid = fork();
    if (pid == 0) _exit(run_rank(backend, id, plan, k, r->reports));
    r->pids.push_back(pid);
  }
  r->wait_status.assign(r->pids.size(), -1);
}

// Waits for every rank; one still running at the deadline hangs, is counted
// and killed, so a hang never stops the run.
void reap(Ranks *r, int64_t deadline, TrialResult *t) {
  size_t left = r->pids.size();
  while (left > 0) {
    for (size_t k = 0; k < r->pids.size(); ++k)
      if (r->wait_status[k] == -1 && waitpid(r->pids[k], &r->wait_status[k], WNOHANG) == r->pids[k]) --left;
    if (left == 0) break;
    if (now_ns() > deadline) {
      for (size_t k = 0; k < r->pids.size(); ++k) {
        if (r->wait_status[k] != -1) continue;
        ++t->hung;
        problem(t, "rank {} hung (report: {} ops, status {})", k, r->reports[k].ops_done, r->reports[k].fail_status);
        kill(r->pids[k], SIGKILL);
        waitpid(r->pids[k], &r->wait_status[k], 0);
      }
      break;
    }
    usleep(2000);
  }
}

bool expected_status(const Plan &p, plx_status s) {
  switch (p.fault) {
    case Fault::kill: return s == PLX_ERR_PEER_LOST || s == PLX_ERR_TIMEOUT;
    case Fault::never_arrives: return s == PLX_ERR_TIMEOUT;
    case Fault::abort: return s == PLX_ERR_ABORTED;
  }
  return false;
}

// How long after the fault a survivor's call returned, and the bound: the
// timeout plus the margin; an abort involves no timeout.
void judge_latency(const Plan &p, int32_t k, const RankReport &rep, int64_t fault_ns, TrialResult *t) {
  const double ms = static_cast<double>(rep.fail_ns - fault_ns) / 1e6;
  const int32_t bound = p.fault == Fault::abort ? kMarginMs : p.timeout_ms + kMarginMs;
  const bool never_arrived_here = p.fault == Fault::never_arrives && k == p.victim;
  double &worst = rep.fail_status == PLX_ERR_PEER_LOST ? t->max_lost_ms
                  : rep.fail_status == PLX_ERR_TIMEOUT ? t->max_timeout_ms : t->max_aborted_ms;
  if (!never_arrived_here) worst = std::max(worst, ms);
  if (ms > bound && !never_arrived_here)
    problem(t, "rank {} failed {:.1f} ms after the fault, past {} ms", k, ms, bound);
  // Too early is wrong too: a timeout before timeout_ms, or a failure before the fault.
  const double earliest = p.fault == Fault::never_arrives ? 0.9 * p.timeout_ms : -1.0;
  if (ms < earliest && !never_arrived_here)
    problem(t, "rank {} failed {:.1f} ms after the fault, before the timeout of {} ms", k, ms, p.timeout_ms);
}

void count_outcome(plx_status s, TrialResult *t) {
  t->peer_lost += s == PLX_ERR_PEER_LOST;
  t->timeouts += s == PLX_ERR_TIMEOUT;
  t->aborted += s == PLX_ERR_ABORTED;
}

// The checks after the first failure: sticky, destroy, descriptors.
void judge_aftermath(int32_t k, const RankReport &rep, TrialResult *t) {
  if (rep.init_status == PLX_OK) {
    if (rep.sticky_status != rep.fail_status || rep.again_status != rep.fail_status ||
        rep.async_status != rep.fail_status)
      problem(t, "rank {}: after {} the next calls gave {}, {} and async {}", k, plx_status_string(rep.fail_status),
              plx_status_string(rep.sticky_status), plx_status_string(rep.again_status), plx_status_string(rep.async_status));
    if (rep.sticky_ns > 500'000'000)
      problem(t, "rank {}: the call after the failure took {} ms", k, rep.sticky_ns / 1000000);
  }
  if (rep.destroy_status != PLX_OK) problem(t, "rank {}: destroy gave {}", k, plx_status_string(rep.destroy_status));
  if (rep.fds_after != rep.fds_before) {
    ++t->fd_leaks;
    problem(t, "rank {}: {} descriptors before init, {} after destroy", k, rep.fds_before, rep.fds_after);
  }
}

void judge_rank(const Plan &p, int32_t k, const RankReport &rep, int wait_status, int64_t fault_ns, TrialResult *t) {
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0)
    return problem(t, "rank {} ended with wait status {:#x}: {}", k, wait_status, rep.message);
  const bool stayed_away = p.fault == Fault::never_arrives && k == p.victim && p.stall_op < 0;
  if (stayed_away) return;
  ++t->survivors;
  count_outcome(rep.fail_status, t);
  t->fault_in_init |= rep.init_status != PLX_OK;
  if (!expected_status(p, rep.fail_status))
    return problem(t, "rank {} got {} after {} ops: {}", k, plx_status_string(rep.fail_status), rep.ops_done, rep.message);
  if (rep.message[0] == '\0') problem(t, "rank {}: {} without a message", k, plx_status_string(rep.fail_status));
  judge_latency(p, k, rep, fault_ns, t);
  judge_aftermath(k, rep, t);
}

void judge_victim_killed(const Plan &p, const Ranks &r, TrialResult *t) {
  const int st = r.wait_status[static_cast<size_t>(p.victim)];
  if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
    problem(t, "the victim, rank {}, was not killed (wait status {:#x})", p.victim, st);
}

// Plexus names that appeared during the trial and carry the pid of one of
// its processes (ours); they are removed so the next trial starts clean.
void check_names(const std::set<std::string> &before, const Ranks &r, TrialResult *t) {
  std::vector<pid_t> pids = r.pids;
  pids.push_back(getpid());  // the unique id's rendezvous name carries the parent's pid
  const conformance::ShmLeaks leaks = conformance::find_shm_leaks(before, pids);
  t->shm_leaks = static_cast<int32_t>(leaks.ours.size());
  for (const std::string &name : leaks.ours) problem(t, "/dev/shm/{} was left behind", name);
  conformance::remove_shm_names(leaks.ours);
}

// SIGKILL at the planned moment; returns when it was sent.
int64_t kill_victim(const Plan &p, const Ranks &r, int64_t start) {
  sleep_until_ns(start + p.moment_ms * 1000000ll);
  const int64_t when = now_ns();
  kill(r.pids[static_cast<size_t>(p.victim)], SIGKILL);
  return when;
}

// Every rank but a killed one is judged on what it reported.
void judge_all(const Plan &p, const Ranks &r, int64_t fault_ns, TrialResult *t) {
  for (int32_t k = 0; k < p.nranks; ++k)
    if (p.fault != Fault::kill || k != p.victim)
      judge_rank(p, k, r.reports[k], r.wait_status[static_cast<size_t>(k)], fault_ns, t);
  if (p.fault == Fault::kill) judge_victim_killed(p, r, t);
}

int64_t fault_moment(const Plan &p, const Ranks &r, int64_t killed_ns) {
  if (p.fault == Fault::kill) return killed_ns;
  return r.reports[p.victim].event_ns;
}

}  // namespace

const char *fault_name(Fault f) {
  switch (f) {
    case Fault::kill: return "sigkill";
    case Fault::never_arrives: return "never_arrives";
    case Fault::abort: return "abort";
  }
  return "?";
}

Plan make_plan(Fault fault, uint64_t seed, int32_t max_ranks, int32_t timeout_ms) {
  std::mt19937_64 gen(seed);
  Plan p;
  p.fault = fault, p.seed = seed, p.timeout_ms = timeout_ms;
  p.nranks = 2 + static_cast<int32_t>(gen() % static_cast<uint64_t>(std::max(1, max_ranks - 1)));
  p.victim = static_cast<int32_t>(gen() % static_cast<uint64_t>(p.nranks));
  // One trial in four strikes in the first 20 ms, mostly while the ranks
  // still join; the others anywhere in the first 300 ms of collectives.
  p.moment_ms = static_cast<int32_t>(gen() % 4 == 0 ? gen() % 20 : gen() % 300);
  p.stall_op = static_cast<int32_t>(gen() % 21) - 1;  // -1: never joins
  p.pool_buffers = gen() % 2 == 0;
  return p;
}

TrialResult run_trial(plx_backend_h backend, const Plan &plan) {
  TrialResult t;
  t.plan = plan;
  const std::set<std::string> before = conformance::plexus_shm_names();
  plx_unique_id id{};
  if (plx_status s = plx_get_unique_id(backend, &id)) {
    problem(&t, "plx_get_unique_id: {}: {}", plx_status_string(s), plx_last_error());
    return t;
  }
  Ranks r;
  const int64_t start = now_ns();
  fork_ranks(backend, id, plan, &r);
  const int64_t killed_ns = plan.fault == Fault::kill ? kill_victim(plan, r, start) : 0;
  reap(&r, start + (plan.moment_ms + 6ll * (plan.timeout_ms + kMarginMs)) * 1000000, &t);
  judge_all(plan, r, fault_moment(plan, r, killed_ns), &t);
  check_names(before, r, &t);
  munmap(r.reports, r.map_bytes);
  return t;
}

}  // namespace plexus::faults
