#include "tools/plexus-bench-launch/contexts.hpp"

#include <cuda_runtime_api.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

#include "tools/plexus-bench-launch/common.hpp"

namespace plexus::bench_launch {
namespace {

constexpr size_t kBufferBytes = size_t{2} << 20;  // one buffer per GPU but 0, as an exchange block
constexpr int32_t kMaxExports = 15;
constexpr char kLaunch = 'L', kStop = 'S', kImport = 'I', kQuit = 'Q';  // one byte a command
constexpr char kAck = 'A', kFailed = 'F';

struct HelperProcess {
  pid_t pid = -1;
  int to = -1, from = -1;  // this process's ends of the two pipes
};
HelperProcess helper;

bool write_all(int fd, const void *data, size_t n) {
  const char *at = static_cast<const char *>(data);
  for (ssize_t w = 0; n > 0; at += w, n -= static_cast<size_t>(w))
    if ((w = write(fd, at, n)) <= 0) return false;
  return true;
}

// Waits at most 30 s for each piece: the helper may have died.
bool read_all(int fd, void *data, size_t n) {
  char *at = static_cast<char *>(data);
  for (ssize_t r = 0; n > 0; at += r, n -= static_cast<size_t>(r)) {
    pollfd ready{fd, POLLIN, 0};
    if (poll(&ready, 1, 30000) != 1 || (r = read(fd, at, n)) <= 0) return false;
  }
  return true;
}

bool command_waiting(int fd) {
  pollfd ready{fd, POLLIN, 0};
  return poll(&ready, 1, 0) == 1;
}

// In the helper: a buffer on every GPU but 0, and their legacy IPC
// handles sent to the parent (the count first; 0 when anything failed).
void export_buffers(int out) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
  std::vector<cudaIpcMemHandle_t> handles(static_cast<size_t>(std::clamp(count - 1, 0, kMaxExports)));
  for (size_t i = 0; i < handles.size(); ++i) {
    void *buffer = nullptr;
    if (!ok(cudaSetDevice(static_cast<int>(i) + 1), "helper: cudaSetDevice") ||
        !ok(cudaMalloc(&buffer, kBufferBytes), "helper: cudaMalloc") ||
        !ok(cudaIpcGetMemHandle(&handles[i], buffer), "helper: cudaIpcGetMemHandle"))
      handles.clear();
  }
  const int32_t n = static_cast<int32_t>(handles.size());
  if (write_all(out, &n, sizeof n)) (void)write_all(out, handles.data(), handles.size() * sizeof(cudaIpcMemHandle_t));
}

// In the helper: empty kernels on GPU 1, as another rank's calls, until
// the next command arrives.
void launch_until_told(int in) {
  cudaStream_t stream = nullptr;
  if (!ok(cudaSetDevice(1), "helper: cudaSetDevice") ||
      !ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "helper: cudaStreamCreate"))
    return;
  while (!command_waiting(in) && enqueue(Shape{128, 512, true}, 256, stream))
    (void)cudaStreamSynchronize(stream);
  (void)cudaStreamSynchronize(stream);
  (void)cudaStreamDestroy(stream);
}

// In the helper: the parent's buffer opened on GPU 1, as a peer rank
// opens this rank's exchange block.
bool import_parents(int in) {
  cudaIpcMemHandle_t handle{};
  void *base = nullptr;
  return read_all(in, &handle, sizeof handle) && ok(cudaSetDevice(1), "helper: cudaSetDevice") &&
         ok(cudaIpcOpenMemHandle(&base, handle, cudaIpcMemLazyEnablePeerAccess), "helper: cudaIpcOpenMemHandle");
}

[[noreturn]] void helper_main(int in, int out) {
  export_buffers(out);
  char command = 0;
  while (read(in, &command, 1) == 1 && command != kQuit) {
    if (command == kLaunch) launch_until_told(in);
    if (command == kStop) write_all(out, &kAck, 1);
    if (command == kImport) write_all(out, import_parents(in) ? &kAck : &kFailed, 1);
  }
  _exit(0);
}

void end_helper() {
  if (helper.pid < 0) return;
  write_all(helper.to, &kQuit, 1);
  close(helper.to), close(helper.from);
  int status = 0;
  waitpid(helper.pid, &status, 0);
  helper = HelperProcess{};
}

// This process's launches of empty kernels on GPU 0, in one state.
void time_state(std::FILE *csv, const char *state, cudaStream_t stream) {
  const std::string what = std::string("host_enqueue_") + state;
  for (const Shape &s : {Shape{1, 512, false}, Shape{128, 512, true}}) {
    enqueue(s, 100, stream), (void)cudaStreamSynchronize(stream);
    row(csv, what.c_str(), s, enqueue_us(s, 2000, stream));
  }
}

// The helper's buffers, opened here (as p2p-tree opens its peers' blocks).
bool open_imports(std::vector<void *> *opened) {
  int32_t n = 0;
  if (!read_all(helper.from, &n, sizeof n) || n < 1 || n > kMaxExports)
    return std::fprintf(stderr, "plexus-bench-launch: the helper exported no buffers (needs 2 GPUs)\n"), false;
  std::vector<cudaIpcMemHandle_t> handles(static_cast<size_t>(n));
  if (!read_all(helper.from, handles.data(), handles.size() * sizeof(cudaIpcMemHandle_t))) return false;
  for (const cudaIpcMemHandle_t &h : handles) {
    void *base = nullptr;
    if (!ok(cudaIpcOpenMemHandle(&base, h, cudaIpcMemLazyEnablePeerAccess), "cudaIpcOpenMemHandle")) return false;
    opened->push_back(base);
  }
  return true;
}

