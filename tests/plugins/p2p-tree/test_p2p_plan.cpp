// The launch plans of p2p-tree (p2p_plan.hpp) and the kernels' partition
// arithmetic (kernels.hpp's constexpr share_of, chunk_len, blocks_for, the
// very functions the kernels call), emulated on the CPU: every element is
// read, staged and written exactly once, every staged byte lies inside the
// exchange area, and vector accesses stay 16-byte aligned. The GPU cannot
// be run in CI; this is the part of the kernels that can.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "kernels/ce.hpp"
#include "kernels/kernels.hpp"
#include "plugins/p2p-tree/p2p_plan.hpp"

namespace {

using plexus::kernels::blocks_for;
using plexus::kernels::chunk_len;
using plexus::kernels::Range;
using plexus::kernels::share_of;
using plexus::p2p_tree::ReducePiece;
using plexus::p2p_tree::round_up;

constexpr uint64_t kSlot = 64 << 10;

// The one-shot kernel on one rank: block b stages and reduces its share.
void emulate_one_shot(const ReducePiece &p, uint64_t es, int32_t max_blocks) {
  const uint64_t vec = 16 / es;
  REQUIRE(p.total * es <= kSlot);
  const unsigned blocks = blocks_for(p.total * es, max_blocks);
  std::vector<int> seen(p.total, 0);
  for (unsigned b = 0; b < blocks; ++b) {
    const Range r = share_of(p.total, vec, b, blocks);
    REQUIRE(r.begin % vec == 0);
    for (uint64_t i = r.begin; i < r.end; ++i) ++seen[i];
  }
  bool once = true;
  for (uint64_t i = 0; i < p.total; ++i) once = once && seen[i] == 1;
  REQUIRE(once);
}

// The two-shot kernel on rank `rank`: staging of every chunk, the reduce
// of its own chunk, the all-gather of the others (unless scatter_only).
void emulate_two_shot(const ReducePiece &p, uint64_t es, uint64_t nranks, uint64_t rank, bool scatter,
                      int32_t max_blocks) {
  const uint64_t vec = 16 / es, stride = round_up(p.chunk, vec);
  REQUIRE(nranks * stride * es <= kSlot);  // the input area
  REQUIRE(p.chunk * es <= kSlot);          // the result area
  REQUIRE(nranks * p.chunk >= p.total);
  const unsigned blocks = blocks_for(p.chunk * es, max_blocks);
  std::vector<int> staged(kSlot / es, 0), written(scatter ? p.chunk : p.total, 0);
  std::vector<int> read(nranks * p.chunk, 0);
  for (unsigned b = 0; b < blocks; ++b) {
    const Range r = share_of(p.chunk, vec, b, blocks);
    REQUIRE(r.begin % vec == 0);
    for (uint64_t c = 0; c < nranks; ++c) {
      const uint64_t end = std::min(r.end, chunk_len(p.chunk, p.total, c));
      REQUIRE((c * stride + r.begin) % vec == 0);
      for (uint64_t j = r.begin; j < end; ++j) ++staged[c * stride + j], ++read[c * p.chunk + j];
    }
    const uint64_t own_end = std::min(r.end, chunk_len(p.chunk, p.total, rank));
    for (uint64_t j = r.begin; j < own_end; ++j) ++written[scatter ? j : rank * p.chunk + j];
    if (scatter) continue;
    for (uint64_t q = 0; q < nranks; ++q) {
      const uint64_t end = std::min(r.end, chunk_len(p.chunk, p.total, q));
      for (uint64_t j = r.begin; q != rank && j < end; ++j) ++written[q * p.chunk + j];
    }
  }
  bool read_once = true, staged_at_most_once = true, written_once = true;
  for (uint64_t c = 0; c < nranks; ++c)
    for (uint64_t j = 0; j < p.chunk; ++j)
      read_once = read_once && read[c * p.chunk + j] == (j < chunk_len(p.chunk, p.total, c) ? 1 : 0);
  for (int s : staged) staged_at_most_once = staged_at_most_once && s <= 1;
  for (int w : written) written_once = written_once && w == 1;
  REQUIRE(read_once);
  REQUIRE(staged_at_most_once);
  REQUIRE(written_once);
}

std::vector<uint64_t> counts_for(uint64_t es, uint64_t nranks) {
  const uint64_t area = kSlot / es;
  return {1, 7, 16, 17, 1001, nranks * 16 - 1, area - 1, area, area + 1, 2 * area + 3, 3 * area / nranks + 5};
}

}  // namespace

