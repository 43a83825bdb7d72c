// The memory session (PLX-P-17, PLX-P-20), with PLX_CAP_MEM_ALLOC: for
// every kind of alloc_kind_mask, on a communicator of its own, blocks of
// mixed sizes, alignments and tags; the pool's statistics in total and per
// tag against what was allocated; every other block freed; with
// PLX_CAP_DEFRAGMENT, defragment and trim (the bytes they report, nothing
// live moved or lost: every block holds a pattern written before and read
// after); the pressure level; bad input refused without changing anything;
// and nothing in use once everything is freed. Each rank runs alone.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "device.hpp"
#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr uint32_t kTagBase = 41;  // tags of this session: kTagBase .. + kTags - 1 (not 0, the default)
constexpr uint32_t kTags = 3;
constexpr uint64_t kSizes[] = {1, 100, 255, 256, 4097, (64u << 10) + 3, 1u << 20, (3u << 20) + 5};
constexpr size_t kBlocks = 12;

struct Block {
  void *ptr = nullptr;
  uint64_t bytes = 0, alignment = 0;
  uint32_t tag = 0;
  uint8_t seed = 0;
};

// The pattern of a block: no period of 256 bytes, different per block.
std::vector<uint8_t> pattern(const Block &b) {
  std::vector<uint8_t> bytes(b.bytes);
  for (uint64_t j = 0; j < b.bytes; ++j) bytes[j] = static_cast<uint8_t>(b.seed + j * 7 + (j >> 9));
  return bytes;
}

// Reads and writes a kind's blocks: memcpy where the host sees the memory,
// copies on a stream of the rank's GPU for device memory.
class Access {
 public:
  Access(const RankContext &ctx, plx_mem_kind kind) : kind_(kind) {
    if (!is_device_memory(kind)) return;
    if (!device::built() || ctx.cuda_device < 0)
      why_ = "device memory not read back: the kit has no CUDA device for this run";
    else if ((stream_ = device::create_stream(&why_)) == nullptr)
      why_ = "device memory not read back: " + why_;
  }
  ~Access() { device::destroy_stream(stream_); }
  Access(const Access &) = delete;
  Access &operator=(const Access &) = delete;
  bool can() const { return why_.empty(); }
  const std::string &why() const { return why_; }
  bool write(void *dst, const std::vector<uint8_t> &src, std::string *error) {
    if (!is_device_memory(kind_)) return std::memcpy(dst, src.data(), src.size()), true;
    return device::copy(dst, src.data(), src.size(), stream_, error) && device::synchronize(stream_, error);
  }
  bool read(const void *src, std::vector<uint8_t> *dst, std::string *error) {
    if (!is_device_memory(kind_)) return std::memcpy(dst->data(), src, dst->size()), true;
    return device::copy(dst->data(), src, dst->size(), stream_, error) && device::synchronize(stream_, error);
  }

 private:
  plx_mem_kind kind_;
  void *stream_ = nullptr;
  std::string why_;
};

// The pool's statistics for one kind: in total and for each tag of the session.
struct Snapshot {
  plx_mem_stats total{};
  plx_mem_stats tags[kTags]{};
};

bool read_stats(plx_comm_h comm, plx_mem_kind kind, uint32_t tag, plx_mem_stats *out, CaseScope &c) {
  *out = plx_mem_stats{};
  out->struct_size = sizeof(*out);
  const plx_status s = plx_mem_stats_get(comm, kind, tag, out);
  return c.expect(s == PLX_OK, "plx_mem_stats_get(tag {}): {}", tag == PLX_MEM_TAG_ALL ? "ALL" : std::to_string(tag),
                  status_text(s));
}

bool snapshot(plx_comm_h comm, plx_mem_kind kind, Snapshot *out, CaseScope &c) {
  bool ok = read_stats(comm, kind, PLX_MEM_TAG_ALL, &out->total, c);
  for (uint32_t t = 0; t < kTags; ++t) ok = ok && read_stats(comm, kind, kTagBase + t, &out->tags[t], c);
  return ok;
}

