// plexus-bench-mpi: the Open MPI peer column of plexus-bench. Started by
// plexus-bench under mpirun with the same arguments, it sweeps the same
// sizes through the same measurement (sweep.hpp) with MPI's collectives on
// MPI_COMM_WORLD, and rank 0 writes every rank's result line, after a
// "V <MPI library version>" line, into the FIFO PLEXUS_BENCH_RESULTS names
// (stdout when unset) for the launcher to merge.
#include <mpi.h>
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tools/plexus-bench/options.hpp"
#include "tools/plexus-bench/sweep.hpp"

namespace plexus::bench {
namespace {

MPI_Datatype mpi_type(plx_dtype d) {
  switch (d) {
    case PLX_INT8: return MPI_INT8_T;
    case PLX_UINT8: return MPI_UINT8_T;
    case PLX_INT32: return MPI_INT32_T;
    case PLX_UINT32: return MPI_UINT32_T;
    case PLX_INT64: return MPI_INT64_T;
    case PLX_UINT64: return MPI_UINT64_T;
    case PLX_FLOAT32: return MPI_FLOAT;
    case PLX_FLOAT64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;  // no half types in MPI 3.1
  }
}

MPI_Op mpi_op(plx_reduce_op op) {
  switch (op) {
    case PLX_SUM: return MPI_SUM;
    case PLX_PROD: return MPI_PROD;
    case PLX_MIN: return MPI_MIN;
    case PLX_MAX: return MPI_MAX;
    default: return MPI_OP_NULL;  // no avg in MPI
  }
}

class MpiTransport final : public Transport {
 public:
  MpiTransport(const Options &o, std::FILE *out) : o_(o), out_(out), type_(mpi_type(o.dtype)), op_(mpi_op(o.redop)) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  }
  int32_t rank() const override { return rank_; }
  int32_t nranks() const override { return o_.ranks; }
  bool run(const SizePoint &p, const void *send, void *recv) override { return ok(call(p, send, recv)); }
  bool barrier() override { return ok(MPI_Barrier(MPI_COMM_WORLD)); }
  bool report(const RankResult &r) override;

 private:
  int call(const SizePoint &p, const void *send, void *recv);
  bool ok(int code);

  const Options &o_;
  std::FILE *out_;
  MPI_Datatype type_;
  MPI_Op op_;
  int rank_ = 0;
};

// Broadcast is out of place as in plexus: root's result is a copy of its
// input, so root copies after the broadcast of its own buffer.
int MpiTransport::call(const SizePoint &p, const void *send, void *recv) {
  const int count = static_cast<int>(p.count), per = static_cast<int>(p.count / static_cast<uint64_t>(o_.ranks));
  void *in = const_cast<void *>(send);
  switch (o_.coll) {
    case Coll::all_reduce: return MPI_Allreduce(in, recv, count, type_, op_, MPI_COMM_WORLD);
    case Coll::reduce: return MPI_Reduce(in, recv, count, type_, op_, 0, MPI_COMM_WORLD);
    case Coll::all_gather: return MPI_Allgather(in, per, type_, recv, per, type_, MPI_COMM_WORLD);
    case Coll::gather: return MPI_Gather(in, per, type_, recv, per, type_, 0, MPI_COMM_WORLD);
    case Coll::reduce_scatter: return MPI_Reduce_scatter_block(in, recv, per, type_, op_, MPI_COMM_WORLD);
    default: {
      const int code = MPI_Bcast(rank_ == 0 ? in : recv, count, type_, 0, MPI_COMM_WORLD);
      if (rank_ == 0) std::memcpy(recv, send, p.count * dtype_bytes(o_.dtype));
      return code;
    }
  }
}

bool MpiTransport::ok(int code) {
  if (code == MPI_SUCCESS) return true;
  char text[MPI_MAX_ERROR_STRING] = "";
  int length = 0;
  MPI_Error_string(code, text, &length);
  std::fprintf(stderr, "plexus-bench-mpi: rank %d: %s failed: %s\n", rank_, coll_name(o_.coll), text);
  return false;
}

// Rank 0 gathers every rank's times and check and prints their lines.
bool MpiTransport::report(const RankResult &r) {
  const int iters = static_cast<int>(r.ns.size());
  std::vector<int64_t> all(rank_ == 0 ? static_cast<size_t>(iters) * o_.ranks : 0);
  std::vector<uint64_t> wrong(rank_ == 0 ? static_cast<size_t>(o_.ranks) : 0);
  if (!ok(MPI_Gather(r.ns.data(), iters, MPI_INT64_T, all.data(), iters, MPI_INT64_T, 0, MPI_COMM_WORLD)) ||
      !ok(MPI_Gather(&r.wrong, 1, MPI_UINT64_T, wrong.data(), 1, MPI_UINT64_T, 0, MPI_COMM_WORLD)))
    return false;
  for (int q = 0; rank_ == 0 && q < o_.ranks; ++q) {
    RankResult line{r.column, q, r.bytes, r.count, wrong[static_cast<size_t>(q)], {}};
    line.ns.assign(all.begin() + q * iters, all.begin() + (q + 1) * iters);
    std::fputs(result_line(line).c_str(), out_);
  }
  if (rank_ == 0 && std::fflush(out_) != 0) return std::perror("plexus-bench-mpi: results"), false;
  return true;
}

void print_version(std::FILE *out) {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
  int length = 0;
  MPI_Get_library_version(version, &length);
  std::string text(version, static_cast<size_t>(length));
  if (const size_t comma = text.find(','); comma != std::string::npos) text.resize(comma);  // drop the build blurb
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::fprintf(out, "V %s\n", text.c_str());
}

}  // namespace
}  // namespace plexus::bench

int main(int argc, char **argv) {
  using namespace plexus::bench;
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with mpirun, whatever kills it
  Options o;
  if (int done = parse_options(argc, argv, &o); done >= 0) return done;
  MPI_Init(&argc, &argv);
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *column = std::getenv("PLEXUS_BENCH_COLUMN");
  const bool has_op = !is_reduction(o.coll) || mpi_op(o.redop) != MPI_OP_NULL;
  if (size != o.ranks || mpi_type(o.dtype) == MPI_DATATYPE_NULL || !has_op) {
    if (rank == 0)
      std::fprintf(stderr, "plexus-bench-mpi: needs %d ranks (has %d) and an MPI dtype and op\n", o.ranks, size);
    MPI_Finalize();
    return 2;
  }
  const char *path = std::getenv("PLEXUS_BENCH_RESULTS");
  std::FILE *out = rank != 0 ? nullptr : path ? std::fopen(path, "w") : stdout;
  if (rank == 0 && !out) std::perror("plexus-bench-mpi: PLEXUS_BENCH_RESULTS"), MPI_Abort(MPI_COMM_WORLD, 3);
  if (rank == 0) print_version(out);
  MpiTransport t(o, out);
  if (!run_sweep(o, column ? std::atoi(column) : 0, t)) MPI_Abort(MPI_COMM_WORLD, 3);
  if (out && out != stdout) std::fclose(out);
  MPI_Finalize();
  return 0;
}