TEST_CASE("plugins.p2p_tree.plan.all_reduce_pieces_cover_and_fit") {
  for (uint64_t es : {1, 2, 4, 8})
    for (uint64_t nranks : {1, 2, 3, 4, 8})
      for (uint64_t count : counts_for(es, nranks))
        for (bool one_shot : {true, false})
          for (int32_t max_blocks : {32, 3}) {
            INFO("es ", es, " nranks ", nranks, " count ", count, " one_shot ", one_shot, " max_blocks ", max_blocks);
            uint64_t next = 0;
            plexus::p2p_tree::plan_reduce(count, es, nranks, kSlot, one_shot, [&](const ReducePiece &p) {
              REQUIRE(p.offset == next);
              REQUIRE(p.total > 0);
              REQUIRE(plexus::p2p_tree::area_bytes_used(p, one_shot, es, nranks) <= kSlot);
              next += p.total;
              if (one_shot) {
                emulate_one_shot(p, es, max_blocks);
              } else {
                REQUIRE(p.chunk % (16 / es) == 0);
                for (uint64_t rank = 0; rank < nranks; ++rank) emulate_two_shot(p, es, nranks, rank, false, max_blocks);
              }
            });
            REQUIRE(next == count);
          }
}

// The bulk one-shot: pieces of bulk_capacity, each rank's whole piece at
// its vector-rounded slot of one input area.
TEST_CASE("plugins.p2p_tree.plan.bulk_one_shot_pieces_fit_one_area") {
  for (uint64_t es : {1, 2, 4, 8})
    for (uint64_t nranks : {2, 3, 4, 8})
      for (uint64_t count : counts_for(es, nranks)) {
        INFO("es ", es, " nranks ", nranks, " count ", count);
        const uint64_t capacity = plexus::p2p_tree::bulk_capacity(kSlot, nranks);
        uint64_t next = 0;
        plexus::p2p_tree::plan_reduce(count, es, nranks, capacity, true, [&](const ReducePiece &p) {
          REQUIRE(p.offset == next);
          REQUIRE(p.total > 0);
          REQUIRE(nranks * round_up(p.total, 16 / es) * es <= kSlot);
          next += p.total;
          emulate_one_shot(p, es, 128);
        });
        REQUIRE(next == count);
      }
}

TEST_CASE("plugins.p2p_tree.plan.reduce_scatter_pieces_cover_and_fit") {
  for (uint64_t es : {1, 2, 4, 8})
    for (uint64_t nranks : {1, 2, 3, 8})
      for (uint64_t count : counts_for(es, nranks)) {
        INFO("es ", es, " nranks ", nranks, " count ", count);
        uint64_t next = 0;
        plexus::p2p_tree::plan_reduce_scatter(count, es, nranks, kSlot, [&](const ReducePiece &p) {
          REQUIRE(p.offset == next);
          REQUIRE(p.in_stride == count);
          REQUIRE(p.total == p.chunk * nranks);
          REQUIRE(plexus::p2p_tree::area_bytes_used(p, false, es, nranks) <= kSlot);
          next += p.chunk;
          for (uint64_t rank = 0; rank < nranks; ++rank) emulate_two_shot(p, es, nranks, rank, true, 32);
        });
        REQUIRE(next == count);
      }
}

TEST_CASE("plugins.p2p_tree.plan.copies_cover_and_fit") {
  for (uint64_t bytes : {uint64_t{1}, uint64_t{15}, uint64_t{17}, kSlot - 1, kSlot, kSlot + 1, 5 * kSlot + 7}) {
    uint64_t next = 0;
    plexus::p2p_tree::plan_copies(bytes, kSlot, [&](uint64_t offset, uint64_t m) {
      REQUIRE(offset == next);
      REQUIRE((m > 0 && m <= kSlot));
      const unsigned blocks = blocks_for(m, 32);
      uint64_t covered = 0;
      for (unsigned b = 0; b < blocks; ++b) {
        const Range r = share_of(m, 16, b, blocks);
        REQUIRE(r.begin == covered);  // shares are consecutive, so each byte once
        REQUIRE(r.begin % 16 == 0);
        covered = r.end;
      }
      REQUIRE(covered == m);
      next += m;
    });
    REQUIRE(next == bytes);
  }
}