struct PoolRun {
  RankContext &ctx;
  plx_comm_h comm;
  plx_mem_kind kind;
  Access access;
  std::vector<Block> blocks;  // live ones have ptr != nullptr
  Snapshot base;  // before the session allocated anything
  void *freed = nullptr;  // the last block freed, for the double free
  std::string group;

  PoolRun(RankContext &c, plx_comm_h cm, plx_mem_kind k)
      : ctx(c), comm(cm), kind(k), access(c, k), group(fmt::format("pool {}", mem_kind_name(k))) {}

  uint64_t live_requested(uint32_t tag_index) const {
    uint64_t sum = 0;
    for (const Block &b : blocks)
      if (b.ptr && (tag_index >= kTags || b.tag == kTagBase + tag_index)) sum += b.bytes;
    return sum;
  }

  // Requested and in-use bytes and the counts against what the session did.
  void check_counts(const Snapshot &now, uint64_t allocs, uint64_t frees, CaseScope &c) const {
    const plx_mem_stats &t = now.total, &b = base.total;
    c.expect(t.kind == kind, "plx_mem_stats.kind is {}, want {}", t.kind, kind);
    c.expect(t.bytes_requested - b.bytes_requested == live_requested(kTags),
             "bytes_requested grew by {}, want {} (the live blocks' sizes)", t.bytes_requested - b.bytes_requested,
             live_requested(kTags));
    c.expect(t.bytes_in_use - b.bytes_in_use >= live_requested(kTags) && t.bytes_reserved >= t.bytes_in_use &&
                 t.bytes_peak >= t.bytes_in_use,
             "bytes_in_use {} (was {}), bytes_reserved {}, bytes_peak {}: want in use >= {} requested more, "
             "reserved and peak >= in use",
             t.bytes_in_use, b.bytes_in_use, t.bytes_reserved, t.bytes_peak, live_requested(kTags));
    c.expect(t.alloc_count - b.alloc_count == allocs && t.free_count - b.free_count == frees,
             "alloc_count grew by {} and free_count by {}, want {} and {}", t.alloc_count - b.alloc_count,
             t.free_count - b.free_count, allocs, frees);
    for (uint32_t k = 0; k < kTags; ++k) check_tag(now.tags[k], base.tags[k], k, c);
  }

  void check_tag(const plx_mem_stats &t, const plx_mem_stats &b, uint32_t k, CaseScope &c) const {
    uint64_t allocs = 0, frees = 0;
    for (size_t i = 0; i < kBlocks && i < blocks.size(); ++i)
      if (blocks[i].tag == kTagBase + k) allocs += 1, frees += blocks[i].ptr == nullptr;
    c.expect(t.bytes_requested - b.bytes_requested == live_requested(k) &&
                 t.bytes_in_use - b.bytes_in_use >= live_requested(k),
             "tag {}: bytes_requested grew by {} and bytes_in_use by {}, want {} and at least that", kTagBase + k,
             t.bytes_requested - b.bytes_requested, t.bytes_in_use - b.bytes_in_use, live_requested(k));
    c.expect(t.alloc_count - b.alloc_count == allocs && t.free_count - b.free_count == frees,
             "tag {}: alloc_count grew by {} and free_count by {}, want {} and {}", kTagBase + k,
             t.alloc_count - b.alloc_count, t.free_count - b.free_count, allocs, frees);
  }

  void allocate(CaseScope &c) {
    for (size_t k = 0; k < kBlocks; ++k) {
      Block b{nullptr, kSizes[k % std::size(kSizes)], k % 4 == 3 ? 4096u : 0u,
              kTagBase + static_cast<uint32_t>(k % kTags), static_cast<uint8_t>(k * 37 + 1)};
      const plx_mem_alloc_params p{sizeof(plx_mem_alloc_params), kind, b.bytes, b.alignment, b.tag, 0};
      const plx_status s = plx_mem_alloc(comm, &p, &b.ptr);
      if (!c.expect(s == PLX_OK && b.ptr, "plx_mem_alloc({} bytes, tag {}): {}", b.bytes, b.tag, status_text(s)))
        return;
      const uint64_t align = std::max<uint64_t>(b.alignment, 256);
      c.expect(reinterpret_cast<uintptr_t>(b.ptr) % align == 0, "a block of {} bytes at {} is not {}-byte aligned",
               b.bytes, b.ptr, align);
      blocks.push_back(b);
    }
  }

