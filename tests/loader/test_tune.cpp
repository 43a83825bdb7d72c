// The PLEXUS_TUNE grammar (loader/tune.hpp) as a pure unit: what it
// accepts, how it matches calls, the errors it gives, and the table a
// measurement turns into.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/status.hpp"
#include "loader/tune.hpp"

using namespace plexus::loader;

namespace {

TuneSpec parse_ok(const std::string &text) {
  TuneSpec spec;
  const plx_status s = parse_tune(text, "PLEXUS_TUNE", &spec);
  INFO(plexus::core::last_message());
  REQUIRE(s == PLX_OK);
  return spec;
}

// The message of a rejection, which must quote the grammar.
std::string rejection(const std::string &text) {
  TuneSpec spec;
  const plx_status s = parse_tune(text, "PLEXUS_TUNE", &spec);
  const std::string message = plexus::core::last_message();
  CHECK_MESSAGE(s == PLX_ERR_INVALID_ARGUMENT, text);
  CHECK(message.find(tune_grammar) != std::string::npos);
  return message;
}

bool has(const std::string &text, const std::string &word) { return text.find(word) != std::string::npos; }

}  // namespace

TEST_CASE("Loader.Tune.accepts_rules_and_additions") {
  const TuneSpec spec = parse_ok(" all_reduce@device : -256K : p2p-tree ; all_reduce@device:256K-:nccl;"
                                 "*:*:shm-native#1; +nccl ; p2p@host:1M-2G:shm-native");
  REQUIRE(spec.rules.size() == 4);
  CHECK(spec.added == std::vector<std::string>{"nccl"});
  const TuneRule &first = spec.rules[0];
  CHECK(first.op == PLX_COLL_ALL_REDUCE);
  CHECK(first.kind == MemClass::device);
  CHECK(first.lo == 0);
  CHECK(first.hi == 256 * 1024);
  CHECK(first.backend == "p2p-tree");
  CHECK(spec.rules[1].hi == size_unbounded);
  CHECK(spec.rules[2].op == route_op_any);
  CHECK(spec.rules[2].backend == "shm-native#1");
  CHECK(spec.rules[3].op == route_op_p2p);
  CHECK(spec.rules[3].hi == uint64_t{2} << 30);
}

TEST_CASE("Loader.Tune.matching") {
  const TuneSpec spec = parse_ok("all_reduce@device:1K-4K:nccl;p2p:*:x");
  const TuneRule &r = spec.rules[0];
  CHECK(r.matches(PLX_COLL_ALL_REDUCE, MemClass::device, 1024));
  CHECK(r.matches(PLX_COLL_ALL_REDUCE, MemClass::device, 4095));
  CHECK_FALSE(r.matches(PLX_COLL_ALL_REDUCE, MemClass::device, 4096));  // HI is excluded
  CHECK_FALSE(r.matches(PLX_COLL_ALL_REDUCE, MemClass::device, 1023));
  CHECK_FALSE(r.matches(PLX_COLL_ALL_REDUCE, MemClass::host, 2048));
  CHECK_FALSE(r.matches(PLX_COLL_REDUCE, MemClass::device, 2048));
  // send and recv route together.
  CHECK(spec.rules[1].matches(route_op_of(PLX_COLL_SEND), MemClass::host, 7));
  CHECK(spec.rules[1].matches(route_op_of(PLX_COLL_RECV), MemClass::device, 7));
}

TEST_CASE("Loader.Tune.text_round_trip") {
  for (const char *text : {"all_reduce@device:-256K:p2p-tree", "reduce:1536-3M:nccl", "*:*:a#7",
                           "+shm-native#1;barrier@host:*:shm-native", "gather:5-:x;reduce_scatter:-1G:y"}) {
    const TuneSpec spec = parse_ok(text);
    CHECK(tune_text(spec) == text);
    CHECK(tune_text(parse_ok(tune_text(spec))) == tune_text(spec));
  }
  CHECK(tune_text(parse_ok("all_reduce:-:x")) == "all_reduce:*:x");
}

