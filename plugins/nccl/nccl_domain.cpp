#include "plugins/nccl/nccl_domain.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <string>

#include "core/random.hpp"
#include "core/status.hpp"

namespace plexus::nccl {
namespace {

// splitmix64's finalizer: a bijection that spreads every input bit.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Folds `word` into a 128-bit state. Each half mixes in both, so a name
// does not simply give back the key it was made from. Not cryptography:
// the segments stay private through their mode (0600) and the nonce.
void fold(uint64_t state[2], uint64_t word) {
  const uint64_t a = mix64(state[0] ^ mix64(word + 0x9e3779b97f4a7c15ull));
  const uint64_t b = mix64(state[1] ^ mix64(word + 0x6a09e667f3bcc909ull));
  state[0] = mix64(a + b);
  state[1] = mix64(b + (a << 1 | a >> 63));
}

uint64_t hash_text(uint64_t seed, std::string_view text) {
  uint64_t state[2] = {seed, ~seed};
  for (const char c : text) fold(state, static_cast<unsigned char>(c));
  fold(state, text.size());
  return state[0];
}

std::string read_small_file(const char *path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char text[256];
  const ssize_t got = ::read(fd, text, sizeof(text));
  ::close(fd);
  std::string s(text, got > 0 ? static_cast<size_t>(got) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

uint64_t probe_host_identity() {
  char hostname[HOST_NAME_MAX + 1] = {};
  (void)::gethostname(hostname, sizeof(hostname) - 1);
  struct stat shm {};
  const uint64_t shm_device = ::stat("/dev/shm", &shm) == 0 ? static_cast<uint64_t>(shm.st_dev) : 0;
  char pid_ns[128] = {};
  (void)::readlink("/proc/self/ns/pid", pid_ns, sizeof(pid_ns) - 1);
  return host_identity_of(hostname, read_small_file("/proc/sys/kernel/random/boot_id"), shm_device,
                          pid_ns);
}

}  // namespace

plx_status make_domain_key(DomainKey *out) {
  *out = {};
  return core::random_bytes(out, sizeof(*out));
}

DomainKey child_domain_key(const DomainKey &parent, uint64_t split_seq, int32_t color) {
  uint64_t state[2] = {parent.secret[0], parent.secret[1]};
  fold(state, 0x73706c6974ull);  // "split": never equal to a host fold
  fold(state, split_seq);
  fold(state, static_cast<uint32_t>(color));
  DomainKey child{{state[0], state[1]}, 0};
  fold(state, parent.nonce);
  child.nonce = state[0];
  return child;
}

uint64_t host_identity_of(std::string_view hostname, std::string_view boot_id, uint64_t shm_device,
                          std::string_view pid_namespace) {
  uint64_t h = hash_text(0x686f7374ull, hostname);  // "host"
  h = hash_text(h, boot_id);
  h = hash_text(h, pid_namespace);
  uint64_t state[2] = {h, ~h};
  fold(state, shm_device);
  return state[0];
}

uint64_t host_identity() {
  static const uint64_t identity = probe_host_identity();
  return identity;
}

LocalRanks local_ranks(const std::vector<HostRank> &all, int32_t my_rank) {
  LocalRanks local;
  if (my_rank < 0 || static_cast<size_t>(my_rank) >= all.size()) return local;
  const uint64_t mine = all[my_rank].host;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].host != mine) continue;
    if (static_cast<int32_t>(r) == my_rank) local.index = static_cast<int32_t>(local.ranks.size());
    local.ranks.push_back(static_cast<int32_t>(r));
  }
  return local;
}

core::RendezvousId domain_rendezvous_id(const DomainKey &key, uint64_t host) {
  uint64_t state[2] = {key.secret[0], key.secret[1]};
  fold(state, 0x686f7374ull);  // "host"
  fold(state, host);
  fold(state, key.nonce);
  core::RendezvousId id{};
  std::snprintf(id.name, sizeof(id.name), "/plexus-nccl-%016llx%016llx",
                static_cast<unsigned long long>(state[0]), static_cast<unsigned long long>(state[1]));
  fold(state, host);
  id.nonce = state[0] | 1;  // never 0
  return id;
}

}  // namespace plexus::nccl
