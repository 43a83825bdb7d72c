// The registration session (PLX_CAP_MEM_REGISTER): every rank on one
// communicator, with two buffers of the kit's own in the backend's memory
// kind (device when the run tests device memory, else host). Both are
// registered; bad input is refused without a crash; float32 and bfloat16
// sum all-reduces run on the registered buffers at sizes past the
// backends' large-message paths, out of place and in place, and on a
// sub-range of them; then both are deregistered (a second deregistration
// must fail, not crash or hang) and the same buffers are used unregistered.
// Every call runs 3 times with new inputs: some backends take a
// registration up asynchronously, so only a later call goes the registered
// way. Registration is an optimisation: results must not change (PLX-P-8).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "buffers.hpp"
#include "reference.hpp"
#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr const char *kGroup = "registration";
// docs/abi.md has no numbered requirement for registration yet: the
// register and deregister calls are held to the capability the backend declares.
constexpr const char *kCapReq = "PLX-P-23";  // docs/abi.md: registration
constexpr int32_t kTimeoutMs = 60000;
constexpr int32_t kWaitMs = kTimeoutMs + kMarginMs;  // a stream-ordered call's outcome
constexpr int kCalls = 3;
// Bytes per rank. 4 MiB + 12 is an odd float32 count; 16 MiB is past
// every shipped backend's streaming and registered-output thresholds.
constexpr uint64_t kSizes[] = {1ull << 20, (4ull << 20) + 12, 16ull << 20};
constexpr uint64_t kBufferBytes = 16ull << 20;
// The sub-range: this far into both registered buffers, this long.
constexpr uint64_t kSubAt = 4096;
constexpr uint64_t kSubBytes = (1ull << 20) + 12;
constexpr uint64_t kSeedBase = 0x7e6a0000ull;

// One all-reduce: `count` elements starting `at` bytes into both buffers.
struct Call {
  plx_dtype dtype;
  uint64_t count;
  uint64_t at;
  bool in_place;
};

// The session's buffers and their registrations (nullptr: none live).
// Handles still live at the end are deregistered before the buffers go.
struct Session {
  Session(RankContext &c, plx_comm_h cm, MemSource m)
      : ctx(c),
        comm(cm),
        mem(m),
        stream(needs_cuda(m.kind) ? c.stream : nullptr),
        send(cm, m, kBufferBytes, 0, stream),
        recv(cm, m, kBufferBytes, 0, stream) {}
  ~Session() {
    for (plx_mem_reg_h h : {send_reg, recv_reg})
      if (h) plx_mem_deregister(comm, h);
  }
  RankContext &ctx;
  plx_comm_h comm;
  MemSource mem;
  void *stream;
  Buffer send, recv;
  plx_mem_reg_h send_reg = nullptr, recv_reg = nullptr;
  bool broken = false;  // a call failed: the ranks may be out of step, no more collectives
  uint64_t seq = 0;  // seeds each call's inputs
};

std::string data_group_name(const Session &s, plx_dtype dtype) {
  const std::string mem = s.mem.kind == PLX_MEM_HOST ? "" : " " + mem_source_name(s.mem);
  return fmt::format("{} all_reduce {} sum{}", kGroup, plx_dtype_string(dtype), mem);
}

std::string size_text(const Call &k) {
  const uint64_t bytes = k.count * plx_dtype_size(k.dtype), rest = bytes % (1u << 20);
  return fmt::format("size {} ({} MiB{})", k.count, bytes >> 20, rest ? fmt::format(" + {} bytes", rest) : "");
}

// --- registering and bad input ---------------------------------------------

void register_case(Session &s, Buffer &b, plx_mem_reg_h *out, const char *which) {
  CaseScope c(s.ctx.out, kCapReq, kGroup, fmt::format("register the {} buffer ({} bytes)", which, b.bytes()));
  if (!c.expect(b.status() == PLX_OK, "{} buffer: {}", which, b.error())) return;
  plx_mem_reg_h h = nullptr;
  const plx_status st = plx_mem_register(s.comm, b.target(b.data()), b.bytes(), &h);
  c.expect(st == PLX_OK && h != nullptr, "plx_mem_register returned {} with handle {}", status_text(st),
           static_cast<void *>(h));
  if (st == PLX_OK) *out = h;
}

