#include "launcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "shm_watch.hpp"

extern char **environ;

namespace plexus::conformance {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kUniqueIds = 8;

struct Child {
  int32_t rank = 0;
  pid_t pid = -1;
  int report_fd = -1, stdout_fd = -1;
  RecordParser parser;
  std::string stdout_text;
  bool ended = false, expect_death = false, reaped = false, killed = false;
  int status = 0;
  bool done() const { return reaped && report_fd < 0 && stdout_fd < 0; }
};

std::string hex(const plx_unique_id &id) {
  std::string out;
  for (const uint8_t b : id.bytes) out += fmt::format("{:02x}", b);
  return out;
}

// The environment of the ranks: ours without PLXCONF_*, then theirs.
std::vector<std::string> base_environment(const std::string &session, const std::string &ids,
                                          const std::string &dir, int32_t nranks) {
  std::vector<std::string> env;
  for (char **e = environ; *e; ++e)
    if (std::strncmp(*e, "PLXCONF_", 8) != 0) env.emplace_back(*e);
  env.push_back("PLXCONF_SESSION=" + session);
  env.push_back("PLXCONF_IDS=" + ids);
  env.push_back("PLXCONF_DIR=" + dir);
  env.push_back(fmt::format("PLXCONF_NRANKS={}", nranks));
  return env;
}

std::vector<char *> c_strings(std::vector<std::string> &strings) {
  std::vector<char *> out;
  for (std::string &s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork + exec of this program. Everything the child needs is prepared
// before fork, so the child only makes async-signal-safe calls (the
// backend may have started threads in the launcher).
bool spawn(Child &child, std::vector<std::string> argv, std::vector<std::string> env) {
  int report[2], out[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return false;
  if (::pipe2(out, O_CLOEXEC) != 0) return ::close(report[0]), ::close(report[1]), false;
  env.push_back(fmt::format("PLXCONF_RANK={}", child.rank));
  env.push_back(fmt::format("PLXCONF_FD={}", report[1]));
  std::vector<char *> args = c_strings(argv), envp = c_strings(env);
  const pid_t parent = ::getpid();
  child.pid = ::fork();
  if (child.pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(112);
    ::fcntl(report[1], F_SETFD, 0);
    ::dup2(out[1], STDOUT_FILENO);
    ::execve("/proc/self/exe", args.data(), envp.data());
    ::_exit(127);
  }
  ::close(report[1]), ::close(out[1]);
  child.report_fd = report[0], child.stdout_fd = out[0];
  if (child.pid < 0) return ::close(report[0]), ::close(out[0]), false;
  return true;
}

const char *signal_name(int sig) {
  const char *name = ::sigabbrev_np(sig);
  return name ? name : "?";
}

class SessionRun {
 public:
  SessionRun(const SessionSpec &spec, Results *results, Clock::time_point deadline)
      : spec_(spec), results_(*results), deadline_(deadline) {}
  void start(const std::vector<std::string> &argv, const std::vector<std::string> &env, int32_t nranks);
  void wait();
  void judge();
  void check_stdout();
  std::vector<pid_t> pids() const;

 private:
  void pump(Child &c, int *fd, bool is_report);
  void handle(Child &c, const Record &r);
  void kill_all(const std::string &why);
  void reap(bool block);
  void drain(Child &c);

  const SessionSpec &spec_;
  Results &results_;
  Clock::time_point deadline_, last_activity_ = Clock::now();
  std::vector<Child> children_;
  std::string kill_reason_;
};

void SessionRun::start(const std::vector<std::string> &argv, const std::vector<std::string> &env,
                       int32_t nranks) {
  children_.resize(static_cast<size_t>(nranks));
  for (int32_t r = 0; r < nranks; ++r) {
    children_[r].rank = r;
    if (!spawn(children_[r], argv, env)) {
      children_[r].reaped = true;
      results_.add("-", "rank processes", spec_.name, Verdict::fail,
                   fmt::format("could not start rank {}: {}", r, std::strerror(errno)));
    }
  }
}

void SessionRun::handle(Child &c, const Record &r) {
  if (r.empty()) return;
  if (r[0] == "K")
    c.expect_death = true;
  else if (r[0] == "E")
    c.ended = true;
  else
    results_.on_record(c.rank, r);
}

void SessionRun::pump(Child &c, int *fd, bool is_report) {
  char buf[65536];
  const ssize_t n = ::read(*fd, buf, sizeof(buf));
  if (n < 0 && errno == EINTR) return;
  if (n <= 0) return void((::close(*fd), *fd = -1));
  last_activity_ = Clock::now();
  if (!is_report) {  // kept only to quote it; 4 KiB is plenty
    c.stdout_text.append(
        buf, std::min(static_cast<size_t>(n), 4096 - std::min<size_t>(4096, c.stdout_text.size())));
    return;
  }
  std::vector<Record> records;
  c.parser.feed(buf, static_cast<size_t>(n), &records);
  for (const Record &r : records) handle(c, r);
}

void SessionRun::reap(bool block) {
  for (Child &c : children_) {
    if (c.reaped || c.pid <= 0) continue;
    const pid_t got = ::waitpid(c.pid, &c.status, block ? 0 : WNOHANG);
    if (got == c.pid) c.reaped = true;
    if (c.reaped && block) drain(c);
  }
}

// Reads what is already in a reaped rank's pipes, without waiting: whatever
// else still holds them open (a grandchild) does not keep us here.
void SessionRun::drain(Child &c) {
  for (int *fd : {&c.report_fd, &c.stdout_fd})
    for (pollfd p{*fd, POLLIN, 0}; *fd >= 0 && ::poll(&p, 1, 0) > 0; p.fd = *fd)
      pump(c, fd, fd == &c.report_fd);
}

void SessionRun::kill_all(const std::string &why) {
  kill_reason_ = why;
  for (Child &c : children_)
    if (!c.reaped && c.pid > 0) ::kill(c.pid, SIGKILL), c.killed = true;
  reap(true);
  for (Child &c : children_)
    for (int *fd : {&c.report_fd, &c.stdout_fd})
      if (*fd >= 0) ::close(*fd), *fd = -1;
}

void SessionRun::wait() {
  while (!std::all_of(children_.begin(), children_.end(), [](const Child &c) { return c.done(); })) {
    std::vector<pollfd> fds;
    std::vector<std::pair<Child *, int *>> owners;
    for (Child &c : children_)
      for (int *fd : {&c.report_fd, &c.stdout_fd})
        if (*fd >= 0) fds.push_back({*fd, POLLIN, 0}), owners.emplace_back(&c, fd);
    ::poll(fds.data(), fds.size(), 100);
    for (size_t k = 0; k < fds.size(); ++k)
      if (fds[k].revents)
        pump(*owners[k].first, owners[k].second, owners[k].second == &owners[k].first->report_fd);
    reap(false);
    const auto quiet = std::chrono::duration<double>(Clock::now() - last_activity_).count();
    if (quiet * 1000 > spec_.quiet_ms)
      kill_all(fmt::format(
          "did not return: no progress from any rank for {:.1f} s; killed by plexus-conformance", quiet));
    else if (Clock::now() > deadline_)
      kill_all("still running at the run's deadline (--deadline-s); killed by plexus-conformance");
  }
}

// What became of each rank: a planned death, a crash, a kill.
void SessionRun::judge() {
  bool blamed = false;
  for (Child &c : children_) {
    if (c.pid <= 0) continue;
    const std::string who = fmt::format("rank {} (pid {})", c.rank, c.pid);
    std::string why;
    if (c.killed) {
      blamed |= results_.abandon(c.rank, kill_reason_);
      continue;
    }
    if (WIFSIGNALED(c.status) && c.expect_death && WTERMSIG(c.status) == SIGKILL) {
      results_.close_open(c.rank);
      continue;
    }
    if (WIFSIGNALED(c.status))
      why = fmt::format("died of signal {} (SIG{})", WTERMSIG(c.status), signal_name(WTERMSIG(c.status)));
    else if (WEXITSTATUS(c.status) != 0 || !c.ended)
      why = fmt::format("exited with status {} before finishing", WEXITSTATUS(c.status));
    if (!why.empty() && !results_.abandon(c.rank, why))
      results_.add("-", "rank processes", spec_.name, Verdict::fail, who + " " + why);
  }
  if (!kill_reason_.empty() && !blamed)
    results_.add("-", "rank processes", spec_.name, Verdict::fail, "ranks outside any case " + kill_reason_);
}

// PLX-P-7: a plugin never prints to stdout; the ranks themselves never do.
void SessionRun::check_stdout() {
  for (const Child &c : children_) {
    const bool quiet = c.stdout_text.empty();
    results_.add(
        "PLX-P-7", "nothing on stdout", spec_.name, quiet ? Verdict::pass : Verdict::fail,
        quiet ? "" : fmt::format("rank {} wrote to stdout: {:?}", c.rank, c.stdout_text.substr(0, 200)));
  }
}

std::vector<pid_t> SessionRun::pids() const {
  std::vector<pid_t> pids{::getpid()};
  for (const Child &c : children_) pids.push_back(c.pid);
  return pids;
}

void check_shm(const SessionSpec &spec, const std::set<std::string> &before, const std::vector<pid_t> &pids,
               Results &results) {
  const ShmLeaks leaks = find_shm_leaks(before, pids);
  std::string names;
  for (const std::string &n : leaks.ours) names += " /dev/shm/" + n;
  results.add(
      "PLX-P-13", "no shared-memory name left", spec.name, leaks.ours.empty() ? Verdict::pass : Verdict::fail,
      leaks.ours.empty() ? "" : fmt::format("left behind after every rank exited (now removed):{}", names));
  remove_shm_names(leaks.ours);
  for (const std::string &n : leaks.others)
    results.note(fmt::format(
        "/dev/shm/{} appeared during session {} but carries no pid of this run; not counted", n, spec.name));
}

}  // namespace

Launcher::Launcher(const Options &opts, plx_backend_h backend, std::vector<std::string> argv,
                   Results *results)
    : opts_(opts),
      backend_(backend),
      argv_(std::move(argv)),
      results_(results),
      deadline_(Clock::now() + std::chrono::seconds(opts.deadline_s)) {}

double Launcher::run(const SessionSpec &spec) {
  const Clock::time_point start = Clock::now();
  std::string ids;
  for (int k = 0; k < kUniqueIds; ++k) {
    plx_unique_id id;
    if (plx_get_unique_id(backend_, &id) != PLX_OK) {
      results_->add("-", "unique ids", spec.name, Verdict::fail,
                    fmt::format("plx_get_unique_id: {}", plx_last_error()));
      return 0;
    }
    ids += (k ? "," : "") + hex(id);
  }
  char dir[] = "/tmp/plexus-conformance-XXXXXX";
  if (::mkdtemp(dir) == nullptr)
    return results_->note("mkdtemp failed; session " + spec.name + " not run"), 0;
  const std::set<std::string> shm_before = plexus_shm_names();
  SessionRun run(spec, results_, deadline_);
  run.start(argv_, base_environment(spec.name, ids, dir, opts_.nranks), opts_.nranks);
  run.wait();
  run.judge();
  run.check_stdout();
  check_shm(spec, shm_before, run.pids(), *results_);
  results_->check_hashes();
  std::filesystem::remove_all(dir);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace plexus::conformance
