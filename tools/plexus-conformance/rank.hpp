// A rank process: what the launcher handed it (environment), and the
// helpers every session uses.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "channel.hpp"
#include "memory_kinds.hpp"
#include "options.hpp"
#include "plexus/plexus.h"

namespace plexus::conformance {

using Clock = std::chrono::steady_clock;

// How far past a deadline a call may return on a loaded machine and still
// count as on time (2 cores running 4 ranks and a build).
constexpr int32_t kMarginMs = 3000;

// The environment a rank reads (PLXCONF_*); see launcher.cpp.
struct RankEnv {
  int32_t rank = 0, nranks = 0;
  std::string session, dir;
  std::vector<plx_unique_id> ids;
  int fd = -1;
};
std::optional<RankEnv> read_rank_env();

struct RankContext {
  const Options &opts;
  const RankEnv &env;
  Reporter &out;
  plx_backend_h backend;
  plx_backend_props props;
  MemoryPlan memory;  // the memory this run tests (memory_kinds.hpp)
  int32_t cuda_device = -1;  // this rank's GPU when the plan needs CUDA, else -1
  void *stream = nullptr;  // this rank's stream for the data cases on CUDA memory
  int32_t rank() const { return env.rank; }
  int32_t nranks() const { return env.nranks; }
  bool has_cap(uint64_t cap) const { return (props.capabilities & cap) != 0; }
};

int rank_main(const Options &opts, const RankEnv &env);

// One case on this rank: B when made, R when it goes out of scope, PASS
// unless expect() saw a failure (only the first is reported).
class CaseScope {
 public:
  CaseScope(Reporter &out, std::string req, std::string group, std::string name);
  ~CaseScope();
  CaseScope(const CaseScope &) = delete;
  CaseScope &operator=(const CaseScope &) = delete;

  template <typename... Args>
  bool expect(bool ok, fmt::format_string<Args...> format, Args &&...args) {
    if (!ok && failure_.empty()) failure_ = fmt::format(format, std::forward<Args>(args)...);
    return ok;
  }
  void skip(std::string reason) { skip_ = std::move(reason); }
  bool failed() const { return !failure_.empty(); }

 private:
  Reporter &out_;
  std::string req_, group_, name_, failure_, skip_;
};

// "PLX_ERR_TIMEOUT (the message of plx_last_error())".
std::string status_text(plx_status status);
double ms_since(Clock::time_point start);

// Joins the communicator of unique id env.ids[id_index] with a config of
// these timeouts and this rank's GPU; nranks and rank default to the
// environment's.
plx_status join(const RankContext &ctx, size_t id_index, int32_t timeout_ms, int32_t init_timeout_ms,
                plx_comm_h *out, int32_t nranks = -1, int32_t rank = -1);

// join() as a case of group comm_init: the communicator, or nullptr after
// reporting why not.
plx_comm_h join_checked(RankContext &ctx, size_t id_index, int32_t timeout_ms,
                        int32_t init_timeout_ms = 30000);

// Doorbells between the ranks of a session: files in the session's private
// folder, so ranks coordinate the error cases without the backend.
void ring(const RankContext &ctx, const std::string &tag, const std::string &content = {});
// Waits until `count` ranks have rung `tag`, at most max_ms; false if not.
bool wait_bells(const RankContext &ctx, const std::string &tag, int32_t count, int32_t max_ms);
// What rank `rank` wrote with its bell, if it rang.
std::optional<std::string> read_bell(const RankContext &ctx, const std::string &tag, int32_t rank);

// Entries in /proc/self/fd.
int count_open_fds();

}  // namespace plexus::conformance