// A registration that must be refused; one that is not is undone.
plx_status try_register(Session &s, void *ptr, uint64_t bytes, plx_mem_reg_h *out) {
  const plx_status st = plx_mem_register(s.comm, ptr, bytes, out);
  if (st == PLX_OK && out && *out) plx_mem_deregister(s.comm, *out);
  return st;
}

// PLX-L-20: the loader refuses these before the backend sees them.
void refused_by_loader(Session &s, const char *what, void *ptr, uint64_t bytes, bool null_out) {
  CaseScope c(s.ctx.out, "PLX-L-20", kGroup, fmt::format("plx_mem_register with {} refused", what));
  plx_mem_reg_h h = nullptr;
  const plx_status st = try_register(s, ptr, bytes, null_out ? nullptr : &h);
  const std::string message = st == PLX_OK ? "" : plx_last_error();
  if (!c.expect(st == PLX_ERR_INVALID_ARGUMENT, "returned {}, want PLX_ERR_INVALID_ARGUMENT", status_text(st)))
    return;
  c.expect(!message.empty(), "[PLX-L-15] plx_last_error() is empty after the failure");
}

// A device-only backend is given malloc'ed memory: any refusal the table
// allows for it, never PLX_OK.
void host_pointer_refused(Session &s) {
  CaseScope c(s.ctx.out, kCapReq, kGroup, "plx_mem_register of malloc'ed host memory refused");
  void *host = std::malloc(kSubBytes);
  plx_mem_reg_h h = nullptr;
  const plx_status st = host ? try_register(s, host, kSubBytes, &h) : PLX_ERR_OUT_OF_MEMORY;
  const std::string message = st == PLX_OK ? "" : plx_last_error();
  std::free(host);
  c.expect(st == PLX_ERR_INVALID_ARGUMENT || st == PLX_ERR_UNSUPPORTED,
           "returned {}, want PLX_ERR_INVALID_ARGUMENT or PLX_ERR_UNSUPPORTED (mem_kind_mask {:#x} lacks "
           "PLX_MEM_HOST)", status_text(st), s.ctx.props.mem_kind_mask);
  c.expect(st == PLX_OK || !message.empty(), "plx_last_error() is empty after the refusal");
}

void bad_input_cases(Session &s) {
  void *ptr = s.recv.target(s.recv.data());
  refused_by_loader(s, "a NULL pointer", nullptr, kSubBytes, false);
  refused_by_loader(s, "0 bytes", ptr, 0, false);
  refused_by_loader(s, "a NULL handle out-pointer", ptr, kSubBytes, true);
  if (is_device_memory(s.mem.kind) && !(s.ctx.props.mem_kind_mask & PLX_BIT(PLX_MEM_HOST)))
    host_pointer_refused(s);
}

// --- all-reduces on the buffers ---------------------------------------------

// The input written, the rest of recv poisoned, both copied to the device.
bool load(Session &s, const Call &k, const InputRule &rule, CaseScope &c) {
  std::memset(s.recv.data(), Buffer::kPoison, s.recv.bytes());
  uint8_t *in = (k.in_place ? s.recv.data() : s.send.data()) + k.at;
  fill_input(rule, s.ctx.rank(), 0, k.count, in);
  return c.expect(s.send.upload() && s.recv.upload(), "copying the input to the device: {}{}", s.send.error(),
                  s.recv.error());
}

plx_status issue(Session &s, const Call &k) {
  void *out = s.recv.target(s.recv.data() + k.at);
  const void *in = k.in_place ? out : s.send.target(s.send.data() + k.at);
  return plx_all_reduce(s.comm, in, out, k.count, k.dtype, PLX_SUM, nullptr, s.stream);
}

