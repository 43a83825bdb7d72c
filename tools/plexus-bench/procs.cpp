#include "tools/plexus-bench/procs.hpp"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

extern char **environ;

namespace plexus::bench {
namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t stop_signal = 0;

void on_stop_signal(int sig) { stop_signal = sig; }

std::vector<std::string> child_environment(const std::vector<std::string> &extra) {
  std::vector<std::string> env;
  for (char **e = environ; *e; ++e) {
    const std::string_view entry = *e;
    bool replaced = false;
    for (const std::string &x : extra)
      replaced |= entry.substr(0, entry.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1);
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char *> pointers(std::vector<std::string> &strings) {
  std::vector<char *> out;
  for (std::string &s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void become(const SpawnSpec &s, int write_fd, pid_t parent, char **argv, char **envp) {
  prctl(PR_SET_PDEATHSIG, s.death_signal);
  if (getppid() != parent) _exit(127);  // the launcher died before prctl took
  if (s.own_group) setpgid(0, 0);
  const int null = open("/dev/null", O_RDONLY);
  if (null >= 0) dup2(null, 0);
  if (s.fifo) dup2(2, 1);
  else fcntl(write_fd, F_SETFD, 0);
  execve(s.exe.c_str(), argv, envp);
  const char *why = strerror(errno);
  dprintf(2, "plexus-bench: cannot run %s: %s\n", s.exe.c_str(), why);
  _exit(127);
}

// A child's result channel: the read end, and what the child is told to
// find the write end by.
struct Channel {
  int read_fd = -1, write_fd = -1;
  std::string env;
};

// A FIFO whose name is gone as soon as it is open: the child opens it as
// /proc/<launcher>/fd/<n>, so nothing is left in /tmp even if the launcher
// is killed. Until a writer has come and gone it reads as empty, not EOF.
int open_anonymous_fifo() {
  char dir[] = "/tmp/plexus-bench-XXXXXX";  // 0700: nobody else can open it meanwhile
  if (!mkdtemp(dir)) return -1;
  const std::string path = std::string(dir) + "/results";
  const int fd = mkfifo(path.c_str(), 0600) == 0 ? open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
  unlink(path.c_str());
  rmdir(dir);
  return fd;
}

bool open_channel(bool fifo, Channel *c) {
  if (fifo) {
    c->read_fd = open_anonymous_fifo();
    c->env = fmt::format("PLEXUS_BENCH_RESULTS=/proc/{}/fd/{}", getpid(), c->read_fd);
    if (c->read_fd < 0) std::perror("plexus-bench: FIFO");
    return c->read_fd >= 0;
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return std::perror("plexus-bench: pipe"), false;
  c->read_fd = p[0], c->write_fd = p[1], c->env = fmt::format("PLEXUS_BENCH_FD={}", p[1]);
  return true;
}

void close_channel(Child &c) {
  if (c.fd >= 0) close(c.fd), c.fd = -1;
}

// Reads what is there; hands complete lines on; closes the pipe at EOF.
void drain(Child &c, const LineHandler &on_line) {
  char buf[65536];
  const ssize_t n = read(c.fd, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) return close_channel(c);
  c.pending.append(buf, static_cast<size_t>(n));
  size_t start = 0;
  for (size_t nl; (nl = c.pending.find('\n', start)) != std::string::npos; start = nl + 1)
    on_line(c, std::string_view(c.pending).substr(start, nl - start));
  c.pending.erase(0, start);
}

void poll_once(std::vector<Child> &kids, int timeout_ms, const LineHandler &on_line) {
  std::vector<pollfd> fds;
  std::vector<Child *> owners;
  for (Child &c : kids)
    if (c.fd >= 0) fds.push_back({c.fd, POLLIN, 0}), owners.push_back(&c);
  if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  for (size_t i = 0; i < fds.size(); ++i)
    if (fds[i].revents) drain(*owners[i], on_line);
}

// Reaps children that exited; the first failure found, or "".
std::string reap_exited(std::vector<Child> &kids) {
  std::string failure;
  for (Child &c : kids) {
    if (c.reaped || waitpid(c.pid, &c.status, WNOHANG) != c.pid) continue;
    c.reaped = true;
    const bool clean = WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0;
    if (!clean && failure.empty()) failure = fmt::format("{} (pid {}) {}", c.name, c.pid, describe_status(c.status));
  }
  return failure;
}

bool all_done(const std::vector<Child> &kids) {
  for (const Child &c : kids)
    if (!c.reaped || c.fd >= 0) return false;
  return true;
}

bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

// Once a child is reaped nothing new can come: read what is left and close,
// so a FIFO its rank never opened cannot keep the launcher waiting.
void close_reaped(std::vector<Child> &kids, const LineHandler &on_line) {
  for (Child &c : kids) {
    if (!c.reaped) continue;
    while (c.fd >= 0 && readable_now(c.fd)) drain(c, on_line);
    close_channel(c);
  }
}

void signal_all(std::vector<Child> &kids, int sig) {
  for (Child &c : kids)
    if (!c.reaped) kill(c.own_group ? -c.pid : c.pid, sig);
}

// Waits up to `wait` for every child to be reaped, throwing lines away.
void wait_reaped(std::vector<Child> &kids, std::chrono::milliseconds wait) {
  const auto until = Clock::now() + wait;
  const LineHandler ignore = [](Child &, std::string_view) {};
  while (!all_done(kids) && Clock::now() < until) {
    poll_once(kids, 20, ignore);
    reap_exited(kids);
    close_reaped(kids, ignore);
  }
}

}  // namespace

bool spawn(const SpawnSpec &s, Child *out) {
  Channel ch;
  if (!open_channel(s.fifo, &ch)) return false;
  std::vector<std::string> extra = s.env;
  extra.push_back(ch.env);
  std::vector<std::string> env = child_environment(extra), args = s.argv;
  std::vector<char *> envp = pointers(env), argv = pointers(args);
  const pid_t parent = getpid(), pid = fork();
  if (pid == 0) become(s, ch.write_fd, parent, argv.data(), envp.data());
  if (ch.write_fd >= 0) close(ch.write_fd);
  *out = Child{s.name, pid, s.own_group, ch.read_fd, "", pid < 0, 0};
  if (pid < 0) return close_channel(*out), std::perror("plexus-bench: fork"), false;
  return true;
}

std::string pump(std::vector<Child> &kids, Clock::time_point deadline, const LineHandler &on_line) {
  while (!all_done(kids)) {
    poll_once(kids, 50, on_line);
    if (std::string failure = reap_exited(kids); !failure.empty()) return failure;
    close_reaped(kids, on_line);
    if (stop_signal) return fmt::format("interrupted by signal {} ({})", int{stop_signal}, strsignal(stop_signal));
    if (Clock::now() > deadline) return "the run passed its --timeout";
  }
  return "";
}

void stop_all(std::vector<Child> &kids, std::chrono::milliseconds grace) {
  wait_reaped(kids, grace);
  signal_all(kids, SIGTERM);
  wait_reaped(kids, std::chrono::milliseconds(3000));
  signal_all(kids, SIGKILL);
  for (Child &c : kids) {
    if (!c.reaped) waitpid(c.pid, &c.status, 0), c.reaped = true;
    close_channel(c);
  }
  reap_orphans(std::chrono::milliseconds(3000));
}

void reap_orphans(std::chrono::milliseconds wait) {
  const auto until = Clock::now() + wait;
  for (pid_t pid = 0; pid >= 0 && Clock::now() < until;) {
    pid = waitpid(-1, nullptr, WNOHANG);
    if (pid == 0) usleep(10000);
  }
}

void become_subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;  // no SA_RESTART: poll() returns at once
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

}  // namespace plexus::bench