// The gather kernel's blocks for one launch: block b of rank q stages share
// b of q's piece in q's slot of the root's area, and the root's block b
// copies the same share to out + displ; every byte of `out` written at most
// once, each inside the part it belongs to.
void emulate_gather(const std::vector<uint64_t> &pieces, const std::vector<uint64_t> &displ, uint64_t stride,
                    std::vector<int> *written) {
  const uint64_t largest = *std::max_element(pieces.begin(), pieces.end());
  const unsigned blocks = blocks_for(largest, 32);
  for (uint64_t q = 0; q < pieces.size(); ++q)
    for (unsigned b = 0; b < blocks; ++b) {
      const Range r = share_of(pieces[q], 16, b, blocks);
      REQUIRE(r.end <= stride);  // inside slot q of the root's area
      for (uint64_t i = r.begin; i < r.end; ++i) ++(*written)[displ[q] + i];
    }
}

// Gather: every launch's piece of each rank fits its slot of the root's
// area, and the launches cover each rank's part once, zero parts included.
TEST_CASE("plugins.p2p_tree.plan.gather_pieces_cover_and_fit") {
  using plexus::p2p_tree::gather_piece;
  using plexus::p2p_tree::gather_stride;
  const std::vector<std::vector<uint64_t>> cases = {
      {0, 0}, {1, 0, 17}, {kSlot, 3, 0, 5 * kSlot + 7}, {kSlot / 3, kSlot / 3 + 1, kSlot / 3 - 1},
      {0, 0, 0, 0, 0, 0, 0, 9 * kSlot}};
  for (const std::vector<uint64_t> &bytes : cases) {
    const uint64_t n = bytes.size(), stride = gather_stride(kSlot, n);
    REQUIRE((stride % 16 == 0 && stride * n <= kSlot && stride > 0));
    std::vector<uint64_t> covered(n, 0), displ(n, 0);
    for (uint64_t q = 1; q < n; ++q) displ[q] = displ[q - 1] + bytes[q - 1];
    std::vector<int> written(displ[n - 1] + bytes[n - 1], 0);
    plexus::p2p_tree::plan_gather(bytes.data(), n, kSlot, [&](uint64_t offset) {
      std::vector<uint64_t> pieces(n), at(n);
      for (uint64_t q = 0; q < n; ++q) {
        pieces[q] = gather_piece(bytes[q], offset, stride);
        at[q] = displ[q] + offset;
        REQUIRE(pieces[q] <= stride);
        if (pieces[q] > 0) REQUIRE(offset == covered[q]);  // consecutive: each byte once
        covered[q] += pieces[q];
      }
      emulate_gather(pieces, at, stride, &written);
    });
    for (uint64_t q = 0; q < n; ++q) CHECK(covered[q] == bytes[q]);
    CHECK(std::count(written.begin(), written.end(), 1) == static_cast<long>(written.size()));
  }
}

TEST_CASE("plugins.p2p_tree.plan.blocks_for_bounds") {
  CHECK(blocks_for(0, 32) == 1);
  CHECK(blocks_for(1, 32) == 1);
  CHECK(blocks_for(8192, 32) == 1);
  CHECK(blocks_for(8193, 32) == 2);
  CHECK(blocks_for(1 << 30, 32) == 32);
  CHECK(blocks_for(1 << 30, 5) == 5);
  CHECK(blocks_for(1 << 30, 999) == static_cast<unsigned>(plexus::kernels::kMaxBlocks));
}

// The two-shot's rounds: every block counts the same rounds (block 0's
// share decides), the rounds of each block's share cover it exactly, in
// order, vector-aligned where not empty; big shares take kMaxRounds, small ones one.
TEST_CASE("plugins.p2p_tree.plan.two_shot_rounds_cover_each_share") {
  using plexus::kernels::kMaxRounds;
  using plexus::kernels::two_shot_rounds;
  CHECK(two_shot_rounds(0, 1, 8) == 1);
  CHECK(two_shot_rounds(32767, 3, 8) == 1);
  CHECK(two_shot_rounds(65536, 3, 8) == 1);      // 192 KiB to copy, below kRoundsFromBytes: one round
  CHECK(two_shot_rounds(128 << 10, 1, 4) == 1);  // 2 ranks, 32 MiB in 128 blocks: one round
  CHECK(two_shot_rounds(128 << 10, 3, 4) == 4);  // 4 ranks, 64 MiB: four
  CHECK(two_shot_rounds(256 << 10, 1, 4) == 4);  // 2 ranks, 64 MiB: four
  CHECK(two_shot_rounds(160 << 10, 3, 8) == 5);
  CHECK(two_shot_rounds(uint64_t{1} << 30, 0, 8) == 1);  // one rank copies nothing
  CHECK(two_shot_rounds(uint64_t{1} << 30, 1, 8) == kMaxRounds);
  CHECK(two_shot_rounds(uint64_t{1} << 30, 1, 3) == 3);
  CHECK(two_shot_rounds(uint64_t{1} << 30, 1, 0) == 1);
  CHECK(two_shot_rounds(uint64_t{1} << 30, 7, 99) == kMaxRounds);
  for (uint64_t esize : {1, 2, 4, 8})
    for (uint64_t chunk : {uint64_t{1}, uint64_t{4099}, uint64_t{1} << 20, (uint64_t{16} << 20) / esize + 3})
      for (unsigned workers : {1u, 7u, 128u}) {
        const uint64_t V = 16 / esize;
        const uint32_t rounds = two_shot_rounds(share_of(chunk, V, 0, workers).end * esize, 1, kMaxRounds);
        uint64_t next = 0;
        for (unsigned b = 0; b < workers; ++b) {
          const Range share = share_of(chunk, V, b, workers);
          for (uint32_t r = 0; r < rounds; ++r) {
            const Range piece = share_of(share.end - share.begin, V, r, rounds);
            REQUIRE(share.begin + piece.begin == next);
            if (piece.end > piece.begin) REQUIRE((share.begin + piece.begin) % V == 0);
            next = share.begin + piece.end;
          }
          REQUIRE(next == share.end);
        }
        REQUIRE(next == chunk);
      }
}