// Guards intact, nothing written outside the output, the output against
// the reference, and out of place the input left alone.
void check_result(Session &s, const Call &k, const InputRule &rule, int n, CaseScope &c) {
  const uint64_t end = k.at + k.count * plx_dtype_size(k.dtype);
  for (const Buffer *b : {&s.send, &s.recv}) {
    const std::string damage = b->guard_damage();
    c.expect(damage.empty(), "call {}: {}: {}", n, b == &s.send ? "send" : "recv", damage);
  }
  c.expect(s.recv.untouched(0, k.at) && s.recv.untouched(end, s.recv.bytes() - end),
           "call {}: recv was written outside the output's bytes [{}, {})", n, k.at, end);
  const Mismatch out = check_reduction(rule, s.recv.data() + k.at, 0, k.count);
  c.expect(out.ok(), "call {}: output: {}", n, out.describe());
  if (k.in_place) return;
  const Mismatch in = check_copies(rule, s.send.data() + k.at, {{s.ctx.rank(), 0, k.count}});
  c.expect(in.ok(), "call {}: the send buffer was modified: {}", n, in.describe());
}

// Call n (1-based) with inputs of its own; its output hash is mixed into
// *hash. False, and the session broken, when the call itself failed.
bool call_once(Session &s, const Call &k, int n, CaseScope &c, uint64_t *hash) {
  const InputRule rule = make_input_rule(k.dtype, PLX_SUM, s.ctx.nranks(), kSeedBase + s.seq++);
  if (!load(s, k, rule, c)) return s.broken = true, false;
  const Clock::time_point start = Clock::now();
  const Outcome o = settle(s.comm, issue(s, k), start, s.stream, kWaitMs);
  if (!c.expect(o.ok(), "call {} of {}: all_reduce: {} after {:.0f} ms", n, kCalls, o.text(), o.ms))
    return s.broken = true, false;
  if (!c.expect(s.send.download() && s.recv.download(), "copying the output back: {}{}", s.send.error(),
                s.recv.error()))
    return s.broken = true, false;
  check_result(s, k, rule, n, c);
  *hash = mix(*hash) ^ hash_bytes(s.recv.data() + k.at, k.count * plx_dtype_size(k.dtype));
  return true;
}

// kCalls calls of one shape; every rank hashes what it got for the
// bit-identical check across ranks.
void run_case(Session &s, const Call &k, const std::string &what) {
  const std::string group = data_group_name(s, k.dtype);
  const std::string name = fmt::format("{} {}, {} calls", size_text(k), what, kCalls);
  CaseScope c(s.ctx.out, "PLX-P-8", group, name);
  if (s.broken) return c.skip("not run: an earlier call of this session failed");
  if (!c.expect(s.send.status() == PLX_OK && s.recv.status() == PLX_OK, "buffers: {}{}", s.send.error(),
                s.recv.error()))
    return void(s.broken = true);  // the other ranks' calls then time out
  uint64_t hash = 0;
  for (int n = 1; n <= kCalls; ++n)
    if (!call_once(s, k, n, c, &hash)) break;
  if (!s.broken) s.ctx.out.hash(group, name, hash);
}

uint64_t elements(uint64_t bytes, plx_dtype dtype) { return bytes / plx_dtype_size(dtype); }

void registered_cases(Session &s, plx_dtype dtype) {
  for (const uint64_t bytes : kSizes)
    for (const bool in_place : {false, true})
      run_case(s, {dtype, elements(bytes, dtype), 0, in_place},
               in_place ? "in-place, registered recv" : "out-of-place, registered send and recv");
  run_case(s, {dtype, elements(kSubBytes, dtype), kSubAt, false},
           fmt::format("out-of-place, {} bytes into the registered send and recv", kSubAt));
}

void unregistered_cases(Session &s, plx_dtype dtype) {
  const uint64_t count = elements(kSizes[1], dtype);
  run_case(s, {dtype, count, 0, false}, "out-of-place, after deregistering");
  run_case(s, {dtype, count, 0, true}, "in-place, after deregistering");
}

