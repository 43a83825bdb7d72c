#include "comm.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include "host.hpp"

namespace example_shm {
namespace {

constexpr uint64_t kMagic = 0x6578'7368'6d76'3031;  // "exshmv01": layout version 1
constexpr char kIdTag[8] = "exshm1";
constexpr size_t kLine = 64;
constexpr size_t kFailureTextBytes = 256;
// Reading /proc for every missing peer on every poll would cost more than
// the wait itself; a dead peer is noticed within this interval instead.
constexpr int64_t kPeerCheckNs = 5'000'000;
enum : uint32_t { kEmpty = 0, kClaiming = 1, kJoined = 2, kLeft = 3 };

int64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1'000'000'000ll + t.tv_nsec;
}

// A negative timeout waits forever, as plx_comm_config says.
int64_t deadline_after(int32_t timeout_ms) {
  return timeout_ms < 0 ? INT64_MAX : now_ns() + timeout_ms * 1'000'000ll;
}

// The shared words are plain integers in the mapped segment; atomic_ref
// makes every cross-rank access atomic while the layout stays a plain
// struct that any process can map.
template <typename T>
std::atomic_ref<T> word(T &w) {
  static_assert(std::atomic_ref<T>::is_always_lock_free, "shared words must be lock-free");
  return std::atomic_ref<T>(w);
}

// Spins briefly for the fast case (every rank on a core of its own), then
// naps with growing sleeps, so that more ranks than cores still progress.
class Backoff {
 public:
  void pause() {
    if (spins_++ < 200) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      return;
    }
    const timespec nap{0, nap_ns_};
    nanosleep(&nap, nullptr);
    nap_ns_ = std::min(nap_ns_ * 2, 200'000l);
  }

 private:
  int spins_ = 0;
  long nap_ns_ = 1'000;
};

// Fields 3 (state) and 22 (start time) of /proc/<pid>/stat; false when
// unreadable. The command (field 2) may hold spaces, so counting starts
// after its last ')'.
bool read_stat(int32_t pid, char *state, uint64_t *start_time) {
  char path[48], text[1024];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t got = read(fd, text, sizeof(text) - 1);
  close(fd);
  text[got > 0 ? got : 0] = '\0';
  const char *p = std::strrchr(text, ')');
  if (p == nullptr || p[1] != ' ') return false;
  *state = p[2];
  p += 2;
  for (int field = 3; field < 22 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  return p != nullptr && std::sscanf(p + 1, "%llu", reinterpret_cast<unsigned long long *>(start_time)) == 1;
}

// kill(pid, 0) alone calls a zombie (a killed rank its parent has not yet
// reaped) or a new process that reused the pid alive; the state and the
// start time tell them apart.
bool process_alive(int32_t pid, uint64_t start_time) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  char state = '?';
  uint64_t started = 0;
  if (!read_stat(pid, &state, &started)) return true;  // no /proc: kill() is all we have
  return state != 'Z' && state != 'X' && (start_time == 0 || started == start_time);
}

}  // namespace

struct alignas(kLine) Header {
  uint64_t magic;  // 0 until rank 0 has filled in the rest (release)
  uint64_t nonce;
  int32_t nranks;
  int32_t creator_pid;
  uint64_t slot_bytes;  // rank 0's; every rank uses it, whatever its own environment says
  alignas(kLine) uint64_t failure;  // 0, or poster rank << 32 | its status; the first post wins
  uint32_t failure_ready;           // failure_text is complete (release)
  char failure_text[kFailureTextBytes];
};

struct alignas(kLine) RankLine {
  uint32_t state;  // kJoined publishes pid and start_time (release)
  int32_t pid;
  uint64_t start_time;
  alignas(kLine) uint64_t epoch;  // the last barrier reached; polled by all, so a line of its own
  alignas(kLine) unsigned char mailbox[Comm::kMailboxBytes];
};

namespace {

size_t layout_bytes(int32_t nranks, size_t slot_bytes) {
  return sizeof(Header) + static_cast<size_t>(nranks) * (sizeof(RankLine) + slot_bytes);
}

// Sizes and maps a segment this rank just created; the pages are taken
// now, so a full /dev/shm is an error here, not a SIGBUS in a collective.
void *map_new(int fd, size_t bytes, int *error) {
  *error = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (*error != 0) return MAP_FAILED;
  void *base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  *error = errno;
  return base;
}

}  // namespace

