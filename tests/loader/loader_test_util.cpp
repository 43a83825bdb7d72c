#include "loader_test_util.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char **environ;

namespace plx_test {

std::string required_env(const char *name) {
  const char *value = std::getenv(name);
  REQUIRE_MESSAGE(value != nullptr, std::string(name), " is not set: run the test through meson test");
  return value;
}

std::string fixture_dir() { return required_env("FIXTURE_DIR"); }
std::string fixture_path(const std::string &file) { return fixture_dir() + "/libplexus-" + file + ".so"; }

ScopedEnv::ScopedEnv(const char *name, std::optional<std::string> value) : name_(name) {
  if (const char *old = std::getenv(name)) saved_ = old;
  if (value) setenv(name, value->c_str(), 1);
  else unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (saved_) setenv(name_.c_str(), saved_->c_str(), 1);
  else unsetenv(name_.c_str());
}

TempDir::TempDir() {
  const char *base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/plexus-loader-test-XXXXXX";
  REQUIRE(mkdtemp(pattern.data()) != nullptr);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
  std::filesystem::remove_all(path_, ignored);
}

namespace {

std::vector<std::string> environment_with(const std::map<std::string, std::string> &overrides) {
  std::vector<std::string> env;
  for (char **e = environ; *e; ++e) {
    const std::string entry = *e;
    if (!overrides.count(entry.substr(0, entry.find('=')))) env.push_back(entry);
  }
  for (const auto &[name, value] : overrides) env.push_back(name + "=" + value);
  return env;
}

std::vector<char *> pointers(std::vector<std::string> &strings) {
  std::vector<char *> out;
  for (std::string &s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Between fork and exec only async-signal-safe calls.
[[noreturn]] void exec_child(char **argv, char **envp, const char *stdout_path, bool secure) {
  if (secure && setresuid(65534, 0, 0) != 0) _exit(126);
  if (*stdout_path) {
    const int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
  }
  execve(argv[0], argv, envp);
  _exit(127);
}

}  // namespace

Child run_child(std::vector<std::string> argv, const std::map<std::string, std::string> &overrides,
                const std::string &stdout_path, bool secure) {
  std::vector<std::string> env = environment_with(overrides);
  std::vector<char *> argp = pointers(argv), envp = pointers(env);
  Child child;
  child.pid = fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) exec_child(argp.data(), envp.data(), stdout_path.c_str(), secure);
  int status = 0;
  REQUIRE(waitpid(child.pid, &status, 0) == child.pid);
  child.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return child;
}

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool has(const std::string &text, const std::string &word) { return text.find(word) != std::string::npos; }

bool json_balanced(const std::string &json) {
  std::string open;
  bool in_string = false, escaped = false;
  for (const char c : json) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      else if (static_cast<unsigned char>(c) < 0x20) return false;  // raw control characters
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      open += c;
    } else if (c == '}' || c == ']') {
      if (open.empty() || open.back() != (c == '}' ? '{' : '[')) return false;
      open.pop_back();
    }
  }
  return !in_string && open.empty() && !json.empty() && json.front() == '{' && json.back() == '}';
}

namespace {

template <typename Fn>
std::string read_buffer(Fn fn) {
  size_t needed = 0;
  if (fn(nullptr, 0, &needed) != PLX_OK) return "";
  std::string text(needed, '\0');
  if (fn(text.data(), text.size(), &needed) != PLX_OK) return "";
  text.resize(needed - 1);
  return text;
}

}  // namespace

std::string load_report(plx_backend_h backend, plx_format format) {
  return read_buffer([&](char *buf, size_t cap, size_t *needed) {
    return plx_load_report(backend, format, buf, cap, needed);
  });
}

std::string plugins_description(plx_format format) {
  return read_buffer([&](char *buf, size_t cap, size_t *needed) {
    return plx_plugins_describe(format, buf, cap, needed);
  });
}

OpenResult try_open(const char *spec) {
  OpenResult r;
  plx_backend_h b = nullptr;
  r.status = plx_backend_open(spec, &b);
  r.error = r.status == PLX_OK ? "" : plx_last_error();
  r.text = load_report(b, PLX_FORMAT_TEXT);
  r.json = load_report(b, PLX_FORMAT_JSON);
  if (b) plx_backend_close(b);
  return r;
}

Backend::Backend(const char *spec) {
  status = plx_backend_open(spec, &handle);
  if (status != PLX_OK) error = plx_last_error();
}

Backend::~Backend() {
  if (handle) plx_backend_close(handle);
}

Comm::Comm(plx_backend_h backend, const plx_comm_config *config) {
  plx_unique_id id{};
  status = plx_get_unique_id(backend, &id);
  if (status == PLX_OK) status = plx_comm_init(backend, &id, 1, 0, config, &handle);
  if (status != PLX_OK) error = plx_last_error();
}

Comm::~Comm() {
  if (handle) plx_comm_destroy(handle);
}

}  // namespace plx_test
