#include "core/rendezvous.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "core/random.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kCacheLine = 64;
constexpr uint64_t kMagic = 0x706c78'72647631;  // "plxrdv1": layout version 1
// Claiming a slot posts epoch 1; the n-th barrier or allgather posts n + 1.
constexpr uint64_t kJoinEpoch = 1;
constexpr size_t kFailureTextBytes = 256;
// Reading /proc for every missing peer on every poll would cost more than
// the wait; a dead peer is noticed within this interval instead.
constexpr auto kPeerCheckInterval = std::chrono::milliseconds(5);

enum SlotState : uint32_t { kEmpty = 0, kClaiming = 1, kJoined = 2, kLeft = 3 };

struct alignas(kCacheLine) Mailbox {
  uint32_t bytes;
  unsigned char data[Rendezvous::kMaxAllgatherBytes];
};

struct alignas(kCacheLine) RankSlot {
  // Identity, written once by the claiming rank between kClaiming and
  // kJoined; `state` publishes it (release) and later says kLeft.
  uint32_t state;
  int32_t pid;
  int32_t tid;
  uint64_t start_time;  // /proc/<pid>/stat field 22, 0 without /proc
  // Polled by every waiting rank, so it gets a line of its own.
  alignas(kCacheLine) uint64_t posted_epoch;
  // Double-buffered by epoch parity: see Rendezvous::exchange().
  Mailbox mailbox[2];
};

// Shared words are plain integers accessed through std::atomic_ref: the
// layout stays a trivially copyable struct that any process can map, and
// every cross-rank access is still atomic.
template <typename T>
std::atomic_ref<T> shared_word(T &word) {
  static_assert(std::atomic_ref<T>::is_always_lock_free, "shared words must be lock-free");
  return std::atomic_ref<T>(word);
}

}  // namespace

struct alignas(kCacheLine) RendezvousShared {
  uint64_t magic;  // 0 until the creator has filled the rest (release)
  uint64_t nonce;
  int32_t nranks;
  int32_t creator_pid;
  // 0, or rank << 32 | (uint32_t)status of the first post (CAS).
  alignas(kCacheLine) uint64_t failure;
  uint32_t failure_text_ready;  // set (release) once failure_text is written
  char failure_text[kFailureTextBytes];
  // nranks RankSlots follow.
};
static_assert(sizeof(RendezvousShared) % alignof(RankSlot) == 0);