plx_status make_unique_id(UniqueId *id) {
  uint64_t random[2];
  if (getrandom(random, sizeof(random), 0) != static_cast<ssize_t>(sizeof(random)))
    return fail(PLX_ERR_SYSTEM, "getrandom: %s", std::strerror(errno));
  *id = {};
  std::memcpy(id->tag, kIdTag, sizeof(kIdTag));
  // The pid in the name lets a leak checker tell whose name it is.
  std::snprintf(id->name, sizeof(id->name), "/plexus-%s-%d-%016llx", kName, static_cast<int>(getpid()),
                static_cast<unsigned long long>(random[0]));
  id->nonce = random[1];
  return PLX_OK;
}

Comm::Comm(int32_t nranks, int32_t rank, int32_t timeout_ms)
    : nranks_(nranks), rank_(rank), timeout_ms_(timeout_ms) {}

Comm::~Comm() {
  // Thread ranks of this process judge each other by this word.
  if (claimed_) word(lines_[rank_].state).store(kLeft, std::memory_order_release);
  if (base_ != nullptr) munmap(base_, bytes_);
}

plx_status Comm::join(const UniqueId &id, int32_t nranks, int32_t rank, int32_t init_timeout_ms,
                      int32_t timeout_ms, Comm **out) {
  if (std::memcmp(id.tag, kIdTag, sizeof(kIdTag)) != 0 || std::memchr(id.name, '\0', sizeof(id.name)) == nullptr)
    return fail(PLX_ERR_INVALID_ARGUMENT, "the unique id was not made by this plugin");
  std::unique_ptr<Comm> c(new Comm(nranks, rank, timeout_ms));
  const int64_t deadline = deadline_after(init_timeout_ms);
  plx_status s = rank == 0 ? c->create(id, deadline) : c->attach(id, deadline);
  if (s == PLX_OK) s = c->claim();
  if (s == PLX_OK) s = c->wait_for(1, init_timeout_ms);
  // Once all have mapped it nobody needs the name, and after a failure
  // nobody should find it: every rank removes it either way.
  if (c->base_ != nullptr) shm_unlink(id.name);
  if (s != PLX_OK) return s;
  c->epoch_ = 1;
  *out = c.release();
  return PLX_OK;
}

void Comm::map_layout(void *base, size_t bytes) {
  base_ = base, bytes_ = bytes;
  header_ = static_cast<Header *>(base);
  lines_ = reinterpret_cast<RankLine *>(header_ + 1);
  data_ = reinterpret_cast<unsigned char *>(lines_ + nranks_);
}

plx_status Comm::create(const UniqueId &id, int64_t deadline) {
  const int fd = shm_open(id.name, O_CREAT | O_EXCL | O_RDWR, 0600);
  // Someone else made it as rank 0 too; claim() will say so to both.
  if (fd < 0 && errno == EEXIST) return attach(id, deadline);
  if (fd < 0) return fail(PLX_ERR_SYSTEM, "shm_open %s: %s", id.name, std::strerror(errno));
  // Rounded to whole pages, so that every slot starts on a cache line.
  slot_bytes_ = (param_bytes("SLOT_BYTES", 1 << 20, 4096, 1ull << 30) + 4095) & ~size_t{4095};
  const size_t bytes = layout_bytes(nranks_, slot_bytes_);
  int error = 0;
  void *base = map_new(fd, bytes, &error);
  close(fd);
  if (base == MAP_FAILED) {
    shm_unlink(id.name);
    return fail(PLX_ERR_SYSTEM, "cannot map %zu bytes of shared memory (%s): %s; see df /dev/shm", bytes, id.name,
                std::strerror(error));
  }
  map_layout(base, bytes);
  header_->nonce = id.nonce, header_->nranks = nranks_, header_->slot_bytes = slot_bytes_;
  header_->creator_pid = getpid();
  // Release: a rank that sees the magic (acquire) sees the fields above.
  word(header_->magic).store(kMagic, std::memory_order_release);
  return PLX_OK;
}

