// The PLEXUS_BACKEND grammar as a pure unit (loader/spec.cpp), PLX-L-1.
// Without the loader's services, core keeps the last error in its default
// table, which default_last_error() reads.
#include <doctest/doctest.h>

#include "core/services.hpp"
#include "loader/spec.hpp"

using plexus::loader::BackendSpec;
using plexus::loader::parse_backend_spec;

namespace {

BackendSpec parsed(std::string_view text) {
  BackendSpec spec;
  const plx_status s = parse_backend_spec(text, "PLEXUS_BACKEND", &spec);
  CHECK_MESSAGE(s == PLX_OK, std::string(text), ": ", plexus::core::default_last_error());
  return spec;
}

// The spec is rejected, and the message names the source, the reason and the grammar.
void rejected(std::string_view text, const char *why) {
  BackendSpec spec;
  CHECK(parse_backend_spec(text, "PLEXUS_BACKEND", &spec) == PLX_ERR_INVALID_ARGUMENT);
  const std::string &error = plexus::core::default_last_error();
  INFO("spec '", std::string(text), "': ", error);
  CHECK(error.find("PLEXUS_BACKEND='" + std::string(text) + "'") != std::string::npos);
  CHECK(error.find(why) != std::string::npos);
  CHECK(error.find("The grammar") != std::string::npos);
}

}  // namespace

TEST_CASE("Loader.Spec.auto_and_empty_are_automatic") {
  for (const char *text : {"", "auto", "  auto ", " "}) {
    const BackendSpec spec = parsed(text);
    CHECK(spec.automatic);
    CHECK(spec.entries.empty());
    CHECK(spec.excluded.empty());
  }
}

TEST_CASE("Loader.Spec.names_and_absolute_paths_keep_their_order") {
  const BackendSpec spec = parsed("p2p-tree, /opt/x/libplexus-x.so ,nccl");
  CHECK_FALSE(spec.automatic);
  REQUIRE(spec.entries.size() == 3);
  CHECK(spec.entries[0].name == "p2p-tree");
  CHECK(spec.entries[1].path == "/opt/x/libplexus-x.so");
  CHECK(spec.entries[1].name.empty());
  CHECK(spec.entries[2].name == "nccl");
}

TEST_CASE("Loader.Spec.caret_excludes_names_from_auto") {
  const BackendSpec spec = parsed("^nccl,pinned-host");
  CHECK(spec.automatic);
  CHECK(spec.entries.empty());
  CHECK(spec.excluded == std::vector<std::string>{"nccl", "pinned-host"});
}

TEST_CASE("Loader.Spec.relative_path_is_rejected") {
  rejected("./x.so", "relative path");
  rejected("a/b", "relative path");
  rejected("fixture-good,plugins/libplexus-x.so", "relative path");
  rejected("../libplexus-x.so", "relative path");
}

TEST_CASE("Loader.Spec.empty_entry_is_rejected") {
  rejected("a,,b", "an entry is empty");
  rejected("a,", "an entry is empty");
  rejected(",a", "an entry is empty");
  rejected("^", "an entry is empty");
}

TEST_CASE("Loader.Spec.auto_inside_a_list_is_rejected") {
  rejected("auto,fixture-good", "'auto' cannot be part of a list");
  rejected("fixture-good,auto", "'auto' cannot be part of a list");
}

TEST_CASE("Loader.Spec.misplaced_caret_is_rejected") {
  rejected("fixture-good,^x", "'^' may only stand first");
  rejected("^a,^b", "'^' may only stand first");
  rejected("^/opt/x/libplexus-x.so", "'^' excludes names, not paths");
}

TEST_CASE("Loader.Spec.plugin_names_follow_the_rules") {
  using plexus::loader::is_valid_plugin_name;
  CHECK(is_valid_plugin_name("shm-native"));
  CHECK(is_valid_plugin_name("a"));
  CHECK(is_valid_plugin_name(std::string(31, 'x')));
  CHECK_FALSE(is_valid_plugin_name(std::string(32, 'x')));
  CHECK_FALSE(is_valid_plugin_name("Shm"));
  CHECK_FALSE(is_valid_plugin_name("-x"));
  CHECK_FALSE(is_valid_plugin_name("a_b"));
  CHECK_FALSE(is_valid_plugin_name(""));
  rejected("Shm-Native", "is not a plugin name");
  rejected("x.so", "is not a plugin name");
}