namespace {

size_t layout_bytes(int32_t nranks) {
  return sizeof(RendezvousShared) + static_cast<size_t>(nranks) * sizeof(RankSlot);
}

RankSlot &slot_of(RendezvousShared *shared, int32_t rank) {
  return reinterpret_cast<RankSlot *>(shared + 1)[rank];
}

// Acquire: pairs with the release that published the word, so what the rank
// wrote before it (identity, mailbox) is visible after.
uint32_t state_of(RendezvousShared *shared, int32_t rank) {
  return shared_word(slot_of(shared, rank).state).load(std::memory_order_acquire);
}

uint64_t posted_epoch_of(RendezvousShared *shared, int32_t rank) {
  return shared_word(slot_of(shared, rank).posted_epoch).load(std::memory_order_acquire);
}

// The posted text, once its writer has published it. The writer stores it
// right after winning the CAS; give it a moment, bounded because it may
// have died in between.
std::optional<std::string_view> failure_text(RendezvousShared *shared) {
  auto ready = [shared] {
    return shared_word(shared->failure_text_ready).load(std::memory_order_acquire) != 0;
  };
  for (int i = 0; i < 100 && !ready(); ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  if (!ready()) return std::nullopt;
  return std::string_view(shared->failure_text, ::strnlen(shared->failure_text, kFailureTextBytes));
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins briefly for the fast case (every rank on its own core), then naps
// with growing sleeps so that 8 ranks on 2 cores still make progress.
class Backoff {
 public:
  void pause() {
    if (spins_ < kSpins) {
      ++spins_;
      cpu_relax();
      return;
    }
    const timespec nap{0, nap_ns_};
    ::nanosleep(&nap, nullptr);
    nap_ns_ = std::min(nap_ns_ * 2, kMaxNapNs);
  }

 private:
  static constexpr int kSpins = 200;
  static constexpr long kMaxNapNs = 500'000;
  int spins_ = 0;
  long nap_ns_ = 2'000;
};

struct ProcessStat {
  char state = '?';
  uint64_t start_time = 0;
};

// Fields 3 (state) and 22 (start time in clock ticks since boot) of
// /proc/<pid>/stat. Field 2, the command, may hold spaces and parentheses,
// so counting starts after its last ')'.
bool read_process_stat(pid_t pid, ProcessStat *out) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[1024];
  const ssize_t got = ::read(fd, text, sizeof(text));
  ::close(fd);
  const std::string_view all(text, got > 0 ? static_cast<size_t>(got) : 0);
  const size_t paren = all.rfind(')');
  if (paren == std::string_view::npos || paren + 2 >= all.size()) return false;
  std::string_view rest = all.substr(paren + 2);
  out->state = rest.front();
  for (int field = 3; field < 22 && !rest.empty(); ++field) {
    const size_t space = rest.find(' ');
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  return std::from_chars(rest.data(), rest.data() + rest.size(), out->start_time).ec == std::errc();
}

// kill(pid, 0) alone would call a zombie, or a new process that reused the
// pid, alive; the state and start time tell them apart.
bool process_alive(int32_t pid, uint64_t start_time) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  if (start_time == 0) return true;  // no /proc when it joined: kill() is all we have
  ProcessStat now;
  return read_process_stat(pid, &now) && now.state != 'Z' && now.state != 'X' &&
         now.start_time == start_time;
}

// Ranks that have not yet posted `epoch`.
std::vector<int32_t> missing_ranks(RendezvousShared *shared, int32_t nranks, uint64_t epoch) {
  std::vector<int32_t> missing;
  for (int32_t r = 0; r < nranks; ++r)
    if (posted_epoch_of(shared, r) < epoch) missing.push_back(r);
  return missing;
}

// "rank 2" or "ranks 2, 3".
std::string rank_list(const std::vector<int32_t> &ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

plx_status check_join_args(const RendezvousId &id, int32_t nranks, int32_t rank, const void *out) {
  const size_t name_length = ::strnlen(id.name, sizeof(id.name));
  const std::string_view name(id.name, name_length);
  if (name_length == sizeof(id.name) || name.substr(0, 8) != "/plexus-")
    return fail(PLX_ERR_INVALID_ARGUMENT,
                "rendezvous id holds no plexus segment name (corrupted?)");
  if (nranks < 1 || nranks > Rendezvous::kMaxRanks)
    return fail(PLX_ERR_INVALID_ARGUMENT, "nranks {} is outside 1..{}", nranks,
                Rendezvous::kMaxRanks);
  if (rank < 0 || rank >= nranks)
    return fail(PLX_ERR_INVALID_ARGUMENT, "rank {} is outside 0..{}", rank, nranks - 1);
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "out is NULL");
  return PLX_OK;
}

}  // namespace

class Rendezvous::Deadline {
 public:
  explicit Deadline(int32_t timeout_ms)
      : timeout_ms_(timeout_ms),
        end_(Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0))) {}
  bool expired() const { return timeout_ms_ >= 0 && Clock::now() >= end_; }
  int32_t timeout_ms() const { return timeout_ms_; }

 private:
  int32_t timeout_ms_;
  Clock::time_point end_;
};

plx_status make_rendezvous_id(RendezvousId *id) {
  if (id == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "id is NULL");
  *id = {};
  const std::string name = ShmSegment::make_name("rdv");
  if (name.empty()) return PLX_ERR_SYSTEM;  // random_bytes set the message
  if (name.size() >= sizeof(id->name))
    return fail(PLX_ERR_INTERNAL, "segment name {} does not fit a rendezvous id", name);
  std::memcpy(id->name, name.data(), name.size());
  return random_bytes(&id->nonce, sizeof(id->nonce));
}

