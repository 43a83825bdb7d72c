// Argument validation before any plugin runs (PLX-L-20 .. PLX-L-26), on
// fixture-good (everything declared but NO_CONTRIBUTION) and
// fixture-nullslots (all_reduce only, int32/float32, sum/max).
#include <cstring>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

struct Fixture {
  Backend backend{"fixture-good"};
  Comm comm{backend.handle};
  float send[4] = {1, 2, 3, 4};
  float recv[4] = {};
};

plx_status all_reduce_with(Fixture &f, const plx_coll_options &opts) {
  return plx_all_reduce(f.comm.handle, f.send, f.recv, 4, PLX_FLOAT32, PLX_SUM, &opts, nullptr);
}

}  // namespace

TEST_CASE("Loader.Validate.null_handles_and_pointers") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  plx_comm_h c = f.comm.handle;
  CHECK_FAILS(plx_backend_open("fixture-good", nullptr), PLX_ERR_INVALID_ARGUMENT, "plx_backend_open: out is NULL");
  CHECK_FAILS(plx_backend_close(nullptr), PLX_ERR_INVALID_ARGUMENT, "plx_backend_close: backend is NULL");
  CHECK_FAILS(plx_all_reduce(nullptr, f.send, f.recv, 4, PLX_FLOAT32, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "plx_all_reduce: comm is NULL");
  CHECK_FAILS(plx_all_reduce(c, nullptr, f.recv, 4, PLX_FLOAT32, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "plx_all_reduce: send is NULL");
  CHECK_FAILS(plx_all_reduce(c, f.send, nullptr, 4, PLX_FLOAT32, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "plx_all_reduce: recv is NULL");
  CHECK_OK(plx_all_reduce(c, nullptr, nullptr, 0, PLX_FLOAT32, PLX_SUM, nullptr, nullptr));  // count 0
  CHECK_FAILS(plx_broadcast(c, f.send, nullptr, 4, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT,
              "plx_broadcast: recv is NULL");
  CHECK_FAILS(plx_send(c, nullptr, 4, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "plx_send: buf is NULL");
  plx_unique_id id{};
  plx_comm_h out = nullptr;
  CHECK_FAILS(plx_get_unique_id(f.backend.handle, nullptr), PLX_ERR_INVALID_ARGUMENT, "plx_get_unique_id: id is NULL");
  CHECK_FAILS(plx_comm_init(f.backend.handle, nullptr, 1, 0, nullptr, &out), PLX_ERR_INVALID_ARGUMENT, "id is NULL");
  CHECK_FAILS(plx_comm_init(f.backend.handle, &id, 1, 0, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_FAILS(plx_comm_init(nullptr, &id, 1, 0, nullptr, &out), PLX_ERR_INVALID_ARGUMENT, "backend is NULL");
  CHECK_FAILS(plx_comm_rank(c, nullptr), PLX_ERR_INVALID_ARGUMENT, "plx_comm_rank: rank is NULL");
  CHECK_FAILS(plx_comm_async_status(c, nullptr), PLX_ERR_INVALID_ARGUMENT, "status is NULL");
  CHECK_FAILS(plx_backend_props_get(f.backend.handle, nullptr), PLX_ERR_INVALID_ARGUMENT, "props is NULL");
  CHECK_FAILS(plx_comm_destroy(nullptr), PLX_ERR_INVALID_ARGUMENT, "plx_comm_destroy");
}

TEST_CASE("Loader.Validate.handles_that_are_not_live") {
  alignas(16) unsigned char junk[512] = {};  // no magic: not an object of the loader
  float x = 0;
  CHECK_FAILS(plx_all_reduce(reinterpret_cast<plx_comm_h>(junk), &x, &x, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "comm is not a live communicator");
  CHECK_FAILS(plx_backend_close(reinterpret_cast<plx_backend_h>(junk)), PLX_ERR_INVALID_ARGUMENT,
              "backend is not an open plexus backend");
  CHECK_FAILS(plx_queue_destroy(reinterpret_cast<plx_queue_h>(junk)), PLX_ERR_INVALID_ARGUMENT, "not a live queue");
  CHECK_FAILS(plx_comm_abort(reinterpret_cast<plx_comm_h>(junk)), PLX_ERR_INVALID_ARGUMENT, "not a live communicator");
}

TEST_CASE("Loader.Validate.unknown_or_undeclared_dtype_and_op") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  CHECK_FAILS(plx_all_reduce(f.comm.handle, f.send, f.recv, 4, 42, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "dtype 42 is not a plx_dtype");
  CHECK_FAILS(plx_all_reduce(f.comm.handle, f.send, f.recv, 4, -1, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "dtype -1");
  CHECK_FAILS(plx_all_reduce(f.comm.handle, f.send, f.recv, 4, PLX_FLOAT32, 9, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "op 9 is not a plx_reduce_op");
  CHECK_FAILS(plx_reduce_scatter(f.comm.handle, f.send, f.recv, 4, PLX_FLOAT32, 5, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "plx_reduce_scatter: op 5");
  Backend narrow("fixture-nullslots");
  Comm c(narrow.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  double d[2] = {};
  CHECK_FAILS(plx_all_reduce(c.handle, d, d, 2, PLX_FLOAT64, PLX_SUM, nullptr, nullptr), PLX_ERR_UNSUPPORTED,
              "does not support dtype float64");
  CHECK_FAILS(plx_all_reduce(c.handle, f.send, f.recv, 4, PLX_FLOAT32, PLX_PROD, nullptr, nullptr),
              PLX_ERR_UNSUPPORTED, "does not support op prod");
  CHECK_OK(plx_all_reduce(c.handle, f.send, f.recv, 4, PLX_FLOAT32, PLX_MAX, nullptr, nullptr));
}

TEST_CASE("Loader.Validate.count_whose_bytes_overflow") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  const uint64_t huge = UINT64_MAX / 2;
  CHECK_FAILS(plx_all_reduce(f.comm.handle, f.send, f.recv, huge, PLX_FLOAT32, PLX_SUM, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "overflows a 64-bit byte size");
  CHECK_FAILS(plx_all_gather(f.comm.handle, f.send, f.recv, UINT64_MAX, PLX_INT8, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "plx_all_gather: count", "overflows");
  CHECK_FAILS(plx_broadcast(f.comm.handle, f.send, f.recv, (1ull << 62), PLX_FLOAT64, 0, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "overflows");
  const uint64_t counts[1] = {UINT64_MAX / 4};
  CHECK_FAILS(plx_gather(f.comm.handle, f.send, f.recv, 0, counts, PLX_FLOAT32, 0, nullptr, nullptr),
              PLX_ERR_INVALID_ARGUMENT, "plx_gather", "overflows");
  CHECK_FAILS(plx_send(f.comm.handle, f.send, huge, PLX_INT64, 0, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "overflows");
}

TEST_CASE("Loader.Validate.ranks_out_of_range") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  plx_comm_h c = f.comm.handle;
  CHECK_FAILS(plx_broadcast(c, f.send, f.recv, 4, PLX_FLOAT32, 5, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT,
              "plx_broadcast: root 5 is out of range for a communicator of 1 ranks");
  CHECK_FAILS(plx_reduce(c, f.send, f.recv, 4, PLX_FLOAT32, PLX_SUM, -1, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT,
              "root -1");
  CHECK_FAILS(plx_gather(c, f.send, f.recv, 4, nullptr, PLX_FLOAT32, 1, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT,
              "root 1");
  CHECK_FAILS(plx_send(c, f.send, 4, PLX_FLOAT32, 1, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "peer 1");
  CHECK_FAILS(plx_recv(c, f.recv, 4, PLX_FLOAT32, -3, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "peer -3");
  plx_unique_id id{};
  CHECK_OK(plx_get_unique_id(f.backend.handle, &id));
  plx_comm_h out = nullptr;
  CHECK_FAILS(plx_comm_init(f.backend.handle, &id, 1, 1, nullptr, &out), PLX_ERR_INVALID_ARGUMENT,
              "rank 1 is out of range for 1 ranks");
  CHECK_FAILS(plx_comm_init(f.backend.handle, &id, 0, 0, nullptr, &out), PLX_ERR_INVALID_ARGUMENT,
              "nranks is 0; it must be at least 1");
  CHECK_FAILS(plx_comm_init(f.backend.handle, &id, 4, -1, nullptr, &out), PLX_ERR_INVALID_ARGUMENT, "rank -1");
  plx_queue_config qc = PLX_QUEUE_CONFIG_INIT;
  qc.writer_rank = 3;
  plx_queue_h q = nullptr;
  CHECK_FAILS(plx_queue_create(c, &qc, &q), PLX_ERR_INVALID_ARGUMENT, "writer_rank 3 is out of range");
}

TEST_CASE("Loader.Validate.options") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  CHECK_OK(all_reduce_with(f, o));
  o.struct_size = 4;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_INVALID_ARGUMENT, "opts->struct_size is 4", "PLX_COLL_OPTIONS_INIT");
  o = PLX_COLL_OPTIONS_INIT, o.flags = 0x80;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_INVALID_ARGUMENT, "opts->flags 0x80 has unknown bits");
  o = PLX_COLL_OPTIONS_INIT, o.wire_dtype = PLX_INT32;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_INVALID_ARGUMENT, "opts->wire_dtype 2 must be -1 or a float");
  o = PLX_COLL_OPTIONS_INIT, o.wire_dtype = PLX_FLOAT32;
  CHECK_OK(all_reduce_with(f, o));  // the data's own dtype: nothing to honour
  o = PLX_COLL_OPTIONS_INIT, o.wire_dtype = PLX_BFLOAT16;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_UNSUPPORTED, "backend 'fixture-good' does not declare "
              "PLX_CAP_WIRE_PRECISION: opts->wire_dtype bfloat16 for float32 data");
  CHECK_OK(plx_barrier(f.comm.handle, &o, nullptr));  // a barrier carries no data
  o = PLX_COLL_OPTIONS_INIT, o.algorithm = 99;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_INVALID_ARGUMENT, "opts->algorithm 99 is not a plx_algorithm");
  o = PLX_COLL_OPTIONS_INIT, o.algorithm = PLX_ALGO_RING;
  CHECK_OK(all_reduce_with(f, o));  // a hint is never an error
  o = PLX_COLL_OPTIONS_INIT, o.reserved[1] = 1;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_INVALID_ARGUMENT, "opts->reserved must be zero");
  o = PLX_COLL_OPTIONS_INIT, o.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  CHECK_FAILS(all_reduce_with(f, o), PLX_ERR_UNSUPPORTED, "backend 'fixture-good' does not support "
              "PLX_COLL_FLAG_NO_CONTRIBUTION");
  CHECK_FAILS(plx_barrier(f.comm.handle, &o, nullptr), PLX_ERR_UNSUPPORTED, "plx_barrier", "NO_CONTRIBUTION");
}

TEST_CASE("Loader.Validate.undeclared_collective_is_unsupported") {
  Backend b("fixture-nullslots");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  float x[2] = {1, 2}, y[2] = {};
  const uint64_t counts[1] = {2};
  CHECK_FAILS(plx_broadcast(c.handle, x, y, 2, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_UNSUPPORTED,
              "plx_broadcast: backend 'fixture-nullslots' does not implement broadcast");
  CHECK_FAILS(plx_reduce(c.handle, x, y, 2, PLX_FLOAT32, PLX_SUM, 0, nullptr, nullptr), PLX_ERR_UNSUPPORTED, "reduce");
  CHECK_FAILS(plx_all_gather(c.handle, x, y, 2, PLX_FLOAT32, nullptr, nullptr), PLX_ERR_UNSUPPORTED, "all_gather");
  CHECK_FAILS(plx_gather(c.handle, x, y, 0, counts, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_UNSUPPORTED, "gather");
  CHECK_FAILS(plx_reduce_scatter(c.handle, x, y, 2, PLX_FLOAT32, PLX_SUM, nullptr, nullptr), PLX_ERR_UNSUPPORTED,
              "reduce_scatter");
  CHECK_FAILS(plx_barrier(c.handle, nullptr, nullptr), PLX_ERR_UNSUPPORTED, "barrier");
  CHECK_FAILS(plx_send(c.handle, x, 2, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_UNSUPPORTED, "send");
  CHECK_FAILS(plx_recv(c.handle, y, 2, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_UNSUPPORTED, "recv");
}

TEST_CASE("Loader.Validate.structs_smaller_than_their_first_version") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  plx_comm_config cfg = PLX_COMM_CONFIG_INIT;
  cfg.struct_size = 8;
  plx_unique_id id{};
  CHECK_OK(plx_get_unique_id(f.backend.handle, &id));
  plx_comm_h out = nullptr;
  CHECK_FAILS(plx_comm_init(f.backend.handle, &id, 1, 0, &cfg, &out), PLX_ERR_INVALID_ARGUMENT,
              "config->struct_size is 8");
  plx_backend_props props{};
  props.struct_size = 16;
  CHECK_FAILS(plx_backend_props_get(f.backend.handle, &props), PLX_ERR_INVALID_ARGUMENT, "props->struct_size is 16");
  plx_op_stats stats{};
  stats.struct_size = 40;
  CHECK_FAILS(plx_comm_stats(f.comm.handle, PLX_COLL_ALL_REDUCE, &stats), PLX_ERR_INVALID_ARGUMENT, "stats->struct_size is 40");
  plx_mem_stats mstats{};
  mstats.struct_size = 8;
  CHECK_FAILS(plx_mem_stats_get(f.comm.handle, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, &mstats), PLX_ERR_INVALID_ARGUMENT,
              "stats->struct_size is 8");
  plx_mem_alloc_params params = {sizeof(plx_mem_alloc_params), PLX_MEM_SHARED_HOST, 64, 0, 0, 0};
  params.struct_size = 12;
  void *p = nullptr;
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, &params, &p), PLX_ERR_INVALID_ARGUMENT, "params->struct_size is 12");
  plx_topology_info info{};
  info.struct_size = 4;
  CHECK_FAILS(plx_backend_topology(f.backend.handle, &info, nullptr, 0, nullptr), PLX_ERR_INVALID_ARGUMENT,
              "info->struct_size is 4");
  plx_queue_config qc = PLX_QUEUE_CONFIG_INIT;
  qc.struct_size = 2;
  plx_queue_h q = nullptr;
  CHECK_FAILS(plx_queue_create(f.comm.handle, &qc, &q), PLX_ERR_INVALID_ARGUMENT, "config->struct_size is 2");
}

TEST_CASE("Loader.Validate.larger_structs_from_newer_headers_are_read_as_far_as_known") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  struct {
    plx_backend_props props;
    unsigned char newer[16];
  } big;
  std::memset(&big, 0x5a, sizeof(big));
  big.props.struct_size = sizeof(plx_backend_props) + 16;
  CHECK_OK(plx_backend_props_get(f.backend.handle, &big.props));
  CHECK(big.props.struct_size == sizeof(plx_backend_props) + 16);  // the caller's stays
  CHECK(std::string(big.props.name) == "fixture-good");
  for (unsigned char byte : big.newer) CHECK(byte == 0x5a);  // fields it does not know: untouched
  struct {
    plx_comm_config config;
    uint64_t newer[2];
  } cfg{PLX_COMM_CONFIG_INIT, {7, 7}};
  cfg.config.struct_size = sizeof(cfg);
  Comm newer(f.backend.handle, &cfg.config);
  CHECK_MESSAGE(newer.status == PLX_OK, newer.error);
  struct {
    plx_coll_options opts;
    uint64_t newer;
  } opts{PLX_COLL_OPTIONS_INIT, 0};
  opts.opts.struct_size = sizeof(opts);
  CHECK_OK(all_reduce_with(f, opts.opts));
}

TEST_CASE("Loader.Validate.memory_arguments") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  void *p = nullptr;
  plx_mem_alloc_params params = {sizeof(plx_mem_alloc_params), PLX_MEM_SHARED_HOST, 0, 0, 0, 0};
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, &params, &p), PLX_ERR_INVALID_ARGUMENT, "params->bytes is 0");
  params.bytes = 64, params.alignment = 384;
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, &params, &p), PLX_ERR_INVALID_ARGUMENT, "alignment 384 is not a power of two");
  params.alignment = 0, params.tag = PLX_MEM_TAG_COUNT;
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, &params, &p), PLX_ERR_INVALID_ARGUMENT, "params->tag 64");
  params.tag = 0, params.kind = PLX_MEM_HOST;
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, &params, &p), PLX_ERR_INVALID_ARGUMENT, "is not a pool kind");
  params.kind = PLX_MEM_DEVICE;
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, &params, &p), PLX_ERR_UNSUPPORTED, "has no pool of memory kind 3");
  CHECK_FAILS(plx_mem_alloc(f.comm.handle, nullptr, &p), PLX_ERR_INVALID_ARGUMENT, "params is NULL");
  CHECK(p == nullptr);
}
