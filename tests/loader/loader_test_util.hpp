// Helpers shared by the loader tests: the fixture folders meson passes in,
// scoped environment changes, reports as strings, and RAII backends and
// communicators so that a failed CHECK leaks nothing.
#pragma once

#include <doctest/doctest.h>

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plexus/plexus.h"

namespace plx_test {

// A variable meson's `env` sets for the test (FIXTURE_DIR, ...); fails the
// test case when it is missing.
std::string required_env(const char *name);
std::string fixture_dir();
// FIXTURE_DIR/libplexus-<file>.so
std::string fixture_path(const std::string &file);

// Sets (value) or unsets (nullopt) a variable until the end of the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char *name, std::optional<std::string> value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv &) = delete;
  ScopedEnv &operator=(const ScopedEnv &) = delete;

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

// A fresh empty folder under $TMPDIR, removed with what it holds at scope end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

// A child process for what needs a fresh process (logging is set up once)
// or other credentials. It gets the current environment with `overrides`;
// its stdout goes to `stdout_path` when given. `secure` drops its real uid to
// nobody (keeping euid 0) before exec, so the kernel runs it in secure-
// execution mode (AT_SECURE), as it would a set-uid program.
struct Child {
  int exit_code = -1;
  pid_t pid = -1;
};
Child run_child(std::vector<std::string> argv, const std::map<std::string, std::string> &overrides,
                const std::string &stdout_path = "", bool secure = false);
std::string read_file(const std::string &path);

bool has(const std::string &text, const std::string &word);
// Brackets and braces balance outside strings, and the text is one value.
bool json_balanced(const std::string &json);

std::string load_report(plx_backend_h backend, plx_format format);  // backend may be NULL
std::string plugins_description(plx_format format);
// plx_backend_open's status and message, with the report of the attempt.
struct OpenResult {
  plx_status status;
  std::string error, text, json;
};
OpenResult try_open(const char *spec);

// An open backend, closed at scope end.
struct Backend {
  explicit Backend(const char *spec);
  ~Backend();
  Backend(const Backend &) = delete;
  Backend &operator=(const Backend &) = delete;
  plx_backend_h handle = nullptr;
  plx_status status;
  std::string error;
};

// A 1-rank communicator on a backend, destroyed at scope end.
struct Comm {
  explicit Comm(plx_backend_h backend, const plx_comm_config *config = nullptr);
  ~Comm();
  Comm(const Comm &) = delete;
  Comm &operator=(const Comm &) = delete;
  plx_comm_h handle = nullptr;
  plx_status status;
  std::string error;
};

}  // namespace plx_test

// Checks that `call` fails with `want` and that plx_last_error() holds every
// word given after it.
#define CHECK_FAILS(call, want, ...)                                                   \
  do {                                                                                 \
    const plx_status got_ = (call);                                                    \
    const std::string error_ = plx_last_error();                                       \
    CHECK_MESSAGE(got_ == (want), #call " gave ", std::string(plx_status_string(got_)), \
                  ", not ", std::string(plx_status_string(want)), ": ", error_);       \
    for (const char *word_ : std::vector<const char *>{__VA_ARGS__})                   \
      CHECK_MESSAGE(plx_test::has(error_, word_), "'", std::string(word_),             \
                    "' is not in the message of " #call ": ", error_);                 \
  } while (0)

// Checks that `call` succeeds, showing the last error when it does not.
#define CHECK_OK(call)                                                                 \
  do {                                                                                 \
    const plx_status got_ = (call);                                                    \
    CHECK_MESSAGE(got_ == PLX_OK, #call " gave ", std::string(plx_status_string(got_)), \
                  ": ", std::string(plx_last_error()));                                \
  } while (0)
