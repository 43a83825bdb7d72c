// Bad arguments through the loader (PLX-L-12, PLX-L-15, PLX-L-20 ..
// PLX-L-26): each call must fail with its documented status before the
// plugin runs, so the communicator stays usable and in step on every rank.
// Each case is a good call with one argument spoilt.
#include <cstring>
#include <functional>

#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr plx_status kBad = PLX_ERR_INVALID_ARGUMENT;

struct ArgCase {
  const char *req, *name;
  plx_status want;
  plx_coll_kind coll;  // the collective it calls (-1: none); a backend without it skips the case
  std::function<plx_status()> call;
};

// The arguments of a collective, valid until a case spoils one.
struct Call {
  plx_comm_h comm;
  const void *send;
  void *recv;
  uint64_t count = 4;
  plx_dtype dtype = PLX_FLOAT32;
  plx_reduce_op op = PLX_SUM;
  int32_t root = 0;
  plx_coll_options options = PLX_COLL_OPTIONS_INIT;
};

using Spoil = std::function<void(Call &)>;

struct Maker {
  plx_comm_h comm;
  float *buffer;

  Call good() const { return {comm, buffer, buffer}; }
  std::function<plx_status()> all_reduce(Spoil spoil) const {
    return [c = good(), spoil]() mutable {
      spoil(c);
      return plx_all_reduce(c.comm, c.send, c.recv, c.count, c.dtype, c.op, &c.options, nullptr);
    };
  }
  std::function<plx_status()> reduce(Spoil spoil) const {
    return [c = good(), spoil]() mutable {
      spoil(c);
      return plx_reduce(c.comm, c.send, c.recv, c.count, c.dtype, c.op, c.root, &c.options, nullptr);
    };
  }
  std::function<plx_status()> broadcast(Spoil spoil) const {
    return [c = good(), spoil]() mutable {
      spoil(c);
      return plx_broadcast(c.comm, c.send, c.recv, c.count, c.dtype, c.root, &c.options, nullptr);
    };
  }
  std::function<plx_status()> all_gather(Spoil spoil) const {
    return [c = good(), spoil]() mutable {
      spoil(c);
      return plx_all_gather(c.comm, c.send, c.recv, c.count, c.dtype, &c.options, nullptr);
    };
  }
};

// The first member of 0 .. count-1 a mask lacks, or -1.
int32_t first_missing(uint64_t mask, int32_t count) {
  for (int32_t k = 0; k < count; ++k)
    if (!((mask >> k) & 1u)) return k;
  return -1;
}

std::vector<ArgCase> collective_cases(RankContext &ctx, plx_comm_h comm) {
  static float buffer[4];
  const Maker m{comm, buffer};
  const int32_t n = ctx.nranks();
  const plx_coll_kind ar = PLX_COLL_ALL_REDUCE, ag = PLX_COLL_ALL_GATHER, rd = PLX_COLL_REDUCE,
                      bc = PLX_COLL_BROADCAST;
  std::vector<ArgCase> cases = {
      {"PLX-L-20", "all_reduce comm NULL", kBad, ar, m.all_reduce([](Call &c) { c.comm = nullptr; })},
      {"PLX-L-20", "all_reduce send NULL", kBad, ar, m.all_reduce([](Call &c) { c.send = nullptr; })},
      {"PLX-L-20", "all_reduce recv NULL", kBad, ar, m.all_reduce([](Call &c) { c.recv = nullptr; })},
      {"PLX-L-21", "all_reduce dtype 99", kBad, ar, m.all_reduce([](Call &c) { c.dtype = 99; })},
      {"PLX-L-21", "all_reduce dtype -1", kBad, ar, m.all_reduce([](Call &c) { c.dtype = -1; })},
      {"PLX-L-21", "all_reduce op 99", kBad, ar, m.all_reduce([](Call &c) { c.op = 99; })},
      {"PLX-L-22", "all_reduce count 2^62+1 float64", kBad, ar,
       m.all_reduce([](Call &c) { c.count = (1ull << 62) + 1, c.dtype = PLX_FLOAT64; })},
      {"PLX-L-22", "all_gather count * nranks overflows", kBad, ag,
       m.all_gather([n](Call &c) { c.count = (1ull << 61) / n + 1, c.dtype = PLX_FLOAT64; })},
      {"PLX-L-23", "reduce root = nranks", kBad, rd, m.reduce([n](Call &c) { c.root = n; })},
      {"PLX-L-23", "broadcast root -1", kBad, bc, m.broadcast([](Call &c) { c.root = -1; })},
      {"PLX-L-24", "options unknown flag", kBad, ar,
       m.all_reduce([](Call &c) { c.options.flags = 1u << 7; })},
      {"PLX-L-24", "options wire dtype int32", kBad, ar,
       m.all_reduce([](Call &c) { c.options.wire_dtype = PLX_INT32; })},
      {"PLX-L-24", "options algorithm 99", kBad, ar, m.all_reduce([](Call &c) { c.options.algorithm = 99; })},
      {"PLX-L-24", "options reserved not zero", kBad, ar,
       m.all_reduce([](Call &c) { c.options.reserved[1] = 1; })},
      {"PLX-L-25", "options struct_size 4", kBad, ar,
       m.all_reduce([](Call &c) { c.options.struct_size = 4; })},
  };
  if (!ctx.has_cap(PLX_CAP_NO_CONTRIBUTION))
    cases.push_back({"PLX-L-24", "no-contribution flag undeclared", PLX_ERR_UNSUPPORTED, ar,
                     m.all_reduce([](Call &c) { c.options.flags = PLX_COLL_FLAG_NO_CONTRIBUTION; })});
  if (!ctx.has_cap(PLX_CAP_WIRE_PRECISION))  // a wire dtype is never dropped in silence
    cases.push_back({"PLX-L-24", "wire dtype undeclared", PLX_ERR_UNSUPPORTED, ar,
                     m.all_reduce([](Call &c) { c.options.wire_dtype = PLX_BFLOAT16; })});
  if (const int32_t d = first_missing(ctx.props.dtype_mask, PLX_DTYPE_COUNT); d >= 0)
    cases.push_back({"PLX-L-21", "dtype the backend lacks", PLX_ERR_UNSUPPORTED, ar,
                     m.all_reduce([d](Call &c) { c.dtype = d; })});
  if (const int32_t op = first_missing(ctx.props.reduce_op_mask, PLX_REDUCE_OP_COUNT); op >= 0)
    cases.push_back({"PLX-L-21", "operator the backend lacks", PLX_ERR_UNSUPPORTED, ar,
                     m.all_reduce([op](Call &c) { c.op = op; })});
  if (!ctx.has_cap(PLX_CAP_COLL(PLX_COLL_SEND)))
    cases.push_back({"PLX-L-26", "send not advertised", PLX_ERR_UNSUPPORTED, -1,
                     [comm] { return plx_send(comm, buffer, 1, PLX_FLOAT32, 0, nullptr, nullptr); }});
  return cases;
}

