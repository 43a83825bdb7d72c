// Which ranks of a p2p-tree communicator reach each other with peer access,
// and the routes over those links: a ring (a Hamiltonian cycle) for the
// pipelined ring all-reduce, spanning trees for the tree kernels. Plain
// constexpr arithmetic that every rank runs on the same all-gathered
// matrix, so every rank gets the same ring and the same trees; the CPU test
// (test_p2p_topo.cpp) checks it on full, ring-only, line and split graphs.
#pragma once

#include <cstdint>

#include "kernels/pipe.hpp"

namespace plexus::p2p_tree {

constexpr int kMaxRanks = kernels::kMaxRanks;

// row[a] bit b: ranks a and b are linked (both ends have peer access).
struct Links {
  int32_t nranks = 1;
  uint32_t row[kMaxRanks] = {};
  constexpr bool linked(int a, int b) const { return a != b && ((row[a] >> b) & 1u) != 0; }
};

constexpr Links full_links(int nranks) {
  Links l{nranks, {}};
  for (int a = 0; a < nranks; ++a) l.row[a] = ((1u << nranks) - 1) & ~(1u << a);
  return l;
}

// reach[r] bit q: rank r can reach rank q. A pair is linked only when both
// ends say so, so the matrix is symmetric whatever each rank saw.
constexpr Links links_from(int nranks, const uint32_t *reach) {
  Links l{nranks, {}};
  for (int a = 0; a < nranks; ++a)
    for (int b = 0; b < nranks; ++b)
      if (a != b && ((reach[a] >> b) & 1u) && ((reach[b] >> a) & 1u)) l.row[a] |= 1u << b;
  return l;
}

// PLEXUS_P2P_TREE_UNLINK's pairs: bit a * 8 + b (and b * 8 + a) of `pairs`.
constexpr bool pair_bit(uint64_t pairs, int a, int b) { return ((pairs >> (a * kMaxRanks + b)) & 1u) != 0; }
constexpr uint64_t with_pair(uint64_t pairs, int a, int b) {
  return pairs | uint64_t{1} << (a * kMaxRanks + b) | uint64_t{1} << (b * kMaxRanks + a);
}

// PLEXUS_P2P_TREE_UNLINK's text: a comma list of pairs a-b of distinct
// ranks 0..7 ("0-1,2-3"; empty: none). False for anything else.
constexpr bool parse_unlink(const char *text, uint64_t *pairs) {
  uint64_t out = 0;
  for (const char *c = text; *c != '\0'; c += 3) {
    if (c != text && *c++ != ',') return false;
    const int a = c[0] - '0', b = c[0] == '\0' || c[1] != '-' ? -1 : c[2] - '0';
    if (a < 0 || a >= kMaxRanks || b < 0 || b >= kMaxRanks || a == b) return false;
    out = with_pair(out, a, b);
  }
  *pairs = out;
  return true;
}

struct Pair {
  int32_t a = -1, b = -1;
  constexpr bool none() const { return a < 0; }
};

constexpr Pair first_unlinked(const Links &l) {
  for (int a = 0; a < l.nranks; ++a)
    for (int b = a + 1; b < l.nranks; ++b)
      if (!l.linked(a, b)) return {a, b};
  return {};
}

constexpr bool is_full(const Links &l) { return first_unlinked(l).none(); }

// Ranks reachable from `from` over links, as a bit set.
constexpr uint32_t reachable(const Links &l, int from) {
  uint32_t seen = 1u << from, frontier = seen;
  while (frontier != 0) {
    uint32_t next = 0;
    for (int a = 0; a < l.nranks; ++a)
      if ((frontier >> a) & 1u) next |= l.row[a];
    frontier = next & ~seen;
    seen |= next;
  }
  return seen;
}

// {0, u} for the lowest rank u that rank 0 cannot reach; none when connected.
constexpr Pair unreachable_pair(const Links &l) {
  const uint32_t seen = reachable(l, 0);
  for (int u = 1; u < l.nranks; ++u)
    if (((seen >> u) & 1u) == 0) return {0, u};
  return {};
}

// order[pos] is the rank at ring position pos; each rank sends to the next.
struct Ring {
  bool ok = false;
  int8_t order[kMaxRanks] = {};
};

// Depth-first search for a Hamiltonian cycle from rank 0, neighbours in rank
// order (at most 7! paths for 8 ranks): the first cycle found, so every rank
// finds the same one; on a full graph 0, 1, ..., n-1.
constexpr bool extend_ring(const Links &l, Ring *r, int len, uint32_t used) {
  if (len == l.nranks) return l.nranks <= 2 ? (l.nranks == 1 || l.linked(r->order[0], r->order[1]))
                                            : l.linked(r->order[len - 1], 0);
  for (int q = 1; q < l.nranks; ++q) {
    if (((used >> q) & 1u) || !l.linked(r->order[len - 1], q)) continue;
    r->order[len] = static_cast<int8_t>(q);
    if (extend_ring(l, r, len + 1, used | 1u << q)) return true;
  }
  return false;
}

constexpr Ring ring_order(const Links &l) {
  Ring r;
  r.order[0] = 0;
  r.ok = extend_ring(l, &r, 1, 1u);
  return r;
}

constexpr kernels::RingView ring_view(const Ring &r, int nranks, int rank) {
  int pos = 0;
  while (r.order[pos] != rank) ++pos;
  return {pos, r.order[(pos + nranks - 1) % nranks], r.order[(pos + 1) % nranks]};
}

// A spanning tree of linked pairs: parent[root] = -1; child[r] lists r's
// children in rank order.
struct Tree {
  bool ok = false;
  int32_t root = 0;
  int8_t parent[kMaxRanks] = {};
  int8_t nchildren[kMaxRanks] = {};
  int8_t child[kMaxRanks][kMaxRanks - 1] = {};
};

constexpr void adopt(Tree *t, int parent, int q) {
  int at = t->nchildren[parent]++;
  for (; at > 0 && t->child[parent][at - 1] > q; --at) t->child[parent][at] = t->child[parent][at - 1];
  t->child[parent][at] = static_cast<int8_t>(q);
  t->parent[q] = static_cast<int8_t>(parent);
}

// Breadth first from the root, each rank adopting unvisited linked ranks in
// rank order up to `arity` children. Where the arity leaves a rank out (a
// star whose centre may not take all), the first tree rank in visiting
// order that links to it adopts it beyond the arity, and the search goes on.
constexpr Tree spanning_tree(const Links &l, int root, int arity) {
  Tree t;
  t.root = root;
  for (int q = 0; q < kMaxRanks; ++q) t.parent[q] = -1;
  int8_t queue[kMaxRanks] = {};
  int head = 0, tail = 0;
  queue[tail++] = static_cast<int8_t>(root);
  uint32_t in_tree = 1u << root;
  while (tail < l.nranks) {
    for (; head < tail; ++head)
      for (int q = 0, u = queue[head]; q < l.nranks && t.nchildren[u] < arity; ++q)
        if (((in_tree >> q) & 1u) == 0 && l.linked(u, q)) adopt(&t, u, q), in_tree |= 1u << q, queue[tail++] = int8_t(q);
    bool grew = false;
    for (int i = 0; i < tail && !grew; ++i)
      for (int q = 0; q < l.nranks && !grew; ++q)
        if (((in_tree >> q) & 1u) == 0 && l.linked(queue[i], q))
          adopt(&t, queue[i], q), in_tree |= 1u << q, queue[tail++] = int8_t(q), grew = true;
    if (!grew) break;
  }
  t.ok = tail == l.nranks;
  return t;
}

constexpr kernels::TreeView tree_view(const Tree &t, int rank) {
  kernels::TreeView v;
  v.parent = t.parent[rank];
  v.nchildren = t.nchildren[rank];
  for (int i = 0; i < v.nchildren; ++i) v.child[i] = t.child[rank][i];
  return v;
}

// Everything a communicator routes by, computed once at init.
struct Routes {
  Links links;
  bool full = true;
  Ring ring;
  Tree binary[kMaxRanks];  // rooted at each rank
  Tree kary[kMaxRanks];
};

constexpr Routes routes_for(const Links &l, int arity) {
  Routes r;
  r.links = l;
  r.full = is_full(l);
  r.ring = ring_order(l);
  for (int root = 0; root < l.nranks; ++root) {
    r.binary[root] = spanning_tree(l, root, 2);
    r.kary[root] = spanning_tree(l, root, arity);
  }
  return r;
}

}  // namespace plexus::p2p_tree
