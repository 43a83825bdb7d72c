#include "tools/plexus-bench/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/dtype.hpp"
#include "core/names.hpp"

namespace plexus::bench {
namespace {

constexpr const char *usage_text =
    "usage: plexus-bench [options]\n"
    "\n"
    "  --backends A,B,...  backends measured side by side, the first is the reference of\n"
    "                      the ratio columns; 'mpi' is Open MPI (plexus-bench-mpi under\n"
    "                      mpirun); 'raw-nccl' is NCCL called directly by the ranks (with\n"
    "                      --mem device); default: the default backend (PLEXUS_BACKEND or auto)\n"
    "  --ranks N           rank processes (default 4)\n"
    "  --op NAME           all_reduce (default), reduce, broadcast, all_gather,\n"
    "                      reduce_scatter, gather (root 0); queue: plx_queue_* message\n"
    "                      latency and burst rate, rank 0 writing, the others reading\n"
    "  -d, --dtype NAME    float32 (default), float64, float16, bfloat16, int8, uint8,\n"
    "                      int32, uint32, int64, uint64\n"
    "  -o, --redop NAME    sum (default), prod, min, max, avg\n"
    "  --wire NAME         the plexus columns' reductions travel as this float dtype\n"
    "                      (opts->wire_dtype, e.g. float32 data as bfloat16), checked\n"
    "                      to that dtype's rounding; other columns send the data's own\n"
    "                      dtype\n"
    "  -b, --minbytes S    smallest size (default 8); S takes K, M, G (powers of 1024)\n"
    "  -e, --maxbytes S    largest size (default 32M)\n"
    "  -f, --stepfactor F  size multiplier (default 4)\n"
    "  -n, --iters N       timed iterations per size (default clamp(2G / size, 5, 200))\n"
    "  -w, --warmup_iters N  warm-up iterations per size (default max(2, iterations / 10))\n"
    "  --mem KIND          host (default): buffers from aligned_alloc; shared_host: the\n"
    "                      plexus columns allocate from the backend's shared-host pool\n"
    "                      (plx_mem_alloc), which peers may read in place; mpi keeps\n"
    "                      ordinary buffers; device: cudaMalloc on GPU rank % GPUs, one\n"
    "                      non-blocking stream per rank, timed as nccl-tests (-n calls\n"
    "                      back to back, one stream sync: one sample; eager runs also\n"
    "                      show host(us), the host's time per call to enqueue them);\n"
    "                      device_pool: the plexus columns allocate from the backend's\n"
    "                      device pool (raw-nccl keeps cudaMalloc buffers)\n"
    "  --rewrite-input     host buffers: before every call each rank writes its whole\n"
    "                      input again (a copy of it, outside the timed part), as a\n"
    "                      program that has just computed it; without it the peers\n"
    "                      read lines the call before left clean in their caches\n"
    "                      (mode 'rewrite'; the last call's result is checked too)\n"
    "  --graph             device: capture the -n calls of a sample once per size in a\n"
    "                      CUDA graph and time its launches (mode 'graph', else 'eager')\n"
    "  --samples N         device: timed samples per size (default 20)\n"
    "  --allow-shared-gpu  device: allow more ranks than GPUs (NCCL refuses two ranks\n"
    "                      on one GPU; other backends may not)\n"
    "  --skip-without-gpu  device: exit 77 (a skipped test) when there is no CUDA device\n"
    "  --csv FILE          every number, one row per size and backend\n"
    "  --json FILE         the same as JSON, with the run's settings\n"
    "  --plot FILE.png     latency and bus bandwidth against size (python3 + matplotlib)\n"
    "  --timeout S         give up (and kill every rank) after S seconds (default 1800)\n"
    "  -h, --help          this help\n"
    "\n"
    "Size is the largest per-rank buffer, as in nccl-tests: the input of all_reduce,\n"
    "reduce, broadcast, reduce_scatter; the gathered output of all_gather and gather;\n"
    "one message of queue (at least 8 bytes: it carries the writer's time stamp).\n"
    "Exit status: 0 all good, 1 a correctness check failed, 2 usage or a backend that\n"
    "cannot run this (no CUDA device for --mem device), 3 a run failed (a rank's error,\n"
    "crash or the timeout), 77 no CUDA device with --skip-without-gpu.\n";

const char *const coll_names[] = {"all_reduce", "reduce", "broadcast", "all_gather", "reduce_scatter", "gather",
                                   "queue"};
const char *const mem_names[] = {"host", "shared_host", "device", "device_pool"};

template <size_t N>
std::optional<int> index_of(const char *const (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i)
    if (name == names[i]) return static_cast<int>(i);
  return std::nullopt;
}

std::optional<uint64_t> parse_size(std::string_view text) {
  uint64_t v = 0, scale = 1;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  const std::string_view rest = text.substr(i);
  if (i == 0 || rest.size() > 2 || (rest.size() == 2 && (rest[1] | 0x20) != 'b')) return std::nullopt;
  if (!rest.empty()) {
    const char unit = static_cast<char>(rest[0] | 0x20);
    if (unit == 'k') scale = 1ull << 10;
    else if (unit == 'm') scale = 1ull << 20;
    else if (unit == 'g') scale = 1ull << 30;
    else if (unit != 'b' || rest.size() == 2) return std::nullopt;
  }
  if (v > UINT64_MAX / scale) return std::nullopt;
  return v * scale;
}

std::optional<int32_t> parse_count(std::string_view text, int32_t low) {
  const auto v = parse_size(text);
  if (!v || *v > (1u << 30) || static_cast<int64_t>(*v) < low) return std::nullopt;
  return static_cast<int32_t>(*v);
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= text.size();) {
    const size_t comma = std::min(text.find(',', at), text.size());
    out.emplace_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

int usage_error(const std::string &message) {
  std::fprintf(stderr, "plexus-bench: %s\n%s", message.c_str(), usage_text);
  return 2;
}

// Applies one option with its value; an error message, or "" when it took.
std::string apply_value(std::string_view flag, std::string_view value, Options *o) {
  const auto bad = [&] { return fmt::format("bad value '{}' for {}", value, flag); };
  if (flag == "--op") {
    const auto i = index_of(coll_names, value);
    if (!i) return bad();
    o->coll = static_cast<Coll>(*i);
  } else if (flag == "-d" || flag == "--dtype") {
    const auto i = index_of(core::kDtypeNames, value);
    if (!i) return bad();
    o->dtype = *i;
  } else if (flag == "--wire") {
    const auto i = index_of(core::kDtypeNames, value);
    if (!i || (*i != PLX_FLOAT16 && *i != PLX_BFLOAT16 && *i != PLX_FLOAT32 && *i != PLX_FLOAT64)) return bad();
    o->wire = *i;
  } else if (flag == "-o" || flag == "--redop") {
    const auto i = index_of(core::kReduceOpNames, value);
    if (!i) return bad();
    o->redop = *i;
  } else if (flag == "-b" || flag == "--minbytes" || flag == "-e" || flag == "--maxbytes") {
    const auto v = parse_size(value);
    if (!v || *v == 0) return bad();
    (flag == "-b" || flag == "--minbytes" ? o->min_bytes : o->max_bytes) = *v;
  } else {
    return "";  // not a flag of this group
  }
  return "-";
}

std::string apply_number(std::string_view flag, std::string_view value, Options *o) {
  const auto bad = [&] { return fmt::format("bad value '{}' for {}", value, flag); };
  const auto set = [&](int32_t *field, int32_t low) {
    const auto v = parse_count(value, low);
    if (v) *field = *v;
    return v ? std::string("-") : bad();
  };
  if (flag == "--ranks") return set(&o->ranks, 1);
  if (flag == "-n" || flag == "--iters") return set(&o->iters, 1);
  if (flag == "-w" || flag == "--warmup_iters") return set(&o->warmup, 0);
  if (flag == "--timeout") return set(&o->timeout_s, 1);
  if (flag == "--samples") return set(&o->samples, 1);
  if (flag == "-f" || flag == "--stepfactor") {
    int32_t f = 0;
    const std::string r = set(&f, 2);
    o->factor = static_cast<uint64_t>(f);
    return r;
  }
  return "";
}

std::string apply_text(std::string_view flag, std::string_view value, Options *o) {
  if (flag == "--csv") o->csv = value;
  else if (flag == "--json") o->json = value;
  else if (flag == "--plot") o->plot = value;
  else if (flag == "--backends") o->backends = split_commas(value);
  else if (flag == "--mem") {
    const auto i = index_of(mem_names, value);
    if (!i) return fmt::format("bad value '{}' for --mem (host, shared_host, device or device_pool)", value);
    o->mem = static_cast<Mem>(*i);
  } else return "";
  return "-";
}

// The options without a value; false when `flag` is none of them.
bool apply_switch(std::string_view flag, Options *o) {
  if (flag == "--graph") o->graph = true;
  else if (flag == "--allow-shared-gpu") o->allow_shared_gpu = true;
  else if (flag == "--skip-without-gpu") o->skip_without_gpu = true;
  else if (flag == "--rewrite-input") o->rewrite_input = true;
  else return false;
  return true;
}

// "-": taken; "": unknown flag; else the error.
std::string apply(std::string_view flag, std::string_view value, Options *o) {
  for (auto f : {apply_value, apply_number, apply_text}) {
    std::string r = f(flag, value, o);
    if (!r.empty()) return r;
  }
  return "";
}

std::string validate(const Options &o) {
  if (o.min_bytes > o.max_bytes) return "-b is larger than -e";
  if (o.ranks > 1024) return "--ranks is at most 1024";
  if (is_queue(o) && o.ranks < 2) return "--op queue needs --ranks 2 or more: rank 0 writes, the others read";
  if (is_queue(o) && o.min_bytes < 8) return "--op queue needs -b 8 or more: a message carries an 8-byte time stamp";
  if (is_queue(o) && on_device(o)) return "--op queue works on host memory only: drop --mem device";
  if (o.samples > 0 && !on_device(o)) return "--samples needs --mem device or device_pool: host buffers time every call";
  if (o.rewrite_input && (on_device(o) || is_queue(o)))
    return "--rewrite-input works on host collectives only: drop --mem device and --op queue";
  if (o.graph && !on_device(o)) return "--graph needs --mem device or device_pool: only stream-ordered calls are captured";
  if (o.wire >= 0 && o.wire != o.dtype && o.dtype != PLX_FLOAT32)
    return "--wire other than the data's dtype needs -d float32: only float32 travels as a half type";
  for (const std::string &b : o.backends)
    if (b.empty()) return "--backends has an empty entry";
  for (size_t i = 0; i < o.backends.size(); ++i)
    if (std::count(o.backends.begin(), o.backends.end(), o.backends[i]) > 1)
      return fmt::format("--backends names '{}' twice", o.backends[i]);
  return "";
}

}  // namespace

int parse_options(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i], value;
    if (flag == "-h" || flag == "--help") return std::printf("%s", usage_text), 0;
    if (apply_switch(flag, o)) continue;
    const size_t eq = flag.rfind("--", 0) == 0 ? flag.find('=') : std::string_view::npos;
    if (eq != std::string_view::npos) value = flag.substr(eq + 1), flag = flag.substr(0, eq);
    else if (i + 1 < argc) value = argv[i + 1];
    else return usage_error(fmt::format("unknown option or missing value: '{}'", flag));
    const std::string r = apply(flag, value, o);
    if (r.empty()) return usage_error(fmt::format("unknown option '{}'", flag));
    if (r != "-") return usage_error(r);
    if (eq == std::string_view::npos) ++i;
  }
  const std::string problem = validate(*o);
  return problem.empty() ? -1 : usage_error(problem);
}

