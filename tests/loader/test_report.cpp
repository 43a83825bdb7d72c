// What the loader checks before a plugin runs (PLX-L-5, PLX-L-6), the load
// report that records it (PLX-L-7), duplicates (PLX-L-10) and
// plx_plugins_describe.
#include <cstring>
#include <thread>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

struct Rejection {
  const char *file;
  const char *stage;
  plx_status status;
  const char *reason;
};

// Every fixture that must not win, with the reason the report must give.
const Rejection rejections[] = {
    {"fixture-noquery", "query", PLX_ERR_INCOMPATIBLE_ABI, "exports no plx_plugin_query symbol"},
    {"fixture-abi2", "query", PLX_ERR_INCOMPATIBLE_ABI, "fixture-abi2 speaks plugin ABI 2.0 only"},
    {"fixture-badanswer", "validate", PLX_ERR_INCOMPATIBLE_ABI, "the plugin speaks ABI 9.0, this loader 1.0"},
    {"fixture-noreq", "validate", PLX_ERR_INCOMPATIBLE_ABI, "the required slot 'collective' is NULL"},
    {"fixture-smallvt", "validate", PLX_ERR_INCOMPATIBLE_ABI, "the vtable is missing or smaller (96 bytes)"},
    {"fixture-vtskew", "validate", PLX_ERR_INCOMPATIBLE_ABI, "the vtable says ABI 2.0 but the plugin answered 1.0"},
    {"fixture-badname", "validate", PLX_ERR_INCOMPATIBLE_ABI,
     "calls itself 'someone-else' but its file says 'fixture-badname'"},
    {"fixture-initfail", "init", PLX_ERR_SYSTEM, "cannot open /dev/fixture-widget"},
    {"fixture-decline", "init", PLX_ERR_UNSUPPORTED, "no widget on this machine"},
};

void check_rejection(const Rejection &r, const std::string &text, const std::string &json) {
  INFO(std::string(r.file), "\n", text);
  CHECK(has(text, std::string("rejected at ") + r.stage + " (" + plx_status_string(r.status) + "): "));
  CHECK(has(text, r.reason));
  CHECK(has(text, fixture_path(r.file)));
  CHECK(has(json, std::string("\"stage\":\"") + r.stage + "\""));
  CHECK(has(json, std::string("\"status\":\"") + plx_status_string(r.status) + "\""));
  CHECK(has(json, r.reason));
  CHECK(json_balanced(json));
}

