#include "tools/plexus-bench/raw_nccl.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nccl.h>

#include <cstdio>
#include <cstring>

namespace plexus::bench {
namespace {

static_assert(sizeof(ncclUniqueId) <= PLX_UNIQUE_ID_BYTES, "an NCCL id fits a plexus id");

ncclDataType_t nccl_type(plx_dtype d) {
  switch (d) {
    case PLX_INT8: return ncclInt8;
    case PLX_UINT8: return ncclUint8;
    case PLX_INT32: return ncclInt32;
    case PLX_UINT32: return ncclUint32;
    case PLX_INT64: return ncclInt64;
    case PLX_UINT64: return ncclUint64;
    case PLX_FLOAT16: return ncclFloat16;
    case PLX_BFLOAT16: return ncclBfloat16;
    case PLX_FLOAT32: return ncclFloat32;
    default: return ncclFloat64;
  }
}

ncclRedOp_t nccl_op(plx_reduce_op op) {
  switch (op) {
    case PLX_SUM: return ncclSum;
    case PLX_PROD: return ncclProd;
    case PLX_MIN: return ncclMin;
    case PLX_MAX: return ncclMax;
    default: return ncclAvg;
  }
}

// NCCL's own detail for the last failure (comm may be NULL).
const char *nccl_detail(ncclComm_t comm) {
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
  const char *text = ncclGetLastError(comm);
  return text && *text ? text : "no detail";
#else
  (void)comm;
  return "no detail (NCCL before 2.13)";
#endif
}

class RawNcclColumn final : public DeviceColumn {
 public:
  RawNcclColumn(const Options &o, ncclComm_t comm, DeviceRank &d)
      : o_(o), comm_(comm), d_(d), label_(raw_nccl_peer), call_(nccl_call_name(o.coll)) {}
  const std::string &label() const override { return label_; }
  bool enqueue(const SizePoint &p, const void *send, void *recv, void *stream) override {
    return ok(call_.c_str(), call(p, send, recv, static_cast<cudaStream_t>(stream)));
  }
  // NCCL has no barrier: a one-element all-reduce on the rank's scratch
  // completes only once every rank has entered it.
  bool barrier(void *stream) override {
    return ok("ncclAllReduce (barrier)", ncclAllReduce(d_.scratch(), d_.scratch(), 1, ncclFloat32, ncclSum, comm_,
                                                       static_cast<cudaStream_t>(stream)));
  }
  bool healthy() override;

 private:
  static std::string nccl_call_name(Coll c);
  ncclResult_t call(const SizePoint &p, const void *send, void *recv, cudaStream_t stream);
  ncclResult_t gather(const void *send, void *recv, size_t per, cudaStream_t stream);
  bool ok(const char *what, ncclResult_t r);