// float32 and bfloat16, where the backend declares them with sum.
std::vector<plx_dtype> dtypes_of(const RankContext &ctx) {
  std::vector<plx_dtype> out;
  if (!ctx.has_cap(PLX_CAP_COLL(PLX_COLL_ALL_REDUCE)) || !(ctx.props.reduce_op_mask & PLX_BIT(PLX_SUM)))
    return out;
  for (const plx_dtype d : {PLX_FLOAT32, PLX_BFLOAT16})
    if (ctx.props.dtype_mask & PLX_BIT(d)) out.push_back(d);
  return out;
}

// --- deregistering ----------------------------------------------------------

void deregister_case(Session &s) {
  CaseScope c(s.ctx.out, kCapReq, kGroup, "deregister the send and recv buffers");
  for (plx_mem_reg_h *h : {&s.send_reg, &s.recv_reg}) {
    if (*h == nullptr) continue;
    const plx_status st = plx_mem_deregister(s.comm, *h);
    c.expect(st == PLX_OK, "plx_mem_deregister of the {} buffer's handle returned {}",
             h == &s.send_reg ? "send" : "recv", status_text(st));
    *h = nullptr;  // deregistered or not, never again: the next case does that on purpose
  }
}

// Any refusal will do; the case fails only on PLX_OK, and a crash or a
// hang fails it through the launcher (the rank dies or goes quiet in it).
void second_deregister_case(Session &s, plx_mem_reg_h stale) {
  CaseScope c(s.ctx.out, kCapReq, kGroup, "a second plx_mem_deregister of a handle is refused");
  if (stale == nullptr) return c.skip("no handle was registered");
  const plx_status st = plx_mem_deregister(s.comm, stale);
  c.expect(st != PLX_OK, "the second plx_mem_deregister of one handle returned PLX_OK");
}

// The memory and its registrations go away before the communicator.
void run_all(RankContext &ctx, plx_comm_h comm, MemSource mem) {
  Session s(ctx, comm, mem);
  const std::vector<plx_dtype> dtypes = dtypes_of(ctx);
  ctx.out.memory(kGroup, mem_source_name(mem));
  for (const plx_dtype d : dtypes) ctx.out.memory(data_group_name(s, d), mem_source_name(mem));
  register_case(s, s.recv, &s.recv_reg, "recv");
  register_case(s, s.send, &s.send_reg, "send");
  bad_input_cases(s);
  for (const plx_dtype d : dtypes) registered_cases(s, d);
  const plx_mem_reg_h stale = s.recv_reg;
  deregister_case(s);
  second_deregister_case(s, stale);
  for (const plx_dtype d : dtypes) unregistered_cases(s, d);
  if (dtypes.empty() && ctx.rank() == 0)
    ctx.out.note("registration: no all-reduce cases: the backend declares no float32 or bfloat16 sum all_reduce");
}

}  // namespace

bool registration_memory(const MemoryPlan &plan, MemSource *out) {
  for (const plx_mem_kind kind : {PLX_MEM_DEVICE, PLX_MEM_HOST, PLX_MEM_PINNED_HOST})
    for (const MemSource &s : plan.data)
      if (s.kind == kind && !s.pool) return *out = s, true;
  return false;
}

void run_registration_session(RankContext &ctx) {
  MemSource mem;
  if (!registration_memory(ctx.memory, &mem)) return;  // main.cpp does not plan the session then
  const plx_comm_h comm = join_checked(ctx, 0, kTimeoutMs);
  if (comm == nullptr) return;
  run_all(ctx, comm, mem);
  CaseScope c(ctx.out, "PLX-P-13", "comm_destroy", "registration session");
  const plx_status s = plx_comm_destroy(comm);
  c.expect(s == PLX_OK, "plx_comm_destroy returned {}", status_text(s));
}

}  // namespace plexus::conformance