TEST_CASE("plugins.p2p_tree.plan.copy_blocks_bounded_by_workers") {
  using plexus::kernels::copy_blocks_for;
  CHECK(copy_blocks_for(128, 0, 4) == 0);
  CHECK(copy_blocks_for(128, -3, 4) == 0);
  CHECK(copy_blocks_for(128, 32, 4) == 32);
  CHECK(copy_blocks_for(16, 32, 2) == 16);  // at most one per worker
  CHECK(copy_blocks_for(1, 128, 2) == 1);
  CHECK(copy_blocks_for(128, 128, 1) == 0);  // one round: nothing to overlap
}

// The LL grid: whole warps, blocks of at least the asked size (at most
// kThreads), at most max_blocks, and one vector per thread whenever
// max_blocks blocks of kThreads hold the message.
TEST_CASE("plugins.p2p_tree.plan.ll_grid_spreads_small_messages") {
  using plexus::kernels::kThreads;
  using plexus::kernels::ll_grid;
  for (int32_t max_blocks : {1, 8, 128})
    for (int32_t floor : {32, 128, 512})
      for (uint64_t vecs : {1u, 31u, 128u, 129u, 512u, 4096u, 8192u, 16385u, 65536u, 1000000u}) {
        CAPTURE(max_blocks);
        CAPTURE(floor);
        CAPTURE(vecs);
        const auto g = ll_grid(vecs, max_blocks, floor);
        CHECK(g.blocks >= 1);
        CHECK(g.blocks <= static_cast<unsigned>(max_blocks));
        CHECK(g.threads % 32 == 0);
        CHECK(g.threads >= static_cast<unsigned>(floor));
        CHECK(g.threads <= static_cast<unsigned>(kThreads));
        if (vecs <= static_cast<uint64_t>(max_blocks) * kThreads) CHECK(uint64_t{g.blocks} * g.threads >= vecs);
        else CHECK((g.blocks == static_cast<unsigned>(max_blocks) && g.threads == static_cast<unsigned>(kThreads)));
      }
  CHECK(ll_grid(512, 128, 128).blocks == 4);     // 8 KiB: 4 SMs of 128 threads
  CHECK(ll_grid(32768, 128, 128).threads == 256);  // 512 KiB: 128 blocks of 256
}

// Every vector's two LL lines land in [0, 2 * vecs), no two vectors share a
// line (a shared line would let one vector's flag pass for another's data),
// and a full run of 32 puts a warp's low halves on 32 consecutive lines.
TEST_CASE("plugins.p2p_tree.plan.ll_lines_are_a_dense_bijection") {
  using plexus::kernels::ll_lines;
  for (uint64_t vecs : {1u, 2u, 31u, 32u, 33u, 63u, 64u, 100u, 4096u, 4097u}) {
    CAPTURE(vecs);
    std::vector<int> seen(2 * vecs, 0);
    for (uint64_t i = 0; i < vecs; ++i) {
      const auto at = ll_lines(i, vecs);
      REQUIRE(at.lo < 2 * vecs);
      REQUIRE(at.hi < 2 * vecs);
      ++seen[at.lo];
      ++seen[at.hi];
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<long>(2 * vecs));
  }
  CHECK(ll_lines(0, 64).lo == 0);
  CHECK(ll_lines(31, 64).lo == 31);
  CHECK(ll_lines(0, 64).hi == 32);
  CHECK(ll_lines(32, 64).lo == 64);
  CHECK(ll_lines(32, 40).hi == 72);  // the short last run of 8: low halves 64..71, high 72..79
}