  const Options &o_;
  ncclComm_t comm_;
  DeviceRank &d_;
  std::string label_, call_;
};

std::string RawNcclColumn::nccl_call_name(Coll c) {
  switch (c) {
    case Coll::all_reduce: return "ncclAllReduce";
    case Coll::reduce: return "ncclReduce";
    case Coll::broadcast: return "ncclBroadcast";
    case Coll::all_gather: return "ncclAllGather";
    case Coll::reduce_scatter: return "ncclReduceScatter";
    default: return "ncclGather";
  }
}

ncclResult_t RawNcclColumn::call(const SizePoint &p, const void *send, void *recv, cudaStream_t stream) {
  const size_t per = p.count / static_cast<uint64_t>(o_.ranks);
  const ncclDataType_t type = nccl_type(o_.dtype);
  const ncclRedOp_t op = nccl_op(o_.redop);
  switch (o_.coll) {
    case Coll::all_reduce: return ncclAllReduce(send, recv, p.count, type, op, comm_, stream);
    case Coll::reduce: return ncclReduce(send, recv, p.count, type, op, 0, comm_, stream);
    case Coll::broadcast: return ncclBroadcast(send, recv, p.count, type, 0, comm_, stream);
    case Coll::all_gather: return ncclAllGather(send, recv, per, type, comm_, stream);
    case Coll::reduce_scatter: return ncclReduceScatter(send, recv, per, type, op, comm_, stream);
    default: return gather(send, recv, per, stream);
  }
}

// Root 0 gathers per elements of every rank, rank q's at q * per.
ncclResult_t RawNcclColumn::gather(const void *send, void *recv, size_t per, cudaStream_t stream) {
  const ncclDataType_t type = nccl_type(o_.dtype);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 28, 0)
  return ncclGather(send, recv, per, type, 0, comm_, stream);
#else
  // What ncclGather does in later NCCL: grouped sends to root.
  const size_t bytes = per * dtype_bytes(o_.dtype);
  ncclResult_t r = ncclGroupStart();
  if (r == ncclSuccess) r = ncclSend(send, per, type, 0, comm_, stream);
  for (int32_t q = 0; r == ncclSuccess && d_.rank() == 0 && q < o_.ranks; ++q)
    r = ncclRecv(static_cast<uint8_t *>(recv) + static_cast<size_t>(q) * bytes, per, type, q, comm_, stream);
  const ncclResult_t ended = ncclGroupEnd();
  return r != ncclSuccess ? r : ended;
#endif
}

bool RawNcclColumn::ok(const char *what, ncclResult_t r) {
  if (r == ncclSuccess) return true;
  std::fprintf(stderr, "plexus-bench: rank %d, %s: %s (%s) failed: %s: %s\n", d_.rank(), label_.c_str(), what,
               coll_name(o_.coll), ncclGetErrorString(r), nccl_detail(comm_));
  return false;
}

bool RawNcclColumn::healthy() {
  ncclResult_t state = ncclSuccess;
  if (!ok("ncclCommGetAsyncError", ncclCommGetAsyncError(comm_, &state))) return false;
  if (state == ncclSuccess) return true;
  std::fprintf(stderr, "plexus-bench: rank %d, %s: ncclCommGetAsyncError after the stream synchronised: %s: %s\n",
               d_.rank(), label_.c_str(), ncclGetErrorString(state), nccl_detail(comm_));
  return false;
}

}  // namespace

bool raw_nccl_unique_id(plx_unique_id *id, std::string *detail, std::string *why) {
  ncclUniqueId nccl_id{};
  if (const ncclResult_t r = ncclGetUniqueId(&nccl_id); r != ncclSuccess) {
    *why = fmt::format("ncclGetUniqueId failed: {}: {}", ncclGetErrorString(r), nccl_detail(nullptr));
    return false;
  }
  *id = plx_unique_id{};
  std::memcpy(id->bytes, &nccl_id, sizeof(nccl_id));
  int version = 0;
  (void)ncclGetVersion(&version);
  *detail = fmt::format("NCCL {}.{}.{} (built against {}.{}.{}), called directly on the same GPU, stream and buffers",
                        version / 10000, version / 100 % 100, version % 100, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  return true;
}

bool run_raw_nccl_column(const Options &o, int32_t column, const plx_unique_id &id, DeviceRank &d,
                         const Reporter &report) {
  ncclUniqueId nccl_id{};
  std::memcpy(&nccl_id, id.bytes, sizeof(nccl_id));
  if (!d.make_current()) return false;
  ncclComm_t comm = nullptr;
  if (const ncclResult_t r = ncclCommInitRank(&comm, o.ranks, nccl_id, d.rank()); r != ncclSuccess) {
    std::fprintf(stderr, "plexus-bench: rank %d, %s: ncclCommInitRank (%d ranks, GPU %d) failed: %s: %s\n", d.rank(),
                 raw_nccl_peer, o.ranks, d.device(), ncclGetErrorString(r), nccl_detail(nullptr));
    return false;
  }
  bool ok = false;
  {
    RawNcclColumn c(o, comm, d);
    ok = run_device_sweep(o, column, c, d, report);
  }
  if (!ok) return (void)ncclCommAbort(comm), false;
  if (const ncclResult_t r = ncclCommDestroy(comm); r != ncclSuccess) {
    std::fprintf(stderr, "plexus-bench: rank %d, %s: ncclCommDestroy failed: %s\n", d.rank(), raw_nccl_peer,
                 ncclGetErrorString(r));
    return false;
  }
  return true;
}

}  // namespace plexus::bench