plx_status Rendezvous::join(const RendezvousId &id, int32_t nranks, int32_t rank,
                            int32_t timeout_ms, std::unique_ptr<Rendezvous> *out) {
  if (plx_status s = check_join_args(id, nranks, rank, out); s != PLX_OK) return s;
  const Deadline deadline(timeout_ms);
  std::unique_ptr<Rendezvous> self(new Rendezvous(nranks, rank));
  plx_status s = self->attach(id, deadline);
  if (s == PLX_OK) s = self->claim_slot();
  if (s == PLX_OK) s = self->wait_for_epoch(kJoinEpoch, "join", deadline);
  // Once all have arrived nobody needs the name, and after a failure nobody
  // should find it: every rank removes it either way (idempotent).
  if (self->segment_.valid()) self->segment_.unlink();
  if (s != PLX_OK) return s;
  self->epoch_ = kJoinEpoch;
  log_debug("rank {} of {} joined through {}", rank, nranks, id.name);
  *out = std::move(self);
  return PLX_OK;
}

Rendezvous::~Rendezvous() {
  // Thread ranks of one process judge each other by this word.
  if (claimed_) shared_word(slot_of(shared_, rank_).state).store(kLeft, std::memory_order_release);
}

// Creates the segment as the first rank, or opens the first rank's.
plx_status Rendezvous::attach(const RendezvousId &id, const Deadline &deadline) {
  bool created = false;
  Backoff backoff;
  plx_status s;
  while ((s = ShmSegment::open_or_create(id.name, layout_bytes(nranks_), sizeof(RendezvousShared),
                                         &segment_, &created)) == PLX_IN_PROGRESS) {
    if (deadline.expired())
      return fail(PLX_ERR_TIMEOUT, "rendezvous segment {} exists but was not sized within {} ms",
                  id.name, deadline.timeout_ms());
    backoff.pause();
  }
  if (s != PLX_OK) return s;
  if (!created) return check_header(id, deadline);
  shared_ = static_cast<RendezvousShared *>(segment_.data());
  shared_->nonce = id.nonce;
  shared_->nranks = nranks_;
  shared_->creator_pid = ::getpid();
  // Release: a rank that sees the magic (acquire) sees the fields above.
  shared_word(shared_->magic).store(kMagic, std::memory_order_release);
  return PLX_OK;
}

// Waits for the creator to publish the header, then checks it is ours.
plx_status Rendezvous::check_header(const RendezvousId &id, const Deadline &deadline) {
  auto *shared = static_cast<RendezvousShared *>(segment_.data());
  Backoff backoff;
  uint64_t magic = 0;
  while ((magic = shared_word(shared->magic).load(std::memory_order_acquire)) == 0) {
    if (deadline.expired())
      return fail(PLX_ERR_TIMEOUT,
                  "rendezvous segment {} was not initialised within {} ms "
                  "(its creator stalled or died)",
                  id.name, deadline.timeout_ms());
    backoff.pause();
  }
  if (magic != kMagic || shared->nonce != id.nonce) {
    segment_ = ShmSegment();  // someone else's segment: leave its name alone
    return fail(PLX_ERR_INVALID_USAGE,
                "shared memory segment {} belongs to another communicator "
                "or plexus version (stale or reused id?)",
                id.name);
  }
  shared_ = shared;
  if (shared->nranks != nranks_)
    return fail_all(PLX_ERR_INVALID_USAGE,
                    fmt::format("rank {} joined with nranks {} but the communicator has {}", rank_,
                                nranks_, shared->nranks));
  return PLX_OK;
}