// A buffer of this process's own, exported and opened by the helper.
bool export_own(void **own) {
  cudaIpcMemHandle_t handle{};
  char ack = 0;
  return ok(cudaMalloc(own, kBufferBytes), "cudaMalloc") &&
         ok(cudaIpcGetMemHandle(&handle, *own), "cudaIpcGetMemHandle") &&
         write_all(helper.to, &kImport, 1) && write_all(helper.to, &handle, sizeof handle) &&
         read_all(helper.from, &ack, 1) && ack == kAck;
}

// The helper launching on GPU 1 while this process times its launches.
bool time_beside_launches(std::FILE *csv, cudaStream_t stream) {
  char ack = 0;
  if (!write_all(helper.to, &kLaunch, 1)) return false;
  usleep(20000);
  time_state(csv, "peer_launching", stream);
  return write_all(helper.to, &kStop, 1) && read_all(helper.from, &ack, 1) && ack == kAck;
}

// Host time per launch of 200 copies of `bytes` from buffers[0] to
// buffers[1] (median of 9 runs, each waited for); negative on an error.
double copies_enqueue_us(void *const *buffers, uint64_t bytes, cudaStream_t stream) {
  bool good = true;
  const double us = median_of(9, [&] {
    const auto start = Clock::now();
    for (int i = 0; good && i < 200; ++i)
      good = ok(kernels::probe::launch_copies(&buffers[0], &buffers[1], 1, bytes, 128, stream), "launch_copies");
    const double enqueue = us_since(start, 200);
    (void)cudaStreamSynchronize(stream);
    return enqueue;
  });
  return good ? us : -1;
}

// The host's cost of a launch that has work to do: a copy on GPU 0 of 16
// KiB (done before the next launch arrives) or 8 MiB (about 6 us, so the
// stream holds launches not yet run, as when a collective's kernel waits
// for its peers), 200 at a time as plexus-bench's samples.
bool time_pending(std::FILE *csv, cudaStream_t stream) {
  void *buffers[2] = {};
  bool good = ok(cudaMalloc(&buffers[0], 8 << 20), "cudaMalloc") && ok(cudaMalloc(&buffers[1], 8 << 20), "cudaMalloc");
  for (uint64_t bytes : {uint64_t{16} << 10, uint64_t{8} << 20}) {
    const double us = good ? copies_enqueue_us(buffers, bytes, stream) : -1;
    good = us >= 0;
    if (good) row(csv, fmt::format("host_enqueue_copy_{}k", bytes >> 10).c_str(), Shape{128, 512, false}, us);
  }
  for (void *b : buffers) (void)cudaFree(b);
  return good;
}

// What run_states made, released by launch_contexts.
struct StateResources {
  std::vector<void *> opened;  // the helper's buffers
  void *mapped = nullptr;      // host-mapped memory
  void *own = nullptr;         // this process's buffer, opened by the helper
};

// The states in turn, each keeping the ones before: host-mapped memory,
// peer access to every GPU, the helper's buffers opened, a buffer of this
// process opened by the helper, the helper busy.
bool run_states(std::FILE *csv, cudaStream_t stream, StateResources *r) {
  int count = 0;
  time_state(csv, "alone", stream);
  if (!time_pending(csv, stream)) return false;
  if (!ok(cudaHostAlloc(&r->mapped, 1 << 20, cudaHostAllocMapped | cudaHostAllocPortable), "cudaHostAlloc"))
    return false;
  time_state(csv, "host_mapped", stream);
  if (cudaGetDeviceCount(&count) != cudaSuccess || !enable_peers(0, count)) return false;
  time_state(csv, "peer_access", stream);
  if (!open_imports(&r->opened)) return false;
  time_state(csv, "ipc_imports", stream);
  if (!export_own(&r->own)) return false;
  time_state(csv, "ipc_exported", stream);
  return time_beside_launches(csv, stream);
}

}  // namespace

bool start_context_helper() {
  int down[2] = {-1, -1}, up[2] = {-1, -1};
  if (pipe(down) != 0) return std::perror("plexus-bench-launch: pipe"), false;
  if (pipe(up) != 0) return std::perror("plexus-bench-launch: pipe"), close(down[0]), close(down[1]), false;
  std::signal(SIGPIPE, SIG_IGN);  // a helper that died is a failed write, not the end of this process
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("plexus-bench-launch: fork");
    for (int fd : {down[0], down[1], up[0], up[1]}) close(fd);
    return false;
  }
  if (pid == 0) {
    close(down[1]), close(up[0]);
    helper_main(down[0], up[1]);
  }
  close(down[0]), close(up[1]);
  helper = HelperProcess{pid, down[1], up[0]};
  return true;
}

bool launch_contexts(std::FILE *csv) {
  cudaStream_t stream = nullptr;
  StateResources r;
  const bool good = ok(cudaSetDevice(0), "cudaSetDevice") &&
                    ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate") &&
                    run_states(csv, stream, &r);
  end_helper();  // first: it has our buffer open
  for (void *base : r.opened) (void)cudaIpcCloseMemHandle(base);
  if (r.own) (void)cudaFree(r.own);
  if (r.mapped) (void)cudaFreeHost(r.mapped);
  if (stream) (void)cudaStreamDestroy(stream);
  return good;
}

}  // namespace plexus::bench_launch
