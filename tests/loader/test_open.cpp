// plx_backend_open: the spec grammar as a caller meets it (PLX-L-1), the
// search (PLX-L-2), strictness (PLX-L-3), libraries that do not load
// (PLX-L-4), no unloading (PLX-L-9) and auto's order (PLX-L-11).
#include <dlfcn.h>

#include <fstream>
#include <sstream>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

std::string props_name(plx_backend_h b) {
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  return plx_backend_props_get(b, &props) == PLX_OK ? props.name : "";
}

// The words of the text report's "search path:" line.
std::vector<std::string> search_path_of(const std::string &text) {
  const std::string label = "search path:";
  const size_t at = text.find(label);
  std::istringstream line(text.substr(at + label.size(), text.find('\n', at) - at - label.size()));
  std::vector<std::string> dirs;
  for (std::string dir; line >> dir;) dirs.push_back(dir);
  return dirs;
}

}  // namespace

TEST_CASE("Loader.Open.unknown_name_lists_folders_and_plugins") {
  const OpenResult r = try_open("nonsense");
  CHECK(r.status == PLX_ERR_NOT_FOUND);
  for (const std::string &word : {fixture_dir(), std::string("searched: "), std::string("plugins available: "),
                                 std::string("fixture-good"), std::string("fixture-decline"),
                                 std::string("no libplexus-nonsense.so in the search path")})
    CHECK_MESSAGE(has(r.error, word), word, " is not in: ", r.error);
  ScopedEnv backend("PLEXUS_BACKEND", "nonsense");
  plx_backend_h b = nullptr;
  CHECK_FAILS(plx_backend_open(nullptr, &b), PLX_ERR_NOT_FOUND, "PLEXUS_BACKEND='nonsense'", "fixture-good");
  CHECK(b == nullptr);
}

TEST_CASE("Loader.Open.malformed_spec_shows_the_grammar") {
  const std::string abs_good = fixture_path("fixture-good");
  for (const std::string &spec : {std::string("./x.so"), std::string("a/b"), std::string("fixture-good,^x"),
                                 std::string("a,,b"), std::string("auto,fixture-good"), "^" + abs_good}) {
    const OpenResult r = try_open(spec.c_str());
    INFO("spec '", spec, "': ", r.error);
    CHECK(r.status == PLX_ERR_INVALID_ARGUMENT);
    CHECK(has(r.error, "The grammar"));
    CHECK(has(r.text, "result PLX_ERR_INVALID_ARGUMENT"));
  }
  CHECK(has(try_open("./x.so").error, "relative path"));
  ScopedEnv backend("PLEXUS_BACKEND", "a/b");
  plx_backend_h b = nullptr;
  CHECK_FAILS(plx_backend_open(nullptr, &b), PLX_ERR_INVALID_ARGUMENT, "PLEXUS_BACKEND='a/b'", "relative path");
}

TEST_CASE("Loader.Open.caret_and_auto_never_choose_a_third_party_plugin") {
  // The fixture folder holds no shipped plugin, so auto has nothing to try.
  for (const char *spec : {"^fixture-good", "auto", ""}) {
    const OpenResult r = try_open(spec);
    INFO("spec '", std::string(spec), "': ", r.error);
    CHECK(r.status == PLX_ERR_NOT_FOUND);
    CHECK(has(r.error, "no plugin was found that auto may choose"));
    CHECK_FALSE(has(r.text, "chosen"));
  }
}

TEST_CASE("Loader.Open.absolute_path_opens_that_library") {
  const std::string path = fixture_path("fixture-good");
  Backend b(path.c_str());
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  CHECK_OK(plx_backend_props_get(b.handle, &props));
  CHECK(std::string(props.name) == "fixture-good");
  CHECK(std::string(props.path) == path);
  CHECK(props.version_major == 1);
  CHECK(has(load_report(b.handle, PLX_FORMAT_TEXT), "(the spec argument='" + path + "')"));
}

TEST_CASE("Loader.Open.library_that_does_not_load_is_rejected_with_dlerror") {
  const std::string missing = fixture_dir() + "/libplexus-missing.so";
  OpenResult r = try_open(missing.c_str());
  CHECK(r.status == PLX_ERR_SYSTEM);
  CHECK(has(r.text, "rejected at dlopen (PLX_ERR_SYSTEM)"));
  CHECK(has(r.text, "No such file"));
  TempDir dir;
  const std::string junk = dir.path() + "/libplexus-junk.so";
  std::ofstream(junk) << std::string(200, '#') << "\nnot a shared object\n";
  r = try_open(junk.c_str());
  CHECK(r.status == PLX_ERR_SYSTEM);
  CHECK_MESSAGE(has(r.text, "ELF"), r.text);
  CHECK(has(r.json, "\"stage\":\"dlopen\""));
}