plx_status Rendezvous::claim_slot() {
  RankSlot &slot = slot_of(shared_, rank_);
  uint32_t state = kEmpty;
  // Acquire on failure: the holder's pid is readable once we see kJoined.
  auto slot_state = shared_word(slot.state);
  if (!slot_state.compare_exchange_strong(state, kClaiming, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
    const std::string holder = state >= kJoined ? fmt::format(" by pid {}", slot.pid) : "";
    return fail_all(
        PLX_ERR_INVALID_USAGE,
        fmt::format("rank {} joined twice: its slot is already taken{}", rank_, holder));
  }
  ProcessStat self;
  read_process_stat(::getpid(), &self);
  slot.pid = ::getpid();
  slot.tid = ::gettid();
  slot.start_time = self.start_time;
  claimed_ = true;
  // Release: whoever sees kJoined or the post (acquire) sees who we are.
  slot_state.store(kJoined, std::memory_order_release);
  shared_word(slot.posted_epoch).store(kJoinEpoch, std::memory_order_release);
  return PLX_OK;
}

bool Rendezvous::peer_alive(int32_t rank) const {
  if (rank == rank_) return true;
  if (rank < 0 || rank >= nranks_) return false;
  const RankSlot &slot = slot_of(shared_, rank);
  if (state_of(shared_, rank) != kJoined) return false;
  if (slot.pid == ::getpid()) return true;  // a thread rank here: kJoined until it leaves
  return process_alive(slot.pid, slot.start_time);
}

bool Rendezvous::peer_left(int32_t rank) const {
  return rank >= 0 && rank < nranks_ && state_of(shared_, rank) == kLeft;
}

const uint64_t *Rendezvous::failure_word() const { return &shared_->failure; }

std::string Rendezvous::describe_lost(int32_t rank) const {
  const RankSlot &slot = slot_of(shared_, rank);
  switch (state_of(shared_, rank)) {
    case kJoined: return fmt::format("rank {} (pid {}) exited", rank, slot.pid);
    case kLeft:
      return fmt::format("rank {} (pid {}, thread {}) left the communicator", rank, slot.pid,
                         slot.tid);
    default: return fmt::format("rank {} never joined", rank);
  }
}

plx_status Rendezvous::check_peers() {
  for (int32_t r = 0; r < nranks_; ++r)
    if (!peer_alive(r)) return fail_all(PLX_ERR_PEER_LOST, describe_lost(r));
  return PLX_OK;
}

void Rendezvous::post_failure(plx_status status, std::string_view message) {
  if (status == PLX_OK || shared_ == nullptr) return;
  const uint64_t word =
      static_cast<uint64_t>(static_cast<uint32_t>(rank_)) << 32 | static_cast<uint32_t>(status);
  uint64_t none = 0;
  // First writer wins; only the winner writes the text, so it never tears.
  if (!shared_word(shared_->failure).compare_exchange_strong(none, word, std::memory_order_acq_rel))
    return;
  const size_t length = std::min(message.size(), kFailureTextBytes - 1);
  std::memcpy(shared_->failure_text, message.data(), length);
  shared_->failure_text[length] = '\0';
  // Release: a reader that sees ready (acquire) sees the whole text.
  shared_word(shared_->failure_text_ready).store(1, std::memory_order_release);
  log_debug("rank {} posted {}: {}", rank_, status_name(status), message);
}

plx_status Rendezvous::failure(std::string *message) const {
  const uint64_t word = shared_word(shared_->failure).load(std::memory_order_acquire);
  if (word == 0) return PLX_OK;
  const auto status = static_cast<plx_status>(static_cast<uint32_t>(word));
  const auto poster = static_cast<int32_t>(word >> 32);
  if (message == nullptr) return status;
  if (const auto text = failure_text(shared_))
    *message = fmt::format("{} (reported by rank {})", *text, poster);
  else
    *message = fmt::format("rank {} reported {}", poster, status_name(status));
  return status;
}

plx_status Rendezvous::fail_all(plx_status status, const std::string &message) {
  post_failure(status, message);
  return fail_message(status, message);
}

plx_status Rendezvous::allgather(const void *mine, size_t bytes, void *all, int32_t timeout_ms) {
  if (bytes > kMaxAllgatherBytes)
    return fail(PLX_ERR_INVALID_ARGUMENT, "allgather of {} bytes; at most {} per rank", bytes,
                kMaxAllgatherBytes);
  if (bytes > 0 && (mine == nullptr || all == nullptr))
    return fail(PLX_ERR_INVALID_ARGUMENT, "allgather of {} bytes with a NULL buffer", bytes);
  return exchange(mine, bytes, all, timeout_ms, "allgather");
}

plx_status Rendezvous::barrier(int32_t timeout_ms) {
  return exchange(nullptr, 0, nullptr, timeout_ms, "barrier");
}

// Posts this rank's block for the next epoch and collects everyone's.
// Mailboxes alternate by epoch parity, so no reset step is needed: a rank
// writes epoch e's mailbox only after every rank posted e - 1, which each
// does only after it finished reading epoch e - 2 from that same mailbox.
plx_status Rendezvous::exchange(const void *mine, size_t bytes, void *all, int32_t timeout_ms,
                                std::string_view kind) {
  std::string posted_text;
  // Failure is sticky: fail fast, before posting anything.
  if (plx_status posted = failure(&posted_text); posted != PLX_OK)
    return fail_message(posted, posted_text);
  const Deadline deadline(timeout_ms);
  const uint64_t epoch = ++epoch_;
  const std::string what = fmt::format("{} #{}", kind, epoch - kJoinEpoch);
  RankSlot &slot = slot_of(shared_, rank_);
  Mailbox &box = slot.mailbox[epoch % 2];
  box.bytes = static_cast<uint32_t>(bytes);
  if (bytes > 0) std::memcpy(box.data, mine, bytes);
  // Release: a rank that sees this post (acquire) sees the mailbox above.
  shared_word(slot.posted_epoch).store(epoch, std::memory_order_release);
  if (plx_status s = wait_for_epoch(epoch, what, deadline); s != PLX_OK) return s;
  return collect(epoch, bytes, all, what);
}

plx_status Rendezvous::collect(uint64_t epoch, size_t bytes, void *all, std::string_view what) {
  for (int32_t r = 0; r < nranks_; ++r) {
    const Mailbox &box = slot_of(shared_, r).mailbox[epoch % 2];
    if (box.bytes != bytes)
      return fail_all(PLX_ERR_INVALID_USAGE,
                      fmt::format("rank {} passed {} bytes to {} but rank {} passed {}", r,
                                  box.bytes, what, rank_, bytes));
    if (bytes > 0) std::memcpy(static_cast<unsigned char *>(all) + r * bytes, box.data, bytes);
  }
  return PLX_OK;
}

// Waits until every rank has posted `epoch`. The acquire loads pair with
// each rank's release of its post, so what it wrote before (its identity,
// its mailbox) is visible once we see the post.
plx_status Rendezvous::wait_for_epoch(uint64_t epoch, std::string_view what,
                                      const Deadline &deadline) {
  Backoff backoff;
  Clock::time_point next_peer_check = Clock::now() + kPeerCheckInterval;
  for (int32_t arrived = 0;;) {
    // Epochs only grow, so ranks below `arrived` need no second look.
    while (arrived < nranks_ && posted_epoch_of(shared_, arrived) >= epoch) ++arrived;
    if (arrived == nranks_) return PLX_OK;
    const bool check_liveness = Clock::now() >= next_peer_check;
    if (check_liveness) next_peer_check = Clock::now() + kPeerCheckInterval;
    if (plx_status s = wait_failed(epoch, what, deadline, check_liveness); s != PLX_OK) return s;
    backoff.pause();
  }
}

// Why a wait for `epoch` must end now: a posted failure, a dead rank we
// wait for, or the deadline. PLX_OK to keep waiting.
plx_status Rendezvous::wait_failed(uint64_t epoch, std::string_view what, const Deadline &deadline,
                                   bool check_liveness) {
  std::string posted_text;
  if (plx_status posted = failure(&posted_text); posted != PLX_OK) {
    // A failure posted after the last rank arrived must not undo the op on
    // some ranks only. Its poster saw the arrivals it was after, and our
    // acquire load of the failure word makes them visible to this scan.
    if (missing_ranks(shared_, nranks_, epoch).empty()) return PLX_OK;
    return fail_message(posted, posted_text);
  }
  const bool expired = deadline.expired();
  if (!check_liveness && !expired) return PLX_OK;
  const std::vector<int32_t> missing = missing_ranks(shared_, nranks_, epoch);
  for (const int32_t r : missing) {
    // Ranks still on their way to the join are not lost, only late.
    if (state_of(shared_, r) >= kJoined && !peer_alive(r))
      return fail_all(PLX_ERR_PEER_LOST, fmt::format("{} during {}", describe_lost(r), what));
  }
  if (!expired || missing.empty()) return PLX_OK;
  const std::string verb = epoch == kJoinEpoch ? "join" : fmt::format("arrive at {}", what);
  return fail_all(PLX_ERR_TIMEOUT,
                  fmt::format("{} of {} did not {} within {} ms", rank_list(missing), nranks_, verb,
                              deadline.timeout_ms()));
}

}  // namespace plexus::core
