// p2p-tree's routes over partly connected machines (p2p_topo.hpp), on
// connectivity matrices: full, a ring only, a line (no Hamiltonian cycle),
// a star, two islands, 1 to 8 ranks; and the parameters that shape them
// (UNLINK, TREE_ARITY, the new ALGO values), parsed strictly.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.hpp"
#include "plugins/p2p-tree/p2p_backend.hpp"
#include "plugins/p2p-tree/p2p_topo.hpp"
#include "tests/plugins/plugin_unit.hpp"

namespace {

using namespace plexus::p2p_tree;

Links links_of(int n, std::initializer_list<std::pair<int, int>> pairs) {
  Links l{n, {}};
  for (auto [a, b] : pairs) l.row[a] |= 1u << b, l.row[b] |= 1u << a;
  return l;
}

Links ring_only(int n) {
  Links l{n, {}};
  for (int a = 0; a < n; ++a) l.row[a] |= 1u << (a + 1) % n, l.row[(a + 1) % n] |= 1u << a;
  return l;
}

Links line(int n) {
  Links l{n, {}};
  for (int a = 0; a + 1 < n; ++a) l.row[a] |= 1u << (a + 1), l.row[a + 1] |= 1u << a;
  return l;
}

// A cycle visiting every rank once over linked pairs, starting at 0.
void check_ring(const Links &l, const Ring &r) {
  REQUIRE(r.ok);
  uint32_t seen = 0;
  for (int pos = 0; pos < l.nranks; ++pos) {
    seen |= 1u << r.order[pos];
    if (l.nranks > 1) CHECK(l.linked(r.order[pos], r.order[(pos + 1) % l.nranks]));
  }
  CHECK(r.order[0] == 0);
  CHECK(seen == (1u << l.nranks) - 1);
}

// Every rank reaches the root through linked parents; children lists are
// sorted, consistent with the parents, and within the arity where `strict`.
void check_tree(const Links &l, const Tree &t, int arity, bool strict) {
  REQUIRE(t.ok);
  CHECK(t.parent[t.root] == -1);
  for (int r = 0; r < l.nranks; ++r) {
    int hops = 0;
    for (int u = r; u != t.root && hops <= l.nranks; u = t.parent[u], ++hops) CHECK(l.linked(u, t.parent[u]));
    CHECK(hops < l.nranks);
    if (strict) CHECK(t.nchildren[r] <= arity);
    for (int i = 0; i < t.nchildren[r]; ++i) {
      CHECK(t.parent[t.child[r][i]] == r);
      if (i > 0) CHECK(t.child[r][i - 1] < t.child[r][i]);
    }
  }
}

plx_status parse(std::map<std::string, std::string> values, Params *p) {
  return plexus::test::parse_with(std::move(values), read_params, p);
}

}  // namespace

TEST_CASE("plugins.p2p_tree.topo.full_graphs") {
  for (int n = 1; n <= kMaxRanks; ++n) {
    CAPTURE(n);
    const Links l = full_links(n);
    CHECK(is_full(l));
    CHECK(unreachable_pair(l).none());
    const Ring r = ring_order(l);
    check_ring(l, r);
    for (int pos = 0; pos < n; ++pos) CHECK(r.order[pos] == pos);  // today's order on a full machine
    for (int root = 0; root < n; ++root) {
      check_tree(l, spanning_tree(l, root, 2), 2, true);
      check_tree(l, spanning_tree(l, root, 4), 4, true);
    }
  }
  const Tree binary = spanning_tree(full_links(8), 0, 2);  // heap order
  CHECK(binary.parent[1] == 0);
  CHECK(binary.parent[2] == 0);
  CHECK(binary.parent[3] == 1);
  CHECK(binary.parent[6] == 2);
  CHECK(binary.parent[7] == 3);
  const Tree kary = spanning_tree(full_links(8), 0, 4);
  CHECK(kary.nchildren[0] == 4);
  CHECK(kary.parent[5] == 1);
}

TEST_CASE("plugins.p2p_tree.topo.ring_only_and_lines") {
  for (int n = 3; n <= kMaxRanks; ++n) {
    CAPTURE(n);
    const Links cycle = ring_only(n);
    CHECK(is_full(cycle) == (n == 3));
    check_ring(cycle, ring_order(cycle));
    check_tree(cycle, spanning_tree(cycle, 0, 2), 2, true);
    const Links path = line(n);
    CHECK_FALSE(ring_order(path).ok);  // no Hamiltonian cycle: trees only
    CHECK(unreachable_pair(path).none());
    for (int root = 0; root < n; ++root) check_tree(path, spanning_tree(path, root, 2), 2, true);
  }
  check_ring(line(2), ring_order(line(2)));  // two linked ranks are a ring
  // 0-1-2-3-0 plus 0-2: the search finds 0 1 2 3.
  const Ring r = ring_order(links_of(4, {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {0, 2}}));
  check_ring(links_of(4, {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {0, 2}}), r);
  CHECK(ring_view(r, 4, 2).pred == 1);
  CHECK(ring_view(r, 4, 2).succ == 3);
  CHECK(ring_view(r, 4, 0).pred == 3);
}

