#include "tools/plexus-bench/report.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/json.hpp"

extern char **environ;

namespace plexus::bench {
namespace {

// Three significant digits or so, whatever the magnitude.
std::string num(double v) {
  if (v >= 1000) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

std::string check_text(const Stat &s) {
  return s.wrong ? fmt::format("FAIL {}", s.wrong) : "ok";
}

// time(first) / time(this): above 1, this column is faster than the first.
double ratio(const Row &r, size_t col) {
  const Stat &first = r.cols[0], &s = r.cols[col];
  return first.present && s.present && s.median_us > 0 ? first.median_us / s.median_us : 0;
}

constexpr int group_width = 10 + 18 + 8 + 8 + 8 + 9;
constexpr int host_width = 9;

// Eager calls on device buffers return before they run: their host time
// per call is measured apart (device.hpp) and shown as its own cell.
bool shows_host(const Options &o) { return on_device(o) && !o.graph; }

const char *buffers_text(Mem m) {
  switch (m) {
    case Mem::host: return "host buffers";
    case Mem::shared_host: return "shared-host pool buffers (mpi: ordinary host)";
    case Mem::device: return "device buffers (cudaMalloc), rank r on GPU r % GPUs";
    default: return "device pool buffers (plx_mem_alloc PLX_MEM_DEVICE; raw-nccl: cudaMalloc), rank r on GPU r % GPUs";
  }
}

// How a size was timed: per call on host buffers, per batch on the device.
void print_method(std::FILE *out, const Options &o) {
  const std::string iters = o.iters > 0 ? std::to_string(o.iters) : "clamp(2G / size, 5, 200)";
  const std::string warmup = o.warmup >= 0 ? std::to_string(o.warmup) : on_device(o) ? "max(2, n / 10)"
                                                                                    : "max(2, timed / 10)";
  if (!on_device(o)) {
    fmt::print(out, "# iterations per size: {} timed, {} warm-up\n", iters, warmup);
    fmt::print(out, "# time: median over iterations of the slowest rank's time per iteration, in us; "
                    "p10-p90: its spread\n");
    return;
  }
  fmt::print(out, "# per size: {} warm-up calls, then {} samples of n = {} calls back to back on the rank's "
                  "non-blocking stream and one cudaStreamSynchronize\n", warmup, o.samples > 0 ? o.samples : 20,
             iters);
  if (o.graph)
    fmt::print(out, "# mode graph: the n calls captured once per size in a CUDA graph; a sample is one "
                    "cudaGraphLaunch\n");
  else
    fmt::print(out, "# mode eager: a sample is n calls one after the other\n");
  fmt::print(out, "# time: per call, median over samples of the slowest rank's sample time / n, in us; "
                  "p10-p90: its spread\n");
  if (shows_host(o))
    fmt::print(out, "# host(us): per call, median over samples of the slowest rank's time to enqueue the n "
                    "calls / n (before the synchronisation): what a call costs the calling thread\n");
}

void print_header(std::FILE *out, const RunInfo &info) {
  const Options &o = *info.options;
  fmt::print(out, "# plexus-bench: {}, {}, {}, {} ranks, root 0, {}{}\n", coll_name(o.coll), dtype_name(o.dtype),
             is_reduction(o.coll) ? redop_name(o.redop) : "-", o.ranks, buffers_text(o.mem),
             on_device(o) || o.rewrite_input ? fmt::format(", mode {}", mode_name(o)) : "");
  if (o.rewrite_input)
    fmt::print(out, "# mode rewrite: before every call each rank copies its input over its send buffer again "
                    "(not timed), as a program that has just written it\n");
  if (o.wire >= 0)
    fmt::print(out, "# wire: the plexus columns' reductions travel as {} (opts->wire_dtype), checked to its "
                    "rounding; raw-nccl and mpi send {}\n", dtype_name(o.wire), dtype_name(o.dtype));
  for (size_t i = 0; i < info.labels.size(); ++i)
    fmt::print(out, "# column {}: {}: {}\n", i + 1, info.labels[i], info.details[i]);
  fmt::print(out, "# host {}; {}; libplexus {}\n", info.host, info.date, info.library);
  if (!info.environment.empty()) {
    std::string env;
    for (const std::string &e : info.environment) env += " " + e;
    fmt::print(out, "# environment (passed to every rank):{}\n", env);
  }
  print_method(out, o);
  fmt::print(out, "# memcpy, one core, 64M buffers: {:.2f} GB/s (bus/mcp = busbw / this)\n", info.memcpy_gbs);
  fmt::print(out, "# algbw = size / time, busbw = algbw * {:.3f} (nccl-tests), GB/s = 1e9 B/s\n",
             bus_factor(o.coll, o.ranks));
  if (info.labels.size() > 1)
    fmt::print(out, "# ratio(X) = time({}) / time(X): above 1, X is faster than {}\n", info.labels[0], info.labels[0]);
}

void print_column_names(std::FILE *out, const RunInfo &info) {
  std::string groups = fmt::format("#{:>29}", ""), names = fmt::format("#{:>11} {:>12} {:>4}", "size", "count", "n");
  const std::string mode = info.options->graph ? " [graph]" : "";
  const bool host = shows_host(*info.options);
  for (const std::string &label : info.labels) {
    groups += fmt::format("  {:-^{}}", " " + label + mode + " ", group_width + (host ? host_width : 0));
    names += fmt::format("  {:>10}{:>18}{:>8}{:>8}{:>8}{:>9}", "time(us)", "p10-p90", "algbw", "busbw", "bus/mcp",
                         "check");
    if (host) names += fmt::format("{:>{}}", "host(us)", host_width);
  }
  for (size_t i = 1; i < info.labels.size(); ++i) names += fmt::format(" {:>14}", "ratio(" + info.labels[i] + ")");
  fmt::print(out, "{}\n{}\n", groups, names);
}

std::string stat_cells(const Stat &s, double memcpy, bool host) {
  const std::string host_cell = !host ? "" : fmt::format("{:>{}}", s.present ? num(s.host_us) : "-", host_width);
  if (!s.present) return fmt::format("  {:>10}{:>18}{:>8}{:>8}{:>8}{:>9}", "-", "-", "-", "-", "-", "-") + host_cell;
  return fmt::format("  {:>10}{:>18}{:>8.2f}{:>8.2f}{:>8.2f}{:>9}", num(s.median_us),
                     num(s.p10_us) + "-" + num(s.p90_us), s.algbw_gbs, s.busbw_gbs,
                     memcpy > 0 ? s.busbw_gbs / memcpy : 0.0, check_text(s)) + host_cell;
}

// The queue mode's table (queue_sweep.hpp): the method in the header, then
// per column the latency to all readers and the burst's rate.
constexpr int queue_group_width = 10 + 18 + 10 + 10 + 8 + 11;

void print_queue_header(std::FILE *out, const RunInfo &info) {
  const Options &o = *info.options;
  fmt::print(out, "# plexus-bench: queue, {} ranks: rank 0 writes, ranks 1..{} read; plx_queue_config defaults "
                  "(4096-byte slots, 64 of them)\n", o.ranks, o.ranks - 1);
  for (size_t i = 0; i < info.labels.size(); ++i)
    fmt::print(out, "# column {}: {}: {}\n", i + 1, info.labels[i], info.details[i]);
  fmt::print(out, "# messages per size: {} timed, {} warm-up, then a burst; host {}; {}; libplexus {}\n",
             o.iters > 0 ? std::to_string(o.iters) : "clamp(2G / size, 5, 200)",
             o.warmup >= 0 ? std::to_string(o.warmup) : "max(2, timed / 10)", info.host, info.date, info.library);
  fmt::print(out, "# latency: the writer stamps steady_clock (CLOCK_MONOTONIC, system-wide) into the message just "
                  "before plx_queue_enqueue;\n#   each reader takes receive time - stamp as plx_queue_dequeue "
                  "returns; per message the slowest reader counts;\n#   median and p10-p90 over messages, in us. "
                  "A plx_barrier before each message: the writer sends only once every\n#   reader has consumed "
                  "the previous one, so no latency is queueing delay\n");
  fmt::print(out, "# burst: clamp(64M / size, 64, 10000) messages enqueued back to back; time = the last reader's "
                  "receipt of the last\n#   message - the first's stamp; msgs/s and GB/s (1e9 B/s, per reader) "
                  "over that time; readers check as they go\n");
  fmt::print(out, "# check: every byte of every message (sequence number, a pattern of (size, sequence), a "
                  "plausible stamp)\n");
  if (info.labels.size() > 1)
    fmt::print(out, "# ratio(X) = latency({}) / latency(X): above 1, X is faster\n", info.labels[0]);
}

void print_queue_column_names(std::FILE *out, const RunInfo &info) {
  std::string groups = fmt::format("#{:>17}", ""), names = fmt::format("#{:>11} {:>4}", "size", "n");
  for (const std::string &label : info.labels) {
    groups += fmt::format("  {:-^{}}", " " + label + " ", queue_group_width);
    names += fmt::format("  {:>10}{:>18}{:>10}{:>10}{:>8}{:>11}", "lat(us)", "p10-p90", "burst", "msgs/s", "GB/s",
                         "check");
  }
  for (size_t i = 1; i < info.labels.size(); ++i) names += fmt::format(" {:>14}", "ratio(" + info.labels[i] + ")");
  fmt::print(out, "{}\n{}\n", groups, names);
}

std::string queue_cells(const Stat &s) {
  if (!s.present) return fmt::format("  {:>10}{:>18}{:>10}{:>10}{:>8}{:>11}", "-", "-", "-", "-", "-", "-");
  return fmt::format("  {:>10}{:>18}{:>10}{:>10}{:>8.2f}{:>11}", num(s.median_us), num(s.p10_us) + "-" + num(s.p90_us),
                     s.burst_msgs, num(s.burst_msgs_per_s / 1e6) + "M", s.burst_gbs, check_text(s));
}

void print_queue_table(std::FILE *out, const RunInfo &info, const std::vector<Row> &rows) {
  print_queue_header(out, info);
  print_queue_column_names(out, info);
  for (const Row &r : rows) {
    std::string line = fmt::format("{:>12} {:>4}", r.point.bytes, r.point.iters);
    for (const Stat &s : r.cols) line += queue_cells(s);
    for (size_t i = 1; i < r.cols.size(); ++i)
      line += ratio(r, i) > 0 ? fmt::format(" {:>14.2f}", ratio(r, i)) : fmt::format(" {:>14}", "-");
    fmt::print(out, "{}\n", line);
  }
}

// The fields of one (size, column), shared by the CSV and the JSON.
struct Fields {
  const Row &row;
  const Stat &s;
  double ratio;
};

void json_result(core::JsonWriter &w, const RunInfo &info, size_t col, const Fields &f) {
  const Options &o = *info.options;
  w.begin_object().field("backend", info.labels[col].c_str()).field("mem", column_mem(o, info.labels[col]));
  w.field("mode", mode_name(o)).field("size_bytes", f.row.point.bytes).field("count", f.row.point.count);
  w.field("iters", f.row.point.iters).field("samples", f.s.samples).field("warmup", f.row.point.warmup);
  w.field("median_us", f.s.median_us).field("p10_us", f.s.p10_us).field("p90_us", f.s.p90_us);
  w.field("min_us", f.s.min_us).field("max_us", f.s.max_us).field("algbw_gbs", f.s.algbw_gbs);
  w.field("busbw_gbs", f.s.busbw_gbs).field("busbw_over_memcpy", f.s.busbw_gbs / info.memcpy_gbs);
  w.field("ratio_vs_first", f.ratio).field("wrong_elements", f.s.wrong).field("check", f.s.wrong == 0);
  if (shows_host(o)) w.field("host_us", f.s.host_us);
  if (is_queue(*info.options))
    w.field("burst_msgs", f.s.burst_msgs).field("burst_us", f.s.burst_us)
        .field("burst_msgs_per_s", f.s.burst_msgs_per_s).field("burst_gbs", f.s.burst_gbs);
  w.end_object();
}

void json_settings(core::JsonWriter &w, const RunInfo &info) {
  const Options &o = *info.options;
  w.field("tool", "plexus-bench").field("op", coll_name(o.coll)).field("dtype", dtype_name(o.dtype));
  w.field("redop", redop_name(o.redop)).field("ranks", o.ranks).field("root", 0);
  w.field("wire", o.wire >= 0 ? dtype_name(o.wire) : "same");
  w.field("mem", mem_name(o.mem)).field("mode", mode_name(o));
  w.field("host", info.host.c_str()).field("date", info.date.c_str()).field("library", info.library.c_str());
  w.field("memcpy_gbs", info.memcpy_gbs).field("busbw_factor", bus_factor(o.coll, o.ranks));
  w.field("ratio", "time(first) / time(this): above 1 this backend is faster than the first");
  w.key("environment").begin_array();
  for (const std::string &e : info.environment) w.value(e.c_str());
  w.end_array();
  w.key("backends").begin_array();
  for (size_t i = 0; i < info.labels.size(); ++i)
    w.begin_object().field("name", info.labels[i].c_str()).field("detail", info.details[i].c_str()).end_object();
  w.end_array();
}

bool write_file(const std::string &path, const std::string &text) {
  std::FILE *f = std::fopen(path.c_str(), "w");
  const bool ok = f && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (f && std::fclose(f) != 0) return false;
  if (!ok) std::fprintf(stderr, "plexus-bench: cannot write %s\n", path.c_str());
  return ok;
}

// Exit status of `python script json png`; 127 when it could not start.
int run_python(const std::string &python, const std::string &script, const std::string &json, const std::string &png) {
  const char *argv[] = {python.c_str(), script.c_str(), json.c_str(), png.c_str(), nullptr};
  pid_t pid = -1;
  if (posix_spawnp(&pid, python.c_str(), nullptr, nullptr, const_cast<char **>(argv), environ) != 0) return 127;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

}  // namespace

void print_table(std::FILE *out, const RunInfo &info, const std::vector<Row> &rows) {
  if (is_queue(*info.options)) return print_queue_table(out, info, rows);
  print_header(out, info);
  print_column_names(out, info);
  for (const Row &r : rows) {
    std::string line = fmt::format("{:>12} {:>12} {:>4}", r.point.bytes, r.point.count, r.point.iters);
    for (const Stat &s : r.cols) line += stat_cells(s, info.memcpy_gbs, shows_host(*info.options));
    for (size_t i = 1; i < r.cols.size(); ++i)
      line += ratio(r, i) > 0 ? fmt::format(" {:>14.2f}", ratio(r, i)) : fmt::format(" {:>14}", "-");
    fmt::print(out, "{}\n", line);
  }
}

bool write_csv(const std::string &path, const RunInfo &info, const std::vector<Row> &rows) {
  const Options &o = *info.options;
  std::string text = "op,dtype,redop,ranks,backend,mem,mode,size_bytes,count,iters,samples,warmup,median_us,"
                     "p10_us,p90_us,min_us,max_us,algbw_gbs,busbw_gbs,busbw_over_memcpy,memcpy_gbs,ratio_vs_first,"
                     "wrong_elements";
  text += is_queue(o) ? ",burst_msgs,burst_us,burst_msgs_per_s,burst_gbs\n" : ",host_us\n";
  for (const Row &r : rows)
    for (size_t c = 0; c < r.cols.size(); ++c) {
      const Stat &s = r.cols[c];
      if (!s.present) continue;
      text += fmt::format("{},{},{},{},{},{},{},", coll_name(o.coll), dtype_name(o.dtype), redop_name(o.redop),
                          o.ranks, info.labels[c], column_mem(o, info.labels[c]), mode_name(o));
      text += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.point.bytes, r.point.count,
                          r.point.iters, s.samples, r.point.warmup, s.median_us, s.p10_us, s.p90_us, s.min_us,
                          s.max_us, s.algbw_gbs, s.busbw_gbs, s.busbw_gbs / info.memcpy_gbs, info.memcpy_gbs,
                          ratio(r, c), s.wrong);
      if (is_queue(o))  // the burst, after the columns every op has
        text.insert(text.size() - 1, fmt::format(",{},{},{},{}", s.burst_msgs, s.burst_us, s.burst_msgs_per_s,
                                                 s.burst_gbs));
      else  // empty where not measured (host buffers, graphs)
        text.insert(text.size() - 1, shows_host(o) ? fmt::format(",{}", s.host_us) : ",");
    }
  return write_file(path, text);
}

bool write_json(const std::string &path, const RunInfo &info, const std::vector<Row> &rows) {
  core::JsonWriter w;
  w.begin_object();
  json_settings(w, info);
  w.key("results").begin_array();
  for (const Row &r : rows)
    for (size_t c = 0; c < r.cols.size(); ++c)
      if (r.cols[c].present) json_result(w, info, c, Fields{r, r.cols[c], ratio(r, c)});
  w.end_array().end_object();
  return write_file(path, w.str() + "\n");
}

// The script sits next to the program (build tree and install alike) and
// exits 3 without matplotlib; the python on PATH may lack it where the
// system's has it (pyenv), so both are tried.
void make_plot(const std::string &json_path, const std::string &png_path) {
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string script = (self.parent_path() / "plexus-bench-plot").string();
  std::vector<std::string> pythons = {"python3", "/usr/bin/python3"};
  if (const char *p = std::getenv("PLEXUS_BENCH_PYTHON")) pythons.insert(pythons.begin(), p);
  for (const std::string &python : pythons) {
    const int code = run_python(python, script, json_path, png_path);
    if (code == 0) return (void)std::fprintf(stderr, "plexus-bench: wrote %s\n", png_path.c_str());
    if (code != 3 && code != 127)
      return (void)std::fprintf(stderr, "plexus-bench: the plot failed (%s exited %d)\n", script.c_str(), code);
  }
  std::fprintf(stderr, "plexus-bench: no plot: no python3 with matplotlib (apt-get install python3-matplotlib); "
                       "the rest of the run stands\n");
}

Progress::Progress() : tty_(isatty(STDERR_FILENO) == 1) {}

void Progress::step(const std::string &label, const SizePoint &p, const Stat &s, size_t done, size_t total) {
  const std::string text = fmt::format("[{}/{}] {} {}: {} us, {}", done, total, label, human_bytes(p.bytes),
                                       num(s.median_us), check_text(s));
  if (tty_) fmt::print(stderr, "\r\033[K{}", text), dirty_ = true;
  else fmt::print(stderr, "plexus-bench: {}\n", text);
  std::fflush(stderr);
}

void Progress::note(const std::string &text) {
  finish();
  fmt::print(stderr, "plexus-bench: {}\n", text);
}

void Progress::finish() {
  if (dirty_) fmt::print(stderr, "\r\033[K"), dirty_ = false;
  std::fflush(stderr);
}

}  // namespace plexus::bench