std::vector<ArgCase> comm_cases(RankContext &ctx) {
  static plx_comm_h out;
  static plx_status status;
  static plx_unique_id corrupted;
  static plx_comm_config small = PLX_COMM_CONFIG_INIT;
  corrupted = ctx.env.ids.at(0);
  corrupted.bytes[100] ^= 0x40;
  small.struct_size = 4;
  const plx_backend_h b = ctx.backend;
  const plx_unique_id *id = &ctx.env.ids.at(1);
  const int32_t n = ctx.nranks();
  return {
      {"PLX-L-12", "comm_init corrupted id", kBad, -1,
       [=] { return plx_comm_init(b, &corrupted, n, 0, nullptr, &out); }},
      {"PLX-L-20", "comm_init rank = nranks", kBad, -1,
       [=] { return plx_comm_init(b, id, n, n, nullptr, &out); }},
      {"PLX-L-20", "comm_init nranks 0", kBad, -1, [=] { return plx_comm_init(b, id, 0, 0, nullptr, &out); }},
      {"PLX-L-20", "comm_init id NULL", kBad, -1,
       [=] { return plx_comm_init(b, nullptr, n, 0, nullptr, &out); }},
      {"PLX-L-25", "comm_init config struct_size 4", kBad, -1,
       [=] { return plx_comm_init(b, id, n, 0, &small, &out); }},
      {"PLX-L-20", "get_unique_id NULL", kBad, -1, [=] { return plx_get_unique_id(b, nullptr); }},
      {"PLX-L-20", "async_status NULL comm", kBad, -1,
       [] { return plx_comm_async_status(nullptr, &status); }},
      {"PLX-L-20", "backend_props NULL", kBad, -1, [=] { return plx_backend_props_get(b, nullptr); }},
  };
}

void run_one(RankContext &ctx, const ArgCase &a) {
  CaseScope c(ctx.out, a.req, "arguments", a.name);
  const plx_status s = a.call();
  if (!c.expect(s == a.want, "returned {}, want {}", status_text(s), plx_status_string(a.want))) return;
  c.expect(std::strlen(plx_last_error()) > 0, "[PLX-L-15] plx_last_error() is empty after the failure");
}

}  // namespace

void run_argument_cases(RankContext &ctx, plx_comm_h comm, const Work &work) {
  for (const ArgCase &a : collective_cases(ctx, comm))
    if (a.coll < 0 || ctx.has_cap(PLX_CAP_COLL(a.coll))) run_one(ctx, a);
  for (const ArgCase &a : comm_cases(ctx)) run_one(ctx, a);
  if (!ctx.has_cap(PLX_CAP_COLL(PLX_COLL_ALL_REDUCE))) return;
  // Whether the rejected calls left the ranks in step; the value is the data groups' to check.
  CaseScope c(ctx.out, "PLX-L-20", "arguments", "communicator usable after rejected calls");
  int32_t one = 1;
  const std::string error = sum_over_ranks(comm, work, &one, 60000 + kMarginMs);
  c.expect(error.empty(), "{}", error);
}

}  // namespace plexus::conformance
