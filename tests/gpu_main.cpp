// The main of every GPU test: without a usable CUDA device the whole
// executable reports itself skipped (exit 77, which meson counts as SKIP),
// never passed and never failed. With a device, cases that need more than
// this machine has call skip_case (gpu_skip.hpp): if every case that ran
// did, the executable is skipped too (one GPU, two-GPU tests only).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <set>
#include <string>

#include "core/cuda_status.hpp"
#include "core/status.hpp"
#include "tests/gpu_skip.hpp"

namespace {

struct SkipRecord {
  int cases_run = 0;
  std::string current_case, reason;
  std::set<std::string> skipped;
};
SkipRecord record;

// Counts the test cases that run and remembers which one is running.
struct CaseCounter : doctest::IReporter {
  explicit CaseCounter(const doctest::ContextOptions &) {}
  void test_case_start(const doctest::TestCaseData &tc) override {
    ++record.cases_run;
    record.current_case = tc.m_name;
  }
  void report_query(const doctest::QueryData &) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats &) override {}
  void test_case_reenter(const doctest::TestCaseData &) override {}
  void test_case_end(const doctest::CurrentTestCaseStats &) override {}
  void test_case_exception(const doctest::TestCaseException &) override {}
  void subcase_start(const doctest::SubcaseSignature &) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData &) override {}
  void log_message(const doctest::MessageData &) override {}
  void test_case_skipped(const doctest::TestCaseData &) override {}
};
REGISTER_LISTENER("gpu_case_counter", 1, CaseCounter);

}  // namespace

void plexus::test::skip_case(const std::string &why) {
  MESSAGE("skipped: ", why);
  record.skipped.insert(record.current_case);
  record.reason = why;
}

int main(int argc, char **argv) {
  int devices = 0;
  if (plexus::core::require_cuda_device(&devices) != PLX_OK) {
    std::printf("SKIP: %s\n", plexus::core::last_message().c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || record.skipped.empty()) return result;
  const int skipped = static_cast<int>(record.skipped.size());
  std::printf("skipped: %d of %d test cases (last: %s)\n", skipped, record.cases_run, record.reason.c_str());
  if (result == 0 && skipped == record.cases_run) return std::printf("SKIP: every case skipped\n"), 77;
  return result;
}
