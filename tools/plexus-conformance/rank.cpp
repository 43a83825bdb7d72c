#include "rank.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "device.hpp"
#include "sessions.hpp"

namespace plexus::conformance {
namespace {

bool parse_hex_id(std::string_view hex, plx_unique_id *id) {
  if (hex.size() != 2 * sizeof(id->bytes)) return false;
  for (size_t k = 0; k < sizeof(id->bytes); ++k) {
    unsigned v = 0;
    if (std::sscanf(std::string(hex.substr(2 * k, 2)).c_str(), "%2x", &v) != 1) return false;
    id->bytes[k] = static_cast<uint8_t>(v);
  }
  return true;
}

const char *env_or_empty(const char *name) {
  const char *v = std::getenv(name);
  return v ? v : "";
}

void dispatch(RankContext &ctx) {
  const std::string &s = ctx.env.session;
  if (s == "data")
    run_data_session(ctx);
  else if (s == "init")
    run_init_session(ctx);
  else if (s == "timeout")
    run_timeout_session(ctx);
  else if (s == "kill-before" || s == "kill-during")
    run_kill_session(ctx, s == "kill-during");
  else if (s == "abort" || s == "abort-thread")
    run_abort_session(ctx, s == "abort-thread");
  else if (s == "leaks")
    run_leak_session(ctx);
  else if (s == "threads")
    run_thread_session(ctx);
  else if (s == "graph")
    run_graph_session(ctx);
  else if (s == "topology")
    run_topology_session(ctx);
  else if (s == "memory")
    run_memory_session(ctx);
  else if (s == "queues")
    run_queue_session(ctx);
  else if (s == "groups")
    run_group_session(ctx);
  else if (s == "registration")
    run_registration_session(ctx);
}

// Pinned-host and device memory: GPU rank % visible GPUs (the launcher has
// made sure there is one per rank) and a non-blocking stream, before any
// session counts descriptors.
bool setup_device(RankContext &ctx) {
  if (!ctx.memory.cuda) return true;
  std::string error;
  const int gpus = device::gpu_count(&error);
  if (gpus > 0) ctx.cuda_device = ctx.rank() % gpus;
  if (gpus > 0 && device::select(ctx.cuda_device, &error)) ctx.stream = device::create_stream(&error);
  if (ctx.stream != nullptr) return true;
  ctx.out.result("-", "device setup", ctx.env.session, Verdict::fail,
                 fmt::format("rank {}: {}", ctx.rank(), error));
  return false;
}

std::string bell_path(const RankContext &ctx, const std::string &tag, int32_t rank) {
  return fmt::format("{}/{}.{}", ctx.env.dir, tag, rank);
}

}  // namespace

std::optional<RankEnv> read_rank_env() {
  RankEnv env;
  env.session = env_or_empty("PLXCONF_SESSION");
  env.dir = env_or_empty("PLXCONF_DIR");
  env.rank = std::atoi(env_or_empty("PLXCONF_RANK"));
  env.nranks = std::atoi(env_or_empty("PLXCONF_NRANKS"));
  env.fd = std::atoi(env_or_empty("PLXCONF_FD"));
  std::stringstream ids(env_or_empty("PLXCONF_IDS"));
  for (std::string hex; std::getline(ids, hex, ',');) {
    plx_unique_id id;
    if (!parse_hex_id(hex, &id)) return std::nullopt;
    env.ids.push_back(id);
  }
  if (env.session.empty() || env.nranks < 1 || env.rank < 0 || env.rank >= env.nranks || env.fd < 3)
    return std::nullopt;
  return env;
}

int rank_main(const Options &opts, const RankEnv &env) {
  // Cases allocate and free buffers of up to 64 MiB one after another; kept
  // by malloc instead of going back to the kernel, they are not faulted in
  // again for every case.
  ::mallopt(M_MMAP_THRESHOLD, 512 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
  Reporter out(env.fd);
  plx_backend_h backend = nullptr;
  if (plx_status s = plx_backend_open(opts.backend.c_str(), &backend)) {
    out.result("PLX-L-3", "backend open", env.session, Verdict::fail, status_text(s));
    out.end();
    return 0;
  }
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  plx_backend_props_get(backend, &props);
  RankContext ctx{opts, env, out, backend, props, plan_memory(props, opts.mem_mask, opts.mem_given)};
  if (setup_device(ctx)) dispatch(ctx);
  device::destroy_stream(ctx.stream);
  plx_backend_close(backend);
  out.end();
  return 0;
}

CaseScope::CaseScope(Reporter &out, std::string req, std::string group, std::string name)
    : out_(out), req_(std::move(req)), group_(std::move(group)), name_(std::move(name)) {
  out_.begin(req_, group_, name_);
}

CaseScope::~CaseScope() {
  if (!failure_.empty())
    out_.result(req_, group_, name_, Verdict::fail, failure_);
  else if (!skip_.empty())
    out_.result(req_, group_, name_, Verdict::skip, skip_);
  else
    out_.result(req_, group_, name_, Verdict::pass);
}

std::string status_text(plx_status status) {
  if (status == PLX_OK) return "PLX_OK";
  return fmt::format("{} ({})", plx_status_string(status), plx_last_error());
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

plx_status join(const RankContext &ctx, size_t id_index, int32_t timeout_ms, int32_t init_timeout_ms,
                plx_comm_h *out, int32_t nranks, int32_t rank) {
  plx_comm_config config = PLX_COMM_CONFIG_INIT;
  config.timeout_ms = timeout_ms;
  config.init_timeout_ms = init_timeout_ms;
  config.name = "plexus-conformance";
  config.cuda_device = ctx.cuda_device;
  *out = nullptr;
  return plx_comm_init(ctx.backend, &ctx.env.ids.at(id_index), nranks < 0 ? ctx.nranks() : nranks,
                       rank < 0 ? ctx.rank() : rank, &config, out);
}

plx_comm_h join_checked(RankContext &ctx, size_t id_index, int32_t timeout_ms, int32_t init_timeout_ms) {
  CaseScope c(ctx.out, "PLX-P-9", "comm_init", ctx.env.session);
  plx_comm_h comm = nullptr;
  const plx_status s = join(ctx, id_index, timeout_ms, init_timeout_ms, &comm);
  c.expect(s == PLX_OK, "plx_comm_init returned {}", status_text(s));
  return s == PLX_OK ? comm : nullptr;
}

// Written to a temporary name and renamed, so a reader never sees half.
void ring(const RankContext &ctx, const std::string &tag, const std::string &content) {
  const std::string path = bell_path(ctx, tag, ctx.rank()), tmp = path + ".tmp";
  std::ofstream(tmp) << content;
  std::rename(tmp.c_str(), path.c_str());
}

bool wait_bells(const RankContext &ctx, const std::string &tag, int32_t count, int32_t max_ms) {
  const Clock::time_point start = Clock::now();
  for (;;) {
    int32_t rung = 0;
    for (int32_t r = 0; r < ctx.nranks(); ++r) rung += ::access(bell_path(ctx, tag, r).c_str(), F_OK) == 0;
    if (rung >= count) return true;
    if (ms_since(start) > max_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::optional<std::string> read_bell(const RankContext &ctx, const std::string &tag, int32_t rank) {
  std::ifstream in(bell_path(ctx, tag, rank));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int count_open_fds() {
  DIR *dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent *e = ::readdir(dir)) n += e->d_name[0] != '.';
  ::closedir(dir);
  return n - 1;  // the descriptor of the listing itself
}

}  // namespace plexus::conformance