plx_status Comm::attach(const UniqueId &id, int64_t deadline) {
  Backoff backoff;
  int fd;
  while ((fd = shm_open(id.name, O_RDWR, 0)) < 0) {
    if (errno != ENOENT) return fail(PLX_ERR_SYSTEM, "shm_open %s: %s", id.name, std::strerror(errno));
    if (now_ns() >= deadline)
      return fail(PLX_ERR_TIMEOUT, "rank 0 did not create the communicator (%s) in time", id.name);
    backoff.pause();
  }
  const plx_status s = map_when_sized(fd, id, deadline);
  close(fd);
  return s == PLX_OK ? check_header(id, deadline) : s;
}

// Rank 0 sizes the segment in one step (posix_fallocate); map it whole.
plx_status Comm::map_when_sized(int fd, const UniqueId &id, int64_t deadline) {
  Backoff backoff;
  struct stat st {};
  while (fstat(fd, &st) == 0 && st.st_size == 0) {
    if (now_ns() >= deadline) return fail(PLX_ERR_TIMEOUT, "rank 0 did not size %s in time", id.name);
    backoff.pause();
  }
  if (st.st_size < static_cast<off_t>(sizeof(Header)))
    return fail(PLX_ERR_SYSTEM, "fstat %s: %s", id.name, std::strerror(errno));
  void *base = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail(PLX_ERR_SYSTEM, "mmap %s: %s", id.name, std::strerror(errno));
  base_ = base, bytes_ = static_cast<size_t>(st.st_size), header_ = static_cast<Header *>(base);
  return PLX_OK;
}

// Waits for rank 0 to publish the header, then checks that it is ours and
// that we agree on the size of the communicator.
plx_status Comm::check_header(const UniqueId &id, int64_t deadline) {
  Backoff backoff;
  uint64_t magic;
  while ((magic = word(header_->magic).load(std::memory_order_acquire)) == 0) {
    if (now_ns() >= deadline)
      return fail(PLX_ERR_TIMEOUT, "%s was not initialised in time (rank 0 stalled or died)", id.name);
    backoff.pause();
  }
  if (magic != kMagic || header_->nonce != id.nonce) {
    munmap(base_, bytes_);
    base_ = nullptr, header_ = nullptr;  // someone else's segment: leave its name alone
    return fail(PLX_ERR_INVALID_USAGE, "%s belongs to another communicator (a stale or reused id?)", id.name);
  }
  if (header_->nranks != nranks_)
    return fail_all(PLX_ERR_INVALID_USAGE, "rank %d joined with nranks %d, rank 0 with %d", rank_, nranks_,
                    header_->nranks);
  slot_bytes_ = header_->slot_bytes;
  if (bytes_ != layout_bytes(nranks_, slot_bytes_))
    return fail_all(PLX_ERR_INTERNAL, "%s has %zu bytes, not the %zu its header describes", id.name, bytes_,
                    layout_bytes(nranks_, slot_bytes_));
  map_layout(base_, bytes_);
  return PLX_OK;
}

plx_status Comm::claim() {
  RankLine &line = lines_[rank_];
  uint32_t state = kEmpty;
  if (!word(line.state).compare_exchange_strong(state, kClaiming, std::memory_order_acq_rel))
    return fail_all(PLX_ERR_INVALID_USAGE, "rank %d joined twice", rank_);
  char ignored;
  line.pid = getpid();
  if (!read_stat(line.pid, &ignored, &line.start_time)) line.start_time = 0;
  claimed_ = true;
  // Release: whoever sees kJoined or the epoch (acquire) sees who we are.
  word(line.state).store(kJoined, std::memory_order_release);
  word(line.epoch).store(1, std::memory_order_release);
  return PLX_OK;
}

unsigned char *Comm::mailbox(int32_t rank) const { return lines_[rank].mailbox; }

void Comm::set_operation(const char *what) { std::snprintf(operation_, sizeof(operation_), "%s", what); }

plx_status Comm::barrier() {
  // Release: what this rank wrote into its slot before is visible to a
  // rank that sees the epoch (acquire in wait_for).
  word(lines_[rank_].epoch).store(++epoch_, std::memory_order_release);
  return wait_for(epoch_, timeout_ms_);
}