size_t count_of(const std::string &text, const std::string &word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("Loader.Report.each_fixture_is_rejected_with_its_own_reason") {
  for (const Rejection &r : rejections) {
    const OpenResult o = try_open(r.file);
    CHECK_MESSAGE(o.status == r.status, std::string(r.file), ": ", std::string(plx_status_string(o.status)), ": ", o.error);
    CHECK(has(o.error, r.reason));
    check_rejection(r, o.text, o.json);
  }
}

TEST_CASE("Loader.Report.one_open_records_every_candidate_and_the_winner") {
  std::string spec;
  for (const Rejection &r : rejections)
    if (r.status != PLX_ERR_SYSTEM) spec += std::string(r.file) + ",";  // an init failure stops the list
  spec += "fixture-good";
  Backend b(spec.c_str());
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  const std::string text = load_report(b.handle, PLX_FORMAT_TEXT);
  const std::string json = load_report(b.handle, PLX_FORMAT_JSON);
  for (const Rejection &r : rejections)
    if (r.status != PLX_ERR_SYSTEM) check_rejection(r, text, json);
  CHECK(has(text, "result PLX_OK"));
  CHECK(has(text, "* fixture-good"));
  CHECK(has(text, ": chosen"));
  CHECK(has(text, "v1.0.0 ABI 1.0"));
  CHECK(has(text, "chose fixture-good 1.0.0 from " + fixture_path("fixture-good")));
  CHECK(count_of(json, "\"chosen\":true") == 1);
  CHECK(has(json, "\"build_info\":\"loader test fixture, C99\""));
  CHECK(has(json, "\"search_path\":[\"" + fixture_dir() + "\"]"));
}

TEST_CASE("Loader.Report.failed_open_report_stays_on_its_thread") {
  CHECK(try_open("nonsense").status == PLX_ERR_NOT_FOUND);
  CHECK(has(load_report(nullptr, PLX_FORMAT_TEXT), "spec 'nonsense' (from the spec argument), result PLX_ERR_NOT_FOUND"));
  std::string other_error, other_report;
  std::thread other([&] {
    size_t needed = 0;
    CHECK(plx_load_report(nullptr, PLX_FORMAT_TEXT, nullptr, 0, &needed) == PLX_ERR_NOT_FOUND);
    other_error = plx_last_error();
    try_open("fixture-decline");
    other_report = load_report(nullptr, PLX_FORMAT_JSON);
  });
  other.join();
  CHECK(has(other_error, "this thread has not called plx_backend_open yet"));
  CHECK(has(other_report, "no widget on this machine"));
  CHECK_FALSE(has(other_report, "nonsense"));
  CHECK(has(load_report(nullptr, PLX_FORMAT_JSON), "\"spec\":\"nonsense\""));
}

TEST_CASE("Loader.Report.buffer_rules") {
  Backend b("fixture-good");
  REQUIRE(b.status == PLX_OK);
  const std::string full = load_report(b.handle, PLX_FORMAT_TEXT);
  size_t needed = 0;
  CHECK_OK(plx_load_report(b.handle, PLX_FORMAT_TEXT, nullptr, 0, &needed));
  CHECK(needed == full.size() + 1);
  char small[10];
  std::memset(small, 'x', sizeof(small));
  needed = 0;
  CHECK_OK(plx_load_report(b.handle, PLX_FORMAT_TEXT, small, sizeof(small), &needed));
  CHECK(needed == full.size() + 1);  // truncated: the caller compares
  CHECK(small[9] == '\0');
  CHECK(std::string(small) == full.substr(0, 9));
  CHECK_OK(plx_load_report(b.handle, PLX_FORMAT_TEXT, small, 1, nullptr));
  CHECK(small[0] == '\0');
  CHECK_FAILS(plx_load_report(b.handle, PLX_FORMAT_TEXT, nullptr, 5, &needed), PLX_ERR_INVALID_ARGUMENT, "buf is NULL");
  CHECK_FAILS(plx_load_report(b.handle, 7, small, sizeof(small), &needed), PLX_ERR_INVALID_ARGUMENT, "format 7");
  CHECK_FAILS(plx_plugins_describe(7, small, sizeof(small), &needed), PLX_ERR_INVALID_ARGUMENT, "format 7");
  CHECK_OK(plx_plugins_describe(PLX_FORMAT_JSON, nullptr, 0, &needed));
  CHECK(needed > 100);
}

TEST_CASE("Loader.Report.duplicates_highest_version_wins") {
  const std::string a = required_env("FIXTURE_DUP_A"), b = required_env("FIXTURE_DUP_B");
  for (const std::string &path : {a + ":" + b, b + ":" + a}) {
    ScopedEnv env("PLEXUS_PLUGIN_PATH", path);
    Backend dup("fixture-dup");
    REQUIRE_MESSAGE(dup.status == PLX_OK, dup.error);
    plx_backend_props props{};
    props.struct_size = sizeof(props);
    CHECK_OK(plx_backend_props_get(dup.handle, &props));
    CHECK(props.version_major == 2);
    CHECK(std::string(props.path) == b + "/libplexus-fixture-dup.so");
    const std::string text = load_report(dup.handle, PLX_FORMAT_TEXT);
    INFO(text);
    CHECK(has(text, a + "/libplexus-fixture-dup.so v1.0.0 ABI 1.0: rejected at search (PLX_ERR_INVALID_USAGE): "
                    "duplicate name 'fixture-dup'"));
    CHECK(has(load_report(dup.handle, PLX_FORMAT_JSON), "\"status\":\"PLX_ERR_INVALID_USAGE\""));
  }
}

TEST_CASE("Loader.Report.duplicates_tie_goes_to_the_first_searched") {
  const std::string b = required_env("FIXTURE_DUP_B"), c = required_env("FIXTURE_DUP_C");
  for (const auto &[first, second] : {std::pair{b, c}, std::pair{c, b}}) {
    ScopedEnv env("PLEXUS_PLUGIN_PATH", first + ":" + second);
    Backend dup("fixture-dup");
    REQUIRE_MESSAGE(dup.status == PLX_OK, dup.error);
    const std::string text = load_report(dup.handle, PLX_FORMAT_TEXT);
    INFO(text);
    CHECK(has(text, "from " + first + "/libplexus-fixture-dup.so"));
    CHECK(has(text, second + "/libplexus-fixture-dup.so v2.0.0 ABI 1.0: rejected at search"));
  }
}

TEST_CASE("Loader.Report.describe_lists_every_fixture_with_params_and_reasons") {
  ScopedEnv greeting("PLEXUS_FIXTURE_GOOD_GREETING", "bonjour");
  const std::string text = plugins_description(PLX_FORMAT_TEXT);
  const std::string json = plugins_description(PLX_FORMAT_JSON);
  INFO(text);
  for (const char *file : {"fixture-good", "fixture-sticky", "fixture-single", "fixture-nullslots",
                           "fixture-oldminor", "fixture-initfail", "fixture-decline"})
    CHECK(has(text, fixture_path(file)));
  for (const Rejection &r : rejections) {
    if (std::strcmp(r.stage, "init") == 0) continue;  // describing runs no init
    CHECK(has(text, fixture_path(r.file) + "\n    unusable: "));
    CHECK(has(text, r.reason));
    CHECK(has(json, r.reason));
  }
  CHECK(has(text, "PLEXUS_FIXTURE_GOOD_GREETING (default hello): "));
  CHECK(has(text, "PLEXUS_FIXTURE_GOOD_SLOTS (default 16): "));
  CHECK(has(text, "PLEXUS_FIXTURE_SINGLE_SLOTS"));
  CHECK(json_balanced(json));
  CHECK(has(json, "{\"name\":\"PLEXUS_FIXTURE_GOOD_GREETING\",\"type\":\"string\",\"default\":\"hello\","
                  "\"value\":\"bonjour\""));
  CHECK(has(json, "\"usable\":false"));
  CHECK(has(json, "\"threading\":\"single\""));
  CHECK(has(json, "\"name\":\"PLEXUS_TIMEOUT_MS\""));
}

TEST_CASE("Loader.Report.json_check_catches_broken_json") {
  CHECK(json_balanced("{\"a\":[1,{\"b\":\"}\"}]}"));
  CHECK_FALSE(json_balanced("{\"a\":[1}"));
  CHECK_FALSE(json_balanced("{\"a\":\"open}"));
  CHECK_FALSE(json_balanced("{}}"));
  CHECK_FALSE(json_balanced(""));
}