TEST_CASE("plugins.p2p_tree.topo.star_exceeds_the_arity_and_islands_fail") {
  const Links star = links_of(6, {{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}});
  const Tree t = spanning_tree(star, 0, 2);
  check_tree(star, t, 2, false);
  CHECK(t.nchildren[0] == 5);  // only the centre links the others
  CHECK_FALSE(ring_order(star).ok);
  const Tree from_leaf = spanning_tree(star, 3, 2);
  check_tree(star, from_leaf, 2, false);
  CHECK(from_leaf.parent[0] == 3);
  const Links islands = links_of(4, {{0, 1}, {2, 3}});
  CHECK(unreachable_pair(islands).a == 0);
  CHECK(unreachable_pair(islands).b == 2);
  CHECK_FALSE(spanning_tree(islands, 0, 4).ok);
  CHECK_FALSE(ring_order(islands).ok);
}

TEST_CASE("plugins.p2p_tree.topo.links_need_both_ends") {
  const uint32_t reach[3] = {0b110, 0b001, 0b011};  // 1 does not reach 2
  const Links l = links_from(3, reach);
  CHECK(l.linked(0, 1));
  CHECK(l.linked(0, 2));
  CHECK_FALSE(l.linked(1, 2));
  CHECK_FALSE(l.linked(2, 1));
  CHECK(first_unlinked(l).a == 1);
  const Routes routes = routes_for(l, 4);
  CHECK_FALSE(routes.full);
  CHECK_FALSE(routes.ring.ok);
  check_tree(l, routes.kary[0], 4, true);
  const plexus::kernels::TreeView v = tree_view(routes.kary[0], 0);
  CHECK(v.parent == -1);
  CHECK(v.nchildren == 2);
}

TEST_CASE("plugins.p2p_tree.topo.unlink_text") {
  uint64_t pairs = 99;
  REQUIRE(parse_unlink("", &pairs));
  CHECK(pairs == 0);
  REQUIRE(parse_unlink("0-1,2-3", &pairs));
  CHECK(pair_bit(pairs, 1, 0));
  CHECK(pair_bit(pairs, 2, 3));
  CHECK_FALSE(pair_bit(pairs, 0, 2));
  REQUIRE(parse_unlink("7-6", &pairs));
  CHECK(pair_bit(pairs, 6, 7));
  for (const char *bad : {"0-0", "0-8", "0-", "0", "01-2", "0-12", "0-1,", ",0-1", "0-1;2-3", "a-b", " 0-1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_unlink(bad, &pairs));
  }
}

TEST_CASE("plugins.p2p_tree.topo.params_parse_strictly") {
  Params p;
  REQUIRE(parse({}, &p) == PLX_OK);
  CHECK(p.tree_arity == 4);
  CHECK(p.unlinked == 0);
  REQUIRE(parse({{"p2p-tree/UNLINK", "0-1,2-3"}, {"p2p-tree/TREE_ARITY", "3"}, {"p2p-tree/ALGO", "ring"}}, &p) ==
          PLX_OK);
  CHECK(p.unlinked == with_pair(with_pair(0, 0, 1), 2, 3));
  CHECK(p.tree_arity == 3);
  CHECK(p.forced_algo == PLX_ALGO_RING);
  for (auto [text, algo] : {std::pair{"tree", PLX_ALGO_TREE}, std::pair{"kary_tree", PLX_ALGO_KARY_TREE}}) {
    Params q;
    REQUIRE(parse({{"p2p-tree/ALGO", text}}, &q) == PLX_OK);
    CHECK(q.forced_algo == algo);
  }
  const std::pair<const char *, const char *> bad[] = {
      {"UNLINK", "0-9"}, {"UNLINK", "0:1"}, {"TREE_ARITY", "1"}, {"TREE_ARITY", "8"}, {"ALGO", "rings"}};
  for (const auto &[name, value] : bad) {
    CAPTURE(name);
    CAPTURE(value);
    Params fresh;
    CHECK(parse({{std::string("p2p-tree/") + name, value}}, &fresh) == PLX_ERR_INVALID_ARGUMENT);
    CHECK(plexus::core::last_message().find(std::string("PLEXUS_P2P_TREE_") + name) != std::string::npos);
  }
}