  void check_disjoint(CaseScope &c) const {
    std::vector<std::pair<uintptr_t, uint64_t>> ranges;
    for (const Block &b : blocks) ranges.emplace_back(reinterpret_cast<uintptr_t>(b.ptr), b.bytes);
    std::sort(ranges.begin(), ranges.end());
    for (size_t k = 1; k < ranges.size(); ++k)
      c.expect(ranges[k - 1].first + ranges[k - 1].second <= ranges[k].first,
               "the block at {:#x} ({} bytes) overlaps the one at {:#x}", ranges[k - 1].first, ranges[k - 1].second,
               ranges[k].first);
  }

  void write_patterns(CaseScope &c) {
    std::string error;
    for (const Block &b : blocks)
      if (access.can() && !c.expect(access.write(b.ptr, pattern(b), &error), "writing a block: {}", error)) return;
  }

  // Every live block still holds its pattern, byte for byte.
  void check_patterns(CaseScope &c, const char *after) {
    std::string error;
    for (const Block &b : blocks) {
      if (!b.ptr || !access.can()) continue;
      std::vector<uint8_t> got(b.bytes);
      if (!c.expect(access.read(b.ptr, &got, &error), "reading a block back: {}", error)) return;
      const std::vector<uint8_t> want = pattern(b);
      const auto bad = std::mismatch(got.begin(), got.end(), want.begin());
      if (!c.expect(bad.first == got.end(), "after {}, byte {} of the live block of {} bytes at {} is {:#04x}, want {:#04x}",
                    after, bad.first - got.begin(), b.bytes, b.ptr, bad.first == got.end() ? 0 : *bad.first,
                    bad.first == got.end() ? 0 : *bad.second))
        return;
    }
  }

  void free_block(Block &b, CaseScope &c) {
    const plx_status s = plx_mem_free(comm, b.ptr);
    if (c.expect(s == PLX_OK, "plx_mem_free({}): {}", b.ptr, status_text(s))) freed = b.ptr, b.ptr = nullptr;
  }

  // A free the pool must refuse: INVALID_ARGUMENT with a message.
  void refuse_free(void *ptr, const char *what, CaseScope &c) {
    const plx_status s = plx_mem_free(comm, ptr);
    const std::string message = s == PLX_OK ? "" : plx_last_error();
    c.expect(s == PLX_ERR_INVALID_ARGUMENT && !message.empty(),
             "plx_mem_free of {} returned {}, want PLX_ERR_INVALID_ARGUMENT with a message", what, status_text(s));
  }

  void refuse_alloc(uint64_t bytes, uint32_t tag, const char *what, CaseScope &c) {
    const plx_mem_alloc_params p{sizeof(plx_mem_alloc_params), kind, bytes, 0, tag, 0};
    void *ptr = &ptr;  // must stay untouched
    const plx_status s = plx_mem_alloc(comm, &p, &ptr);
    const std::string message = s == PLX_OK ? "" : plx_last_error();
    c.expect(s == PLX_ERR_INVALID_ARGUMENT && !message.empty() && ptr == &ptr,
             "plx_mem_alloc with {} returned {}{}, want PLX_ERR_INVALID_ARGUMENT with a message", what,
             status_text(s), ptr == &ptr ? "" : " and wrote *ptr");
    if (s == PLX_OK) plx_mem_free(comm, ptr);
  }
};

void allocate_case(PoolRun &run) {
  CaseScope c(run.ctx.out, "PLX-P-17", run.group, "12 blocks of mixed sizes, alignments and tags");
  if (!snapshot(run.comm, run.kind, &run.base, c)) return;
  run.allocate(c);
  if (c.failed()) return;
  run.check_disjoint(c);
  run.write_patterns(c);
  Snapshot now;
  if (snapshot(run.comm, run.kind, &now, c)) run.check_counts(now, kBlocks, 0, c);
}

