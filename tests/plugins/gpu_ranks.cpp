#include "tests/plugins/gpu_ranks.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "tests/gpu_skip.hpp"

extern char **environ;

namespace plexus::test {
namespace {

const char *const role_var = "PLEXUS_GPU_TEST_RANK";
const char *const id_var = "PLEXUS_GPU_TEST_ID";
const char *const fresh_var = "PLEXUS_GPU_TEST_FRESH";

std::string to_hex(const plx_unique_id &id) {
  std::string out;
  char byte[3];
  for (uint8_t b : id.bytes) {
    std::snprintf(byte, sizeof(byte), "%02x", b);
    out += byte;
  }
  return out;
}

bool from_hex(const char *text, plx_unique_id *id) {
  if (text == nullptr || std::strlen(text) != 2 * sizeof(id->bytes)) return false;
  for (size_t i = 0; i < sizeof(id->bytes); ++i) {
    unsigned v = 0;
    if (std::sscanf(text + 2 * i, "%2x", &v) != 1) return false;
    id->bytes[i] = static_cast<uint8_t>(v);
  }
  return true;
}

bool starts_with(const char *text, const char *prefix) { return std::strncmp(text, prefix, std::strlen(prefix)) == 0; }

// This binary again, only test_case selected, with the environment less the
// test roles and plus `extra` ("NAME=value" entries).
pid_t spawn_case(const char *test_case, const std::vector<std::string> &extra) {
  std::vector<std::string> env_text;
  for (char **e = environ; *e; ++e)
    if (!starts_with(*e, role_var) && !starts_with(*e, id_var) && !starts_with(*e, fresh_var))
      env_text.emplace_back(*e);
  env_text.insert(env_text.end(), extra.begin(), extra.end());
  std::vector<char *> envp;
  for (std::string &e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string filter = std::string("--test-case=") + test_case;
  std::string exe = "/proc/self/exe";
  char *argv[] = {exe.data(), filter.data(), nullptr};
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()) == 0);
  return pid;
}

pid_t spawn_rank(const char *test_case, int rank, const plx_unique_id &id) {
  return spawn_case(test_case, {std::string(role_var) + "=" + std::to_string(rank),
                                std::string(id_var) + "=" + to_hex(id)});
}

// Exit code of a child, or -1 after killing it when it outlives the bound.
int reap(pid_t pid, std::chrono::seconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int cuda_devices() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

void run_in_fresh_process(const char *test_case, const std::function<void()> &body) {
  if (std::getenv(fresh_var) != nullptr) {  // the child
    body();
    return;
  }
  const int exit_code = reap(spawn_case(test_case, {std::string(fresh_var) + "=1"}), std::chrono::seconds(120));
  if (exit_code == 77) {
    skip_case("the fresh process skipped every case (its output is above)");
    return;
  }
  const std::string name = test_case;
  INFO("the fresh process running ", name, " failed; its doctest output is above");
  CHECK(exit_code == 0);
}

plx_comm_h join(plx_backend_h backend, const plx_unique_id &id, int nranks, int rank, int timeout_ms,
                int init_timeout_ms) {
  plx_comm_config config = PLX_COMM_CONFIG_INIT;
  config.cuda_device = rank % cuda_devices();
  REQUIRE(cudaSetDevice(config.cuda_device) == cudaSuccess);  // the rank's buffers go there too
  config.timeout_ms = timeout_ms;
  config.init_timeout_ms = init_timeout_ms;
  plx_comm_h comm = nullptr;
  const plx_status s = plx_comm_init(backend, &id, nranks, rank, &config, &comm);
  const std::string error = plx_last_error();
  INFO("rank ", rank, ": ", error);
  REQUIRE(s == PLX_OK);
  return comm;
}

void run_gpu_ranks(const char *backend_spec, const char *test_case, int nranks,
                   const std::function<void(plx_backend_h, const plx_unique_id &, int)> &body,
                   int killed_rank, bool skip_when_declined) {
  plx_backend_h backend = nullptr;
  const plx_status opened = plx_backend_open(backend_spec, &backend);
  if (opened == PLX_ERR_UNSUPPORTED && skip_when_declined) {  // e.g. GPUs without peer access
    skip_case(std::string(backend_spec) + " declined this machine: " + plx_last_error());
    return;
  }
  const std::string spec = backend_spec, open_error = plx_last_error();  // INFO keeps references: named values
  INFO("plx_backend_open(", spec, "): ", open_error);
  REQUIRE(opened == PLX_OK);
  plx_unique_id id{};
  if (const char *role = std::getenv(role_var)) {  // a child: one rank
    REQUIRE(from_hex(std::getenv(id_var), &id));
    body(backend, id, std::atoi(role));
    CHECK(plx_backend_close(backend) == PLX_OK);
    return;
  }
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  std::vector<pid_t> children;
  for (int r = 1; r < nranks; ++r) children.push_back(spawn_rank(test_case, r, id));
  try {
    body(backend, id, 0);
  } catch (...) {
    for (pid_t pid : children) reap(pid, std::chrono::seconds(120));
    throw;
  }
  for (size_t i = 0; i < children.size(); ++i) {
    INFO("rank ", i + 1, " (a child process) failed; its doctest output is above");
    const int want = static_cast<int>(i) + 1 == killed_rank ? 128 + SIGKILL : 0;
    CHECK(reap(children[i], std::chrono::seconds(120)) == want);
  }
  CHECK(plx_backend_close(backend) == PLX_OK);
}

}  // namespace plexus::test