plx_status Comm::wait_for(uint64_t epoch, int32_t timeout_ms) {
  const int64_t deadline = deadline_after(timeout_ms);
  int64_t next_check = now_ns() + kPeerCheckNs;
  Backoff backoff;
  for (int32_t arrived = 0;;) {
    // Epochs only grow, so ranks below `arrived` need no second look.
    while (arrived < nranks_ && word(lines_[arrived].epoch).load(std::memory_order_acquire) >= epoch) ++arrived;
    // All here: done, even if a failure was posted since (it must not undo
    // this step on some ranks only; the next one will see it).
    if (arrived == nranks_) return PLX_OK;
    if (plx_status s = posted_failure()) return s;
    const int64_t now = now_ns();
    const bool check_peers = now >= next_check;
    if (check_peers) next_check = now + kPeerCheckNs;
    if (plx_status s = wait_failed(epoch, timeout_ms, now >= deadline, check_peers)) return s;
    backoff.pause();
  }
}

// Why a wait must end now: a rank we wait for is dead, or time is up.
plx_status Comm::wait_failed(uint64_t epoch, int32_t timeout_ms, bool expired, bool check_peers) {
  if (!expired && !check_peers) return PLX_OK;
  char missing[160] = "";
  int count = 0;
  for (int32_t r = 0; r < nranks_; ++r) {
    if (word(lines_[r].epoch).load(std::memory_order_acquire) >= epoch) continue;
    if (check_peers && !alive(r))
      return fail_all(PLX_ERR_PEER_LOST, "rank %d (pid %d) %s during %s", r, lines_[r].pid,
                      word(lines_[r].state).load() == kLeft ? "left the communicator" : "exited", operation_);
    const size_t used = std::strlen(missing);
    std::snprintf(missing + used, sizeof(missing) - used, "%s%d", count++ ? ", " : "", r);
  }
  if (!expired) return PLX_OK;
  return fail_all(PLX_ERR_TIMEOUT, "%s %s of %d did not arrive at %s within %d ms", count == 1 ? "rank" : "ranks",
                  missing, nranks_, operation_, timeout_ms);
}

bool Comm::alive(int32_t r) const {
  const RankLine &line = lines_[r];
  const uint32_t state = word(lines_[r].state).load(std::memory_order_acquire);
  if (state == kLeft) return false;   // destroyed its communicator: it will not come
  if (state != kJoined) return true;  // not here yet: late, not lost
  if (line.pid == getpid()) return true;  // a thread rank of this process
  return process_alive(line.pid, line.start_time);
}

void Comm::post_failure(plx_status status, const char *message) {
  const uint64_t posted = static_cast<uint64_t>(static_cast<uint32_t>(rank_)) << 32 | static_cast<uint32_t>(status);
  uint64_t none = 0;
  // The first post wins, and only its poster writes the text: it never tears.
  if (!word(header_->failure).compare_exchange_strong(none, posted, std::memory_order_acq_rel)) return;
  std::snprintf(header_->failure_text, sizeof(header_->failure_text), "%s", message);
  word(header_->failure_ready).store(1u, std::memory_order_release);
}

plx_status Comm::failure_status() const {
  const uint64_t posted = word(header_->failure).load(std::memory_order_acquire);
  return static_cast<plx_status>(static_cast<uint32_t>(posted));
}

plx_status Comm::posted_failure() const {
  const uint64_t posted = word(header_->failure).load(std::memory_order_acquire);
  if (posted == 0) return PLX_OK;
  const auto status = static_cast<plx_status>(static_cast<uint32_t>(posted));
  const int poster = static_cast<int>(posted >> 32);
  // The poster writes the text right after its post; wait a moment for it,
  // bounded, because it may have died in between.
  for (int k = 0; k < 1000 && !word(header_->failure_ready).load(std::memory_order_acquire); ++k) {
    const timespec nap{0, 2'000};
    nanosleep(&nap, nullptr);
  }
  if (!word(header_->failure_ready).load(std::memory_order_acquire))
    return fail(status, "rank %d failed with status %d", poster, status);
  return fail(status, "%s (reported by rank %d)", header_->failure_text, poster);
}

plx_status Comm::fail_all(plx_status status, const char *format, ...) {
  char message[kFailureTextBytes];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  post_failure(status, message);
  return fail(status, "%s", message);
}

}  // namespace example_shm