// LL128 tiles: the 32 lanes of a tile hold its 480 data bytes exactly once,
// in 8-byte aligned pieces (whole elements of every dtype); a line's flag
// lane (7, 15, 23, 31) carries 8 of them; the slot holds the capacity's
// tiles.
TEST_CASE("plugins.p2p_tree.plan.ll128_pieces_tile_the_data") {
  using plexus::kernels::ll128_piece;
  using plexus::kernels::kLL128TileData;
  for (uint64_t tile : {0u, 1u, 7u, 1000u}) {
    std::vector<int> seen(kLL128TileData, 0);
    for (uint32_t lane = 0; lane < 32; ++lane) {
      const auto piece = ll128_piece(tile, lane);
      CAPTURE(lane);
      REQUIRE(piece.begin >= tile * kLL128TileData);
      REQUIRE(piece.begin + piece.bytes <= (tile + 1) * kLL128TileData);
      CHECK(piece.begin % 8 == 0);
      CHECK(piece.bytes == (lane % 8 == 7 ? 8u : 16u));
      for (uint64_t b = piece.begin; b < piece.begin + piece.bytes; ++b) ++seen[b - tile * kLL128TileData];
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<long>(kLL128TileData));
  }
  using plexus::kernels::ll128_capacity;
  using plexus::kernels::ll128_tiles;
  CHECK(ll128_tiles(1) == 1);
  CHECK(ll128_tiles(480) == 1);
  CHECK(ll128_tiles(481) == 2);
  for (uint64_t slot : {uint64_t{64} << 10, uint64_t{1} << 20, uint64_t{3} << 20})
    CHECK(ll128_tiles(ll128_capacity(slot)) * plexus::kernels::kLL128TileBytes <= slot);
  // The one-shot's launches carry half an LL slot, which LL128 lines fit.
  CHECK(ll128_capacity(uint64_t{1} << 20) >= (uint64_t{1} << 20) / 2);
}

// The copy-engine two-shot (kernels/ce.hpp): launches of up to two areas;
// every chunk's pieces cover its elements once, in order, on vector
// boundaries, and every slot of the scatter and gather areas stays inside
// them; each piece's sum shares (share_of in vectors) cover it once.
TEST_CASE("plugins.p2p_tree.plan.copy_engine_pieces_cover_and_fit") {
  using plexus::kernels::ce_piece;
  for (uint64_t es : {1u, 2u, 4u, 8u})
    for (uint64_t n : {2u, 3u, 4u, 8u})
      for (uint32_t pieces : {1u, 2u, 3u, 7u})
        for (uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1001}, 2 * kSlot / es + 13, 5 * kSlot / es + 1}) {
          CAPTURE(es);
          CAPTURE(n);
          CAPTURE(pieces);
          CAPTURE(count);
          const uint64_t vec = 16 / es;
          std::vector<int> seen(count, 0);
          plexus::p2p_tree::plan_reduce(count, es, n, 2 * kSlot, false, [&](const ReducePiece &p) {
            REQUIRE(p.chunk % vec == 0);
            REQUIRE(n * p.chunk * es <= 2 * kSlot);
            for (uint64_t q = 0; q < n; ++q) {
              uint64_t next = 0;
              for (uint32_t k = 0; k < pieces; ++k) {
                const Range r = ce_piece(p.chunk, p.total, q, k, pieces, vec);
                REQUIRE(r.begin == next);
                REQUIRE((r.begin % vec == 0 || r.begin == r.end));
                for (const unsigned blocks : {1u, 5u, 128u})
                  for (unsigned b = 0, at = 0; b < blocks; ++b) {
                    const Range s = share_of(r.end - r.begin, vec, b, blocks);
                    REQUIRE(s.begin == at);
                    at = static_cast<unsigned>(s.end);
                  }
                for (uint64_t i = r.begin; i < r.end; ++i) ++seen[p.offset + q * p.chunk + i];
                next = r.end;
              }
              REQUIRE(next == chunk_len(p.chunk, p.total, q));
            }
          });
          REQUIRE(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
        }
  REQUIRE(plexus::kernels::ce_exit_row(plexus::kernels::kCopyMaxPieces) < 16);
}