void free_half_case(PoolRun &run) {
  CaseScope c(run.ctx.out, "PLX-P-17", run.group, "every other block freed");
  for (size_t k = 1; k < run.blocks.size(); k += 2) run.free_block(run.blocks[k], c);
  Snapshot now;
  if (snapshot(run.comm, run.kind, &now, c)) run.check_counts(now, kBlocks, kBlocks / 2, c);
  run.check_patterns(c, "freeing the other blocks");
}

// Released bytes agree with bytes_reserved and bytes_released; in use unchanged.
void check_release(const plx_mem_stats &before, const plx_mem_stats &after, uint64_t released, const char *call,
                   CaseScope &c) {
  c.expect(after.bytes_in_use == before.bytes_in_use, "{} changed bytes_in_use from {} to {}", call,
           before.bytes_in_use, after.bytes_in_use);
  c.expect(before.bytes_reserved - after.bytes_reserved == released &&
               after.bytes_released - before.bytes_released == released,
           "{} reported {} bytes released, but bytes_reserved went from {} to {} and bytes_released from {} to {}",
           call, released, before.bytes_reserved, after.bytes_reserved, before.bytes_released, after.bytes_released);
  c.expect(after.bytes_reserved >= after.bytes_in_use, "after {}, {} bytes reserved but {} in use", call,
           after.bytes_reserved, after.bytes_in_use);
}

void defragment_case(PoolRun &run) {
  CaseScope c(run.ctx.out, "PLX-P-17", run.group, "defragment and trim keep the live blocks");
  plx_mem_stats before, mid, after;
  uint64_t released = ~0ull, trimmed = ~0ull;
  if (!read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &before, c)) return;
  plx_status s = plx_mem_defragment(run.comm, run.kind, &released);
  if (!c.expect(s == PLX_OK, "plx_mem_defragment: {}", status_text(s))) return;
  if (!read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &mid, c)) return;
  check_release(before, mid, released, "plx_mem_defragment", c);
  c.expect(mid.defragment_count > before.defragment_count, "defragment_count stayed {}", mid.defragment_count);
  s = plx_mem_trim(run.comm, run.kind, 0, &trimmed);
  if (!c.expect(s == PLX_OK, "plx_mem_trim(keep 0): {}", status_text(s))) return;
  if (read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &after, c))
    check_release(mid, after, trimmed, "plx_mem_trim(keep 0)", c);
  run.check_patterns(c, "plx_mem_defragment and plx_mem_trim");
}

void pressure_case(PoolRun &run) {
  CaseScope c(run.ctx.out, "PLX-P-17", run.group, "pressure level");
  plx_pressure level = -1;
  const plx_status s = plx_mem_pressure(run.comm, run.kind, &level);
  c.expect(s == PLX_OK && level >= PLX_PRESSURE_LOW && level <= PLX_PRESSURE_HIGH,
           "plx_mem_pressure returned {} with level {}, want PLX_OK and LOW, MEDIUM or HIGH", status_text(s), level);
}

void bad_input_case(PoolRun &run) {
  CaseScope c(run.ctx.out, "PLX-P-20", run.group, "bad input refused, nothing changed");
  plx_mem_stats before, after;
  if (!read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &before, c)) return;
  if (run.blocks.size() < kBlocks || !run.freed) return;  // the cases before have said why
  std::vector<uint8_t> foreign(4096);
  run.refuse_free(run.freed, "a block freed before (a double free)", c);
  run.refuse_free(static_cast<uint8_t *>(run.blocks[6].ptr) + 512, "a pointer inside a live block", c);
  run.refuse_free(foreign.data(), "a pointer the pool never gave out", c);
  run.refuse_alloc(64, PLX_MEM_TAG_COUNT, "tag PLX_MEM_TAG_COUNT", c);
  run.refuse_alloc(0, kTagBase, "0 bytes", c);
  plx_mem_stats bad_tag{};
  bad_tag.struct_size = sizeof(bad_tag);
  const plx_status s = plx_mem_stats_get(run.comm, run.kind, PLX_MEM_TAG_COUNT, &bad_tag);
  c.expect(s == PLX_ERR_INVALID_ARGUMENT, "plx_mem_stats_get(tag PLX_MEM_TAG_COUNT) returned {}", status_text(s));
  c.expect(plx_mem_free(run.comm, nullptr) == PLX_OK, "plx_mem_free(NULL): {}, want a no-op", plx_last_error());
  if (read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &after, c))
    c.expect(after.bytes_in_use == before.bytes_in_use && after.free_count == before.free_count &&
                 after.alloc_count == before.alloc_count,
             "the refused calls changed the pool: in use {} -> {}, allocs {} -> {}, frees {} -> {}",
             before.bytes_in_use, after.bytes_in_use, before.alloc_count, after.alloc_count, before.free_count,
             after.free_count);
  run.check_patterns(c, "the refused calls");
}

