// Versioned structs through the public API on a 1-rank shm-native
// communicator: plx_coll_options, plx_comm_config and plx_mem_alloc_params
// with any struct_size and any field values, and the caller-sized output
// structs (plx_op_stats, plx_mem_stats, plx_backend_props,
// plx_topology_info). Each struct lives in a heap block of exactly
// struct_size bytes (at least 4, at most 4096), so the sanitizer catches a
// read or write past what the caller said it has. Promises: every call
// returns a status plexus.h documents for it, errors carry a message, and
// nothing crashes.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_check.hpp"
#include "plexus/plexus.h"

using plexus::fuzz::one_of;

namespace {

plx_backend_h backend = nullptr;
plx_comm_h comm = nullptr;

plx_comm_h new_comm(const plx_comm_config *config, plx_status *status) {
  plx_unique_id id;
  if (plx_get_unique_id(backend, &id) != PLX_OK) std::abort();
  plx_comm_h c = nullptr;
  *status = plx_comm_init(backend, &id, 1, 0, config, &c);
  return c;
}

void expect(plx_status s, std::initializer_list<plx_status> documented, const char *what) {
  FUZZ_EXPECT(one_of(s, documented), what, s, plx_last_error());
  FUZZ_EXPECT(s == PLX_OK || *plx_last_error() != '\0', "an error without a message", s, nullptr);
}

// A struct as a caller of another header version holds it: struct_size
// bytes (the fields the fuzzer chose), in a block of exactly that size.
struct CallerStruct {
  std::unique_ptr<uint8_t[]> bytes;
  size_t size = 0;
  template <typename T> T *as() { return reinterpret_cast<T *>(bytes.get()); }
  // Sets a field only where the caller's struct has it.
  template <typename T> void set(size_t offset, T value) {
    if (offset + sizeof(T) <= size) std::memcpy(bytes.get() + offset, &value, sizeof(T));
  }
  template <typename T> T get(size_t offset) const {
    T value{};
    if (offset + sizeof(T) <= size) std::memcpy(&value, bytes.get() + offset, sizeof(T));
    return value;
  }
};

CallerStruct caller_struct(FuzzedDataProvider &in, bool fill) {
  const uint32_t struct_size = in.ConsumeIntegral<uint32_t>();
  CallerStruct s;
  s.size = std::min<size_t>(std::max<size_t>(struct_size, 4), 4096);
  s.bytes = std::make_unique<uint8_t[]>(s.size);
  if (fill) {
    const auto fields = in.ConsumeBytes<uint8_t>(s.size);
    if (!fields.empty()) std::memcpy(s.bytes.get(), fields.data(), fields.size());
  }
  std::memcpy(s.bytes.get(), &struct_size, sizeof(struct_size));
  return s;
}

void collective(FuzzedDataProvider &in) {
  CallerStruct opts = caller_struct(in, true);
  const bool null_opts = in.ConsumeIntegralInRange<int>(0, 7) == 0;
  const int which = in.ConsumeIntegralInRange<int>(0, 6);
  const uint64_t count = in.ConsumeIntegralInRange<uint64_t>(0, 64);
  const plx_dtype dtype = in.ConsumeIntegralInRange<int32_t>(-2, PLX_DTYPE_COUNT + 1);
  const plx_reduce_op op = in.ConsumeIntegralInRange<int32_t>(-2, PLX_REDUCE_OP_COUNT + 1);
  const int32_t root = in.ConsumeIntegralInRange<int32_t>(-2, 2);
  const bool in_place = in.ConsumeBool();
  const bool null_send = in.ConsumeIntegralInRange<int>(0, 7) == 0;
  std::vector<uint8_t> send(count * 8 + 1, 1), recv(count * 8 + 1, 0);
  const void *s = null_send ? nullptr : in_place ? recv.data() : send.data();
  void *r = recv.data();
  const plx_coll_options *o = null_opts ? nullptr : opts.as<plx_coll_options>();
  plx_status st = PLX_OK;
  switch (which) {
    case 0: st = plx_all_reduce(comm, s, r, count, dtype, op, o, nullptr); break;
    case 1: st = plx_reduce(comm, s, r, count, dtype, op, root, o, nullptr); break;
    case 2: st = plx_broadcast(comm, s, r, count, dtype, root, o, nullptr); break;
    case 3: st = plx_all_gather(comm, s, r, count, dtype, o, nullptr); break;
    case 4: st = plx_gather(comm, s, r, count, nullptr, dtype, root, o, nullptr); break;
    case 5: st = plx_reduce_scatter(comm, s, r, count, dtype, op, o, nullptr); break;
    default: st = plx_barrier(comm, o, nullptr); break;
  }
  expect(st, {PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_ERR_UNSUPPORTED, PLX_ERR_SYSTEM},
         "a collective returned an undocumented status (one rank: no timeout, no lost peer)");
}

// The config's name is a pointer: a caller passes NULL or a string.
void give_config_a_name(CallerStruct &config, std::string *name, FuzzedDataProvider &in) {
  const bool named = in.ConsumeBool();
  *name = in.ConsumeRandomLengthString(80);
  config.set<const char *>(offsetof(plx_comm_config, name), named ? name->c_str() : nullptr);
}

void config(FuzzedDataProvider &in) {
  CallerStruct config = caller_struct(in, true);
  std::string name;
  give_config_a_name(config, &name, in);
  const plx_comm_config *c = in.ConsumeIntegralInRange<int>(0, 7) == 0 ? nullptr : config.as<plx_comm_config>();
  plx_comm_h child = nullptr;
  plx_status st;
  if (in.ConsumeBool()) {
    const int32_t color = in.ConsumeIntegralInRange<int32_t>(-3, 3);
    st = plx_comm_split(comm, color, in.ConsumeIntegral<int32_t>(), c, &child);
    expect(st, {PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_ERR_UNSUPPORTED, PLX_ERR_TIMEOUT, PLX_ERR_SYSTEM},
           "plx_comm_split returned an undocumented status");
  } else {
    child = new_comm(c, &st);
    expect(st, {PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_ERR_TIMEOUT, PLX_ERR_INVALID_USAGE, PLX_ERR_SYSTEM,
                PLX_ERR_OUT_OF_MEMORY, PLX_ERR_DEVICE, PLX_ERR_UNSUPPORTED},
           "plx_comm_init returned an undocumented status");
  }
  if (st == PLX_OK && child != nullptr) {
    int32_t size = 0;
    FUZZ_EXPECT(plx_comm_size(child, &size) == PLX_OK && size == 1, "a 1-rank child is not 1 rank", size, nullptr);
    expect(plx_comm_destroy(child), {PLX_OK}, "plx_comm_destroy of a new communicator failed");
  }
}

// Sizes an allocation may ask for without filling the machine: up to 16 MiB,
// or past anything a machine has (2^48 and up), which must fail at once.
uint64_t bounded(uint64_t v) { return v < (uint64_t{1} << 48) ? v & ((uint64_t{1} << 24) - 1) : v; }

void allocation(FuzzedDataProvider &in) {
  CallerStruct params = caller_struct(in, true);
  params.set<uint64_t>(offsetof(plx_mem_alloc_params, bytes), bounded(params.get<uint64_t>(offsetof(plx_mem_alloc_params, bytes))));
  params.set<uint64_t>(offsetof(plx_mem_alloc_params, alignment),
                       bounded(params.get<uint64_t>(offsetof(plx_mem_alloc_params, alignment))));
  void *ptr = nullptr;
  const plx_status st = plx_mem_alloc(comm, params.as<plx_mem_alloc_params>(), &ptr);
  expect(st, {PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_ERR_UNSUPPORTED, PLX_ERR_OUT_OF_MEMORY},
         "plx_mem_alloc returned an undocumented status");
  if (st != PLX_OK) return;
  const auto *p = params.as<plx_mem_alloc_params>();
  FUZZ_EXPECT(ptr != nullptr && reinterpret_cast<uintptr_t>(ptr) % 256 == 0, "a block is not 256-byte aligned", 0, nullptr);
  FUZZ_EXPECT(p->alignment == 0 || reinterpret_cast<uintptr_t>(ptr) % p->alignment == 0,
              "a block misses its alignment", 0, nullptr);
  static_cast<uint8_t *>(ptr)[0] = 1;  // the block is there, first byte to last
  static_cast<uint8_t *>(ptr)[p->bytes - 1] = 1;
  expect(plx_mem_free(comm, ptr), {PLX_OK}, "plx_mem_free of a live block failed");
}

// Output structs: the library writes no byte past the caller's struct_size.
void output(FuzzedDataProvider &in) {
  CallerStruct out = caller_struct(in, false);
  const int which = in.ConsumeIntegralInRange<int>(0, 3);
  plx_status st;
  if (which == 0) {
    st = plx_comm_stats(comm, in.ConsumeIntegralInRange<int32_t>(-1, PLX_COLL_KIND_COUNT), out.as<plx_op_stats>());
  } else if (which == 1) {
    const uint32_t tag = in.ConsumeBool() ? PLX_MEM_TAG_ALL : in.ConsumeIntegralInRange<uint32_t>(0, 70);
    st = plx_mem_stats_get(comm, in.ConsumeIntegralInRange<int32_t>(-1, PLX_MEM_KIND_COUNT), tag, out.as<plx_mem_stats>());
  } else if (which == 2) {
    st = plx_backend_props_get(backend, out.as<plx_backend_props>());
  } else {
    st = plx_backend_topology(backend, out.as<plx_topology_info>(), nullptr, 0, nullptr);
  }
  expect(st, {PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_ERR_UNSUPPORTED, PLX_ERR_SYSTEM},
         "a query returned an undocumented status");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  ::setenv("PLEXUS_LOG_LEVEL", "error", 0);
  plx_status s = plx_backend_open("shm-native", &backend);
  if (s == PLX_OK) comm = new_comm(nullptr, &s);
  if (s != PLX_OK) {
    std::fprintf(stderr, "fuzz: no shm-native communicator: %s\n", plx_last_error());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: collective(in); break;
    case 1: config(in); break;
    case 2: allocation(in); break;
    default: output(in); break;
  }
  // One rank has no peer to lose and no one to wait for: a sticky failure
  // here is a finding, not something to recover from.
  plx_status async = PLX_OK;
  expect(plx_comm_async_status(comm, &async), {PLX_OK}, "plx_comm_async_status failed");
  FUZZ_EXPECT(async == PLX_OK, "the communicator failed", async, plx_last_error());
  return 0;
}
