// Logging (PLX-L-16), the failed-open warning with its report (PLX-L-7),
// the warnings for plugin folders and files others may write (PLX-L-2) and
// secure_getenv (PLX-L-17).
// The log sink is set up once per process, so each case runs a small host
// (log_helper.c, secure_helper.c) in a child with its own environment.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

Child run_helper(const std::string &spec, const std::map<std::string, std::string> &overrides) {
  return run_child({required_env("LOADER_LOG_HELPER"), spec}, overrides);
}

// The child's log file, named by the %p pattern after its pid.
std::string child_log(const TempDir &dir, const Child &run) {
  return read_file(dir.path() + "/log-" + std::to_string(run.pid) + ".txt");
}

std::map<std::string, std::string> logging(const TempDir &dir, const char *level) {
  return {{"PLEXUS_LOG_LEVEL", level}, {"PLEXUS_LOG_FILE", dir.path() + "/log-%p.txt"},
          {"PLEXUS_PLUGIN_PATH", fixture_dir()}};
}

}  // namespace

TEST_CASE("Loader.Log.info_level_logs_the_choice_and_the_plugin") {
  TempDir dir;
  const Child run = run_helper("fixture-good", logging(dir, "info"));
  CHECK(run.exit_code == 0);
  const std::string log = child_log(dir, run);
  INFO(log);
  CHECK(has(log, "chose fixture-good 1.0.0 from " + fixture_path("fixture-good")));
  CHECK(has(log, "pid " + std::to_string(run.pid) + " loader info]"));
  CHECK(has(log, "fixture-good info] init: greeting 'hello'"));  // through services->log
}

TEST_CASE("Loader.Log.error_level_logs_nothing_here") {
  TempDir dir;
  Child run = run_helper("fixture-good", logging(dir, "error"));
  CHECK(run.exit_code == 0);
  CHECK(child_log(dir, run).empty());
  run = run_helper("nonsense", logging(dir, "error"));  // a warning, below the level
  CHECK(run.exit_code == 1);
  CHECK(child_log(dir, run).empty());
}

TEST_CASE("Loader.Log.failed_explicit_open_warns_with_the_report") {
  TempDir dir;
  const Child run = run_helper("fixture-initfail", logging(dir, "warn"));
  CHECK(run.exit_code == 1);
  const std::string log = child_log(dir, run);
  INFO(log);
  CHECK(has(log, "loader warn] backend 'fixture-initfail' could not be opened"));
  CHECK(has(log, "plexus load report: spec 'fixture-initfail'"));
  CHECK(has(log, "rejected at init (PLX_ERR_SYSTEM)"));
  CHECK_FALSE(has(log, " info]"));
}

TEST_CASE("Loader.Log.host_name_pattern") {
  TempDir dir;
  std::map<std::string, std::string> env = logging(dir, "info");
  env["PLEXUS_LOG_FILE"] = dir.path() + "/log-%h.txt";
  CHECK(run_helper("fixture-good", env).exit_code == 0);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  CHECK(has(read_file(dir.path() + "/log-" + host + ".txt"), "chose fixture-good"));
}

TEST_CASE("Loader.Log.world_writable_plugin_folder_warns") {
  TempDir dir, open_dir;
  std::filesystem::copy_file(fixture_path("fixture-good"), open_dir.path() + "/libplexus-fixture-good.so");
  REQUIRE(chmod(open_dir.path().c_str(), 0777) == 0);
  std::map<std::string, std::string> env = logging(dir, "warn");
  env["PLEXUS_PLUGIN_PATH"] = open_dir.path();
  const Child run = run_helper("fixture-good", env);
  CHECK(run.exit_code == 0);
  CHECK(has(child_log(dir, run), "plugin folder " + open_dir.path() + " is writable by every user"));
  // Sticky, like /tmp: others cannot replace the plugin there, but can add
  // one of their own, which a search would load.
  REQUIRE(chmod(open_dir.path().c_str(), 01777) == 0);
  const Child sticky = run_helper("fixture-good", env);
  CHECK(has(child_log(dir, sticky), "plugin folder " + open_dir.path() + " is writable by every user"));
  CHECK(has(child_log(dir, sticky), "the sticky bit does not stop adding one"));
}

TEST_CASE("Loader.Log.plugin_file_writable_by_others_warns") {
  TempDir dir, plugin_dir;
  const std::string file = plugin_dir.path() + "/libplexus-fixture-good.so";
  std::filesystem::copy_file(fixture_path("fixture-good"), file);
  REQUIRE(chmod(file.c_str(), 0666) == 0);
  std::map<std::string, std::string> env = logging(dir, "warn");
  env["PLEXUS_PLUGIN_PATH"] = plugin_dir.path();
  const Child run = run_helper("fixture-good", env);
  CHECK(run.exit_code == 0);
  CHECK(has(child_log(dir, run), "plugin file " + file + " is writable by every user"));
  CHECK_FALSE(has(child_log(dir, run), "plugin folder"));
  // Named by absolute path in a sticky folder everyone writes: the file
  // cannot be swapped and nothing is searched there, so only a writable
  // file would matter.
  REQUIRE(chmod(file.c_str(), 0755) == 0);
  REQUIRE(chmod(plugin_dir.path().c_str(), 01777) == 0);
  env["PLEXUS_PLUGIN_PATH"] = fixture_dir();
  const Child named = run_helper(file, env);
  CHECK(named.exit_code == 0);
  CHECK_FALSE(has(child_log(dir, named), "writable by every user"));
  REQUIRE(chmod(plugin_dir.path().c_str(), 0777) == 0);  // not sticky: anyone could swap the file
  const Child swappable = run_helper(file, env);
  CHECK(has(child_log(dir, swappable), "plugin folder " + plugin_dir.path() + " is writable by every user"));
}

TEST_CASE("Loader.Log.path_variables_are_ignored_in_secure_execution") {
  if (geteuid() != 0) {
    MESSAGE("skipped: making a secure-execution (set-uid like) child needs root");
    return;
  }
  TempDir dir;
  const std::map<std::string, std::string> env = {
      {"PLEXUS_BACKEND", "nonsense"}, {"PLEXUS_PLUGIN_PATH", fixture_dir()},
      {"PLEXUS_LOG_FILE", dir.path() + "/secure-log.txt"}, {"PLEXUS_LOG_LEVEL", "error"}};
  const std::vector<std::string> argv = {required_env("LOADER_SECURE_HELPER"), required_env("PLEXUS_LIB")};
  // The same run as an ordinary process reads all three variables...
  CHECK(run_child(argv, env, dir.path() + "/plain.txt").exit_code == 0);
  const std::string plain = read_file(dir.path() + "/plain.txt");
  CHECK_MESSAGE(has(plain, "spec 'nonsense' (from PLEXUS_BACKEND)"), plain);
  CHECK(has(plain, "search path: " + fixture_dir()));
  CHECK(std::filesystem::exists(dir.path() + "/secure-log.txt"));
  std::filesystem::remove(dir.path() + "/secure-log.txt");
  // ...and as a set-uid-like one, none of them.
  CHECK(run_child(argv, env, dir.path() + "/secure.txt", true).exit_code == 0);
  const std::string secure = read_file(dir.path() + "/secure.txt");
  CHECK_MESSAGE(has(secure, "spec 'auto' (from the default)"), secure);
  CHECK_FALSE(has(secure, fixture_dir()));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/secure-log.txt"));
}