// PLX-P-17: nothing in use once every block is freed; with
// PLX_CAP_DEFRAGMENT, defragment and trim(0) then give every segment back.
void free_all_case(PoolRun &run) {
  CaseScope c(run.ctx.out, "PLX-P-17", run.group, "nothing in use after freeing everything");
  for (Block &b : run.blocks)
    if (b.ptr) run.free_block(b, c);
  plx_mem_stats now;
  if (!read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &now, c)) return;
  c.expect(now.bytes_in_use == 0 && now.bytes_requested == 0, "{} bytes in use ({} requested) after freeing every block",
           now.bytes_in_use, now.bytes_requested);
  if (!run.ctx.has_cap(PLX_CAP_DEFRAGMENT)) return;
  uint64_t released = 0, trimmed = 0;
  const plx_status d = plx_mem_defragment(run.comm, run.kind, &released);
  const plx_status t = plx_mem_trim(run.comm, run.kind, 0, &trimmed);
  if (c.expect(d == PLX_OK && t == PLX_OK, "plx_mem_defragment: {}, plx_mem_trim: {}", status_text(d), status_text(t)) &&
      read_stats(run.comm, run.kind, PLX_MEM_TAG_ALL, &now, c))
    c.expect(now.bytes_reserved == 0, "{} bytes still reserved after freeing everything, plx_mem_defragment and "
             "plx_mem_trim(keep 0)", now.bytes_reserved);
}

void test_kind(RankContext &ctx, plx_comm_h comm, plx_mem_kind kind) {
  PoolRun run(ctx, comm, kind);
  if (!run.access.can() && ctx.rank() == 0) ctx.out.note(fmt::format("pool {}: {}", mem_kind_name(kind), run.access.why()));
  allocate_case(run);
  free_half_case(run);
  if (ctx.has_cap(PLX_CAP_DEFRAGMENT)) defragment_case(run);
  pressure_case(run);
  bad_input_case(run);
  free_all_case(run);
}

// Kinds that need CUDA are tested only where the run has a GPU per rank.
bool testable(const RankContext &ctx, plx_mem_kind kind) {
  if (!((ctx.props.alloc_kind_mask >> kind) & 1u) || !((ctx.opts.mem_mask >> kind) & 1u)) return false;
  if (!needs_cuda(kind) || ctx.memory.cuda) return true;
  if (ctx.rank() == 0)
    ctx.out.note(fmt::format("pool {} not tested: it needs a CUDA device per rank (--mem, or a build without CUDA)",
                             mem_kind_name(kind)));
  return false;
}

}  // namespace

void run_memory_session(RankContext &ctx) {
  const plx_comm_h comm = join_checked(ctx, 0, 30000);
  if (comm == nullptr) return;
  for (plx_mem_kind kind = PLX_MEM_SHARED_HOST; kind < PLX_MEM_KIND_COUNT; ++kind)
    if (testable(ctx, kind)) test_kind(ctx, comm, kind);
  CaseScope c(ctx.out, "PLX-P-13", "comm_destroy", "memory session");
  const plx_status s = plx_comm_destroy(comm);
  c.expect(s == PLX_OK, "plx_comm_destroy returned {}", status_text(s));
}

}  // namespace plexus::conformance
