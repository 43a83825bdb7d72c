// device.hpp without CUDA: the kit plans no pinned-host or device memory,
// so these only answer that CUDA is not there.
#include "device.hpp"
#include "sessions.hpp"

namespace plexus::conformance::device {
namespace {

constexpr const char *kNoCuda = "plexus-conformance was built without CUDA";

bool no_cuda(std::string *error) {
  if (error) *error = kNoCuda;
  return false;
}

}  // namespace

bool built() { return false; }
int gpu_count(std::string *why) { return no_cuda(why), 0; }
bool select(int, std::string *error) { return no_cuda(error); }
void *create_stream(std::string *error) { return no_cuda(error), nullptr; }
void destroy_stream(void *) {}
void *allocate(plx_mem_kind, uint64_t, std::string *error) { return no_cuda(error), nullptr; }
bool release(plx_mem_kind, void *, void *) { return false; }
bool copy(void *, const void *, uint64_t, void *, std::string *error) { return no_cuda(error); }
bool fill(void *, uint8_t, uint64_t, void *, std::string *error) { return no_cuda(error); }
int query(void *, std::string *error) { return no_cuda(error), -1; }
bool synchronize(void *, std::string *error) { return no_cuda(error); }

}  // namespace plexus::conformance::device

namespace plexus::conformance {

// Never planned without CUDA (main.cpp); a rank that gets here says so.
void run_graph_session(RankContext &ctx) { ctx.out.note("graph session: plexus-conformance was built without CUDA"); }

}  // namespace plexus::conformance