std::vector<SizePoint> sweep_points(const Options &o) {
  const uint64_t es = is_queue(o) ? 1 : dtype_bytes(o.dtype);  // a queue moves bytes
  const bool shared = o.coll == Coll::all_gather || o.coll == Coll::gather || o.coll == Coll::reduce_scatter;
  const uint64_t unit = shared ? static_cast<uint64_t>(o.ranks) : 1;
  std::vector<SizePoint> out;
  for (uint64_t b = o.min_bytes; b <= o.max_bytes; b *= o.factor) {
    SizePoint p;
    p.count = b / es / unit * unit;
    p.bytes = p.count * es;
    p.iters = o.iters > 0 ? o.iters : static_cast<int32_t>(std::clamp<uint64_t>((2ull << 30) / b, 5, 200));
    p.warmup = o.warmup >= 0 ? o.warmup : std::max(2, p.iters / 10);
    p.samples = !on_device(o) ? p.iters : o.samples > 0 ? o.samples : 20;
    if (p.count > 0 && (out.empty() || out.back().bytes != p.bytes)) out.push_back(p);
    if (b > UINT64_MAX / o.factor) break;
  }
  return out;
}

uint64_t send_count(const Options &o, const SizePoint &p) {
  const bool share = o.coll == Coll::all_gather || o.coll == Coll::gather;
  return share ? p.count / static_cast<uint64_t>(o.ranks) : p.count;
}