TEST_CASE("Loader.Open.list_moves_past_a_missing_name_and_a_decline") {
  Backend b("nonsense,fixture-decline,fixture-good");
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  CHECK(props_name(b.handle) == "fixture-good");
  const std::string text = load_report(b.handle, PLX_FORMAT_TEXT);
  INFO(text);
  CHECK(has(text, "rejected at search (PLX_ERR_NOT_FOUND): no libplexus-nonsense.so"));
  CHECK(has(text, "rejected at init (PLX_ERR_UNSUPPORTED): fixture-decline: no widget on this machine"));
  CHECK(has(text, "* fixture-good"));
  CHECK(has(text, "chose fixture-good 1.0.0 from " + fixture_path("fixture-good")));
}

TEST_CASE("Loader.Open.explicit_failure_is_never_a_fallback") {
  OpenResult r = try_open("fixture-initfail");
  CHECK(r.status == PLX_ERR_SYSTEM);
  CHECK(has(r.error, "cannot open /dev/fixture-widget"));
  CHECK(has(r.error, "plugins available: "));
  r = try_open("fixture-decline");
  CHECK(r.status == PLX_ERR_UNSUPPORTED);
  CHECK(has(r.error, "no widget on this machine"));
  // Only a decline moves on; an init that fails stops the list there.
  r = try_open("fixture-initfail,fixture-good");
  INFO(r.text);
  CHECK(r.status == PLX_ERR_SYSTEM);
  CHECK_FALSE(has(r.text, "chosen"));
  CHECK_FALSE(has(r.text, "libplexus-fixture-good.so"));
}

TEST_CASE("Loader.Open.plugin_path_replaces_the_default") {
  TempDir empty;
  {
    ScopedEnv path("PLEXUS_PLUGIN_PATH", empty.path());
    for (const char *spec : {"fixture-good", "auto"}) {
      const OpenResult r = try_open(spec);
      INFO("spec '", std::string(spec), "': ", r.error);
      CHECK(r.status == PLX_ERR_NOT_FOUND);
      CHECK(has(r.error, "searched: " + empty.path() + ";"));
      CHECK(has(r.error, "plugins available: none"));
    }
  }
  const std::string list = empty.path() + ":/nonexistent/plexus:" + fixture_dir();
  ScopedEnv path("PLEXUS_PLUGIN_PATH", list);
  const OpenResult r = try_open("fixture-good");
  CHECK_MESSAGE(r.status == PLX_OK, r.error);
  CHECK(search_path_of(r.text) == std::vector<std::string>{empty.path(), "/nonexistent/plexus", fixture_dir()});
}

TEST_CASE("Loader.Open.default_search_is_the_build_tree") {
  const std::string build_plugins = required_env("PLEXUS_BUILD_PLUGIN_DIR");
  ScopedEnv path("PLEXUS_PLUGIN_PATH", std::nullopt);
  const OpenResult r = try_open("fixture-good");
  INFO(r.text);
  CHECK(r.status == PLX_ERR_NOT_FOUND);  // fixtures are not on the default path
  for (const std::string &dir : search_path_of(r.text))
    CHECK_MESSAGE((dir == "(none)" || dir.rfind(build_plugins + "/", 0) == 0), dir);
}

TEST_CASE("Loader.Open.auto_follows_the_shipped_order") {
  ScopedEnv path("PLEXUS_PLUGIN_PATH", required_env("FIXTURE_AUTO_DIR"));
  ScopedEnv backend("PLEXUS_BACKEND", std::nullopt);
  for (const char *spec : {"auto", static_cast<const char *>(nullptr)}) {
    Backend b(spec);
    REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
    CHECK(props_name(b.handle) == "shm-native");
    const std::string text = load_report(b.handle, PLX_FORMAT_TEXT);
    INFO(text);
    CHECK(has(text, "p2p-tree"));
    CHECK(has(text, "rejected at init (PLX_ERR_UNSUPPORTED): p2p-tree: no widget on this machine"));
    CHECK(has(text, "* shm-native"));
    CHECK_FALSE(has(text, "fixture-third"));  // third parties only when named
  }
  OpenResult r = try_open("^shm-native");
  CHECK(r.status == PLX_ERR_UNSUPPORTED);
  CHECK(has(r.text, "excluded by '^' in the spec"));
  Backend p2p_excluded("^p2p-tree");
  CHECK(props_name(p2p_excluded.handle) == "shm-native");
  CHECK(has(load_report(p2p_excluded.handle, PLX_FORMAT_TEXT), "excluded by '^'"));
  Backend third("fixture-third");
  CHECK(props_name(third.handle) == "fixture-third");
}

TEST_CASE("Loader.Open.plugins_are_never_unloaded") {
  const std::string path = fixture_path("fixture-good");
  const char *name = nullptr;
  {
    Backend b("fixture-good");
    plx_backend_props props{};
    props.struct_size = sizeof(props);
    REQUIRE(plx_backend_props_get(b.handle, &props) == PLX_OK);
    name = props.name;  // the plugin's own static string
  }
  void *still = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  CHECK_MESSAGE(still != nullptr, path, " was unloaded by plx_backend_close");
  CHECK(std::string(name) == "fixture-good");
  if (still) dlclose(still);  // drops only the reference taken just now
}