TEST_CASE("Loader.Tune.errors_name_the_item_and_what_is_wrong") {
  CHECK(has(rejection(""), "item 1 '': the item is empty"));
  CHECK(has(rejection("*:*:a;;*:*:b"), "item 2 '': the item is empty"));
  CHECK(has(rejection("*:*:a;"), "item 2"));
  CHECK(has(rejection("allreduce:*:nccl"), "'allreduce' is not an op"));
  CHECK(has(rejection("send:*:nccl"), "a send and its recv must meet on one backend, so both are 'p2p'"));
  CHECK(has(rejection("all_reduce@gpu:*:nccl"), "'gpu' is not a memory kind (host or device)"));
  CHECK(has(rejection("all_reduce:*"), "a rule has 3 parts separated by ':' (OP[@KIND]:RANGE:BACKEND), this one 2"));
  CHECK(has(rejection("all_reduce:1K:nccl"), "'1K' is not a range"));
  CHECK(has(rejection("all_reduce:1-2-3:nccl"), "is not a range"));
  CHECK(has(rejection("all_reduce:64K-1K:nccl"), "the range '64K-1K' is empty: it ends before it starts"));
  CHECK(has(rejection("all_reduce:4K-4K:nccl"), "is empty"));
  CHECK(has(rejection("all_reduce:1k-:nccl"), "'1k' is not a size"));
  CHECK(has(rejection("all_reduce:-1T:nccl"), "'1T' is not a size"));
  CHECK(has(rejection("all_reduce:-99999999999999999999:nccl"), "is not a size"));
  CHECK(has(rejection("all_reduce:-17179869184G:nccl"), "is not a size"));  // 2^64
  CHECK(has(rejection("all_reduce:*:NCCL"), "'NCCL' is not a backend"));
  CHECK(has(rejection("all_reduce:*:nccl#8"), "'nccl#8' is not a backend (a plugin name with an optional #1..#7)"));
  CHECK(has(rejection("all_reduce:*:nccl#0"), "is not a backend"));
  CHECK(has(rejection("+"), "'' is not a backend"));
  CHECK(has(rejection("+/opt/libplexus-x.so"), "is not a backend"));
  std::string many;
  for (int i = 0; i < 65; ++i) many += "+a;";
  CHECK(has(rejection(many + "+a"), "at most 64 are allowed"));
  CHECK(has(rejection(std::string(5000, 'a')), "at most 4096 are read"));
}

TEST_CASE("Loader.Tune.backend_labels") {
  std::string name;
  int32_t instance = -1;
  CHECK(parse_backend_label("shm-native#3", &name, &instance));
  CHECK(name == "shm-native");
  CHECK(instance == 3);
  CHECK(parse_backend_label("nccl", &name, &instance));
  CHECK(instance == 0);
  CHECK_FALSE(parse_backend_label("nccl#", &name, &instance));
  CHECK_FALSE(parse_backend_label("nccl#12", &name, &instance));
  CHECK_FALSE(parse_backend_label("#1", &name, &instance));
}

TEST_CASE("Loader.Tune.rules_from_a_measurement") {
  const std::vector<uint64_t> sizes = {1024, 4096, 16384, 65536};
  const std::vector<std::string> labels = {"p2p-tree", "nccl"};
  const double inf = std::numeric_limits<double>::infinity();
  SUBCASE("a crossover ends halfway between the sizes, geometrically") {
    const std::vector<double> t = {1.0, 2.0, 1.0, 2.0, 3.0, 2.0, 5.0, 2.0};
    const std::vector<TuneRule> rules = rules_from_times(MemClass::device, sizes, labels, t);
    REQUIRE(rules.size() == 2);
    CHECK(tune_text(rules[0]) == "all_reduce@device:-8K:p2p-tree");
    CHECK(tune_text(rules[1]) == "all_reduce@device:8K-:nccl");
  }
  SUBCASE("within the margin the previous winner keeps the size") {
    const std::vector<double> t = {1.0, 2.0, 1.02, 1.0, 1.0, 1.02, 3.0, 1.0};
    const std::vector<TuneRule> rules = rules_from_times(MemClass::host, sizes, labels, t);
    REQUIRE(rules.size() == 2);
    CHECK(tune_text(rules[0]) == "all_reduce@host:-32K:p2p-tree");
    CHECK(tune_text(rules[1]) == "all_reduce@host:32K-:nccl");
  }
  SUBCASE("a backend that sat out never wins; one winner is one rule") {
    const std::vector<double> t = {inf, 2.0, inf, 1.0, inf, 1.0, inf, 9.0};
    const std::vector<TuneRule> rules = rules_from_times(MemClass::device, sizes, labels, t);
    REQUIRE(rules.size() == 1);
    CHECK(tune_text(rules[0]) == "all_reduce@device:*:nccl");
  }
  CHECK(rules_from_times(MemClass::device, sizes, labels, std::vector<double>(8, inf)).empty());
}