uint64_t recv_count(const Options &o, const SizePoint &p) {
  return o.coll == Coll::reduce_scatter ? p.count / static_cast<uint64_t>(o.ranks) : p.count;
}

bool is_reduction(Coll c) {
  return c == Coll::all_reduce || c == Coll::reduce || c == Coll::reduce_scatter;
}

// nccl-tests (doc/PERFORMANCE.md): the bytes each rank must move over its
// busiest link relative to the buffer size, so that busbw is comparable
// with a link's speed whatever the op and the number of ranks.
double bus_factor(Coll c, int32_t nranks) {
  const double n = nranks;
  switch (c) {
    case Coll::all_reduce: return 2.0 * (n - 1) / n;
    case Coll::all_gather:
    case Coll::reduce_scatter:
    case Coll::gather: return (n - 1) / n;
    default: return 1.0;
  }
}

const char *coll_name(Coll c) { return coll_names[static_cast<int>(c)]; }
const char *dtype_name(plx_dtype dtype) { return core::kDtypeNames[dtype]; }
size_t dtype_bytes(plx_dtype dtype) { return core::kDtypeBytes[dtype]; }
const char *redop_name(plx_reduce_op op) { return core::kReduceOpNames[op]; }
const char *mem_name(Mem m) { return mem_names[static_cast<int>(m)]; }

const char *column_mem(const Options &o, const std::string &label) {
  if (label == mpi_peer) return "host";
  if (label == raw_nccl_peer && o.mem == Mem::device_pool) return "device";
  return mem_name(o.mem);
}

std::string human_bytes(uint64_t bytes) {
  const char *units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) bytes /= 1024, ++u;
  return fmt::format("{}{}", bytes, units[u]);
}

}  // namespace plexus::bench
