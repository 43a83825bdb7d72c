// The launcher: opens the columns, measures one core's memcpy, starts the
// rank processes (this program again, one per rank, running every plexus
// column in order) and then the mpi peer under mpirun, merges their result
// lines, and prints and writes the results.
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

#include "plexus/plexus.h"
#include "tools/plexus-bench/columns.hpp"
#include "tools/plexus-bench/procs.hpp"
#include "tools/plexus-bench/rank.hpp"
#include "tools/plexus-bench/report.hpp"
#if PLEXUS_BENCH_HAVE_CUDA
#include "tools/plexus-bench/device.hpp"
#endif

extern char **environ;

namespace plexus::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One core copying a buffer far larger than any cache: the denominator of
// busbw / memcpy. Best of five, before any rank runs.
double memcpy_gbs() {
  const size_t bytes = 64u << 20;
  std::unique_ptr<char[]> src(new char[bytes]), dst(new char[bytes]);
  std::memset(src.get(), 1, bytes), std::memset(dst.get(), 2, bytes);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    std::memcpy(dst.get(), src.get(), bytes);
    asm volatile("" : : "r"(dst.get()) : "memory");  // the copy must happen
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return static_cast<double>(bytes) / best / 1e9;
}

// Open MPI's shared-memory transport reads peers' memory with
// process_vm_readv (CMA) when allowed; containers often forbid it, and then
// every large message fails unless the mechanism is off. Ask the kernel the
// way the ranks would: one sibling reads another.
bool cma_allowed() {
  static volatile int probe = 42;
  const pid_t target = fork();
  if (target == 0) prctl(PR_SET_PDEATHSIG, SIGKILL), pause(), _exit(0);
  const pid_t reader = fork();
  if (reader == 0) {
    int got = 0;
    iovec local{&got, sizeof(got)}, remote{const_cast<int *>(&probe), sizeof(probe)};
    _exit(process_vm_readv(target, &local, 1, &remote, 1, 0) == sizeof(got) && got == 42 ? 0 : 1);
  }
  int status = 1;
  if (reader > 0) waitpid(reader, &status, 0);
  if (target > 0) kill(target, SIGKILL), waitpid(target, nullptr, 0);
  return reader > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::vector<std::string> rank_args(int argc, char **argv) { return {argv, argv + argc}; }

std::vector<SpawnSpec> rank_specs(const Options &o, const std::vector<Column> &cols, int argc, char **argv) {
  std::vector<SpawnSpec> specs;
  for (int32_t r = 0; r < o.ranks; ++r)
    specs.push_back({fmt::format("rank {}", r), "/proc/self/exe", rank_args(argc, argv),
                     {fmt::format("PLEXUS_BENCH_RANK={}", r), fmt::format("PLEXUS_BENCH_NRANKS={}", o.ranks),
                      "PLEXUS_BENCH_IDS=" + ids_env(cols)},
                     false, SIGKILL, false});
  return specs;
}

SpawnSpec mpi_spec(const Options &o, const Column &c, size_t column, int argc, char **argv) {
  std::vector<std::string> args = {"mpirun", "--oversubscribe", "--allow-run-as-root", "-np",
                                   std::to_string(o.ranks), "--bind-to", "none", "-x", "PLEXUS_BENCH_COLUMN",
                                   "-x", "PLEXUS_BENCH_RESULTS", c.mpi_exe};
  args.insert(args.end(), argv + 1, argv + argc);
  std::vector<std::string> env = {fmt::format("PLEXUS_BENCH_COLUMN={}", column), "OMPI_ALLOW_RUN_AS_ROOT=1",
                                  "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"};
  if (!std::getenv("OMPI_MCA_btl_vader_single_copy_mechanism") && !cma_allowed())
    env.push_back("OMPI_MCA_btl_vader_single_copy_mechanism=none");
  return {"mpirun", c.mpirun, args, env, true, SIGTERM, true};
}

struct Run {
  const Options &o;
  RunInfo &info;
  Collector &collector;
  Progress &progress;
  Clock::time_point deadline;
  std::string error;  // a malformed result line

  void line(std::string_view text) {
    RankResult r;
    if (text.rfind("V ", 0) == 0) return note_version(text.substr(2));
    if (!parse_result_line(text, &r))  // anything else a child says is for the person
      return (void)std::fprintf(stderr, "%.*s\n", static_cast<int>(text.size()), text.data());
    std::string problem;
    if (const Stat *s = collector.add(r, &problem))
      progress.step(info.labels[static_cast<size_t>(r.column)], SizePoint{r.bytes, r.count, 0, 0}, *s,
                    collector.completed(), collector.total());
    else if (!problem.empty() && error.empty()) error = problem;
  }
  void note_version(std::string_view text) {
    for (size_t i = 0; i < info.labels.size(); ++i)
      if (info.labels[i] == mpi_peer) info.details[i] = std::string(text);
  }
};

// Starts the children of one job, pumps their lines, stops them all on a
// failure; "" or what went wrong.
std::string run_job(Run &run, const std::vector<SpawnSpec> &specs) {
  std::vector<Child> kids;
  for (const SpawnSpec &s : specs) {
    kids.emplace_back();
    if (!spawn(s, &kids.back())) {
      kids.pop_back();
      stop_all(kids, std::chrono::milliseconds(0));
      return "could not start " + s.name;
    }
  }
  const std::string why = pump(kids, run.deadline, [&](Child &, std::string_view text) { run.line(text); });
  // A failed rank's peers see it and exit by themselves (their messages say
  // more than a kill would); a timeout or a signal stops everyone now.
  const bool wait = why.find("timeout") == std::string::npos && why.find("interrupted") == std::string::npos;
  if (!why.empty()) stop_all(kids, std::chrono::milliseconds(wait ? 10000 : 0));
  return why.empty() ? run.error : why;
}

std::string run_columns(Run &run, const std::vector<Column> &cols, int argc, char **argv) {
  if (std::any_of(cols.begin(), cols.end(), [](const Column &c) { return !c.mpi; }))
    if (std::string why = run_job(run, rank_specs(run.o, cols, argc, argv)); !why.empty()) return why;
  for (size_t i = 0; i < cols.size(); ++i)
    if (cols[i].mpi)
      if (std::string why = run_job(run, {mpi_spec(run.o, cols[i], i, argc, argv)}); !why.empty()) return why;
  return "";
}

// --mem device: a CUDA device, and a GPU per rank unless --allow-shared-gpu.
// -1 to go on, else the exit status (77, a skipped test, with
// --skip-without-gpu and no device).
int check_gpus(const Options &o) {
  if (!on_device(o)) return -1;
  std::string why = "no CUDA device: plexus-bench was built without CUDA (install the CUDA toolkit, then meson "
                    "setup --reconfigure)";
  int gpus = 0;
#if PLEXUS_BENCH_HAVE_CUDA
  gpus = visible_gpus(&why);
#endif
  if (gpus == 0 && o.skip_without_gpu) return std::printf("SKIP: --mem %s: %s\n", mem_name(o.mem), why.c_str()), 77;
  if (gpus == 0) return std::fprintf(stderr, "plexus-bench: --mem %s: %s\n", mem_name(o.mem), why.c_str()), 2;
  if (o.ranks <= gpus || o.allow_shared_gpu) return -1;
  std::fprintf(stderr, "plexus-bench: --ranks %d is more than the %d visible GPU%s: NCCL cannot put two ranks on one "
                       "GPU (--allow-shared-gpu runs rank r on GPU r %% %d anyway, for backends that can share)\n",
               o.ranks, gpus, gpus == 1 ? "" : "s", gpus);
  return 2;
}

// What of the environment changes the numbers (NCCL_* and the plexus
// settings), for the header: every one reaches the ranks unchanged.
std::vector<std::string> tuning_environment() {
  std::vector<std::string> out;
  for (char **e = environ; *e; ++e) {
    const std::string_view entry = *e;
    const bool plexus = entry.rfind("PLEXUS_", 0) == 0 && entry.rfind("PLEXUS_BENCH_", 0) != 0;
    if (entry.rfind("NCCL_", 0) == 0 || plexus || entry.rfind("CUDA_VISIBLE_DEVICES=", 0) == 0)
      out.emplace_back(entry);
  }
  std::sort(out.begin(), out.end());
  return out;
}

RunInfo describe_run(const Options &o, const std::vector<Column> &cols) {
  RunInfo info;
  info.options = &o;
  for (const Column &c : cols) info.labels.push_back(c.label), info.details.push_back(c.detail);
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  info.host = host;
  info.date = fmt::format("{:%Y-%m-%d %H:%M:%S}", fmt::localtime(std::time(nullptr)));
  info.library = plx_version_string();
  info.environment = tuning_environment();
  return info;
}

// Writes every output asked for; the plot reads the JSON (a temporary file
// when --json was not given).
void write_outputs(const Options &o, const RunInfo &info, const std::vector<Row> &rows) {
  print_table(stdout, info, rows);
  std::fflush(stdout);
  if (!o.csv.empty()) write_csv(o.csv, info, rows);
  if (!o.json.empty()) write_json(o.json, info, rows);
  if (o.plot.empty()) return;
  std::string json = o.json;
  if (json.empty()) json = fmt::format("/tmp/plexus-bench-{}.json", getpid());
  if (o.json.empty() && !write_json(json, info, rows)) return;
  make_plot(json, o.plot);
  if (o.json.empty()) std::remove(json.c_str());
}

uint64_t wrong_total(const std::vector<Row> &rows) {
  uint64_t wrong = 0;
  for (const Row &r : rows)
    for (const Stat &s : r.cols) wrong += s.wrong;
  return wrong;
}

}  // namespace

int launch(const Options &o, int argc, char **argv) {
  if (int code = check_gpus(o); code >= 0) return code;
  std::vector<Column> cols;
  if (int code = open_columns(o, &cols)) return close_columns(&cols), code;
  RunInfo info = describe_run(o, cols);
  info.memcpy_gbs = memcpy_gbs();
  Collector collector(o, cols.size());
  Progress progress;
  catch_stop_signals();
  become_subreaper();
  Run run{o, info, collector, progress, Clock::now() + std::chrono::seconds(o.timeout_s), ""};
  const std::string failure = run_columns(run, cols, argc, argv);
  close_columns(&cols);
  progress.finish();
  write_outputs(o, info, collector.rows());
  if (!failure.empty()) {
    std::fprintf(stderr, "plexus-bench: the run failed: %s\n", failure.c_str());
    return 3;
  }
  const uint64_t wrong = wrong_total(collector.rows());
  if (wrong) std::fprintf(stderr, "plexus-bench: %llu elements failed the correctness check\n",
                          static_cast<unsigned long long>(wrong));
  return wrong ? 1 : 0;
}

}  // namespace plexus::bench
