// The CPU half of the nccl plugin's failure domain (plugins/nccl/
// nccl_domain.hpp): keys, host identity, which ranks share a host, the
// segment names, and a rendezvous joined through them with two thread
// ranks (a posted failure, the cheap failure word, a clean leave).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "core/rendezvous.hpp"
#include "plugins/nccl/nccl_domain.hpp"

namespace {

using plexus::nccl::DomainKey;
using plexus::nccl::HostRank;

bool shm_name_exists(const char *name) {
  const std::string path = std::string("/dev/shm") + name;
  return ::access(path.c_str(), F_OK) == 0;
}

DomainKey fresh_key() {
  DomainKey key{};
  REQUIRE(plexus::nccl::make_domain_key(&key) == PLX_OK);
  return key;
}

}  // namespace

TEST_CASE("plugins.nccl.domain.keys_are_random_and_children_deterministic") {
  const DomainKey a = fresh_key(), b = fresh_key();
  CHECK(std::memcmp(&a, &b, sizeof(a)) != 0);
  const DomainKey c1 = plexus::nccl::child_domain_key(a, 0, 3);
  const DomainKey c2 = plexus::nccl::child_domain_key(a, 0, 3);
  CHECK(std::memcmp(&c1, &c2, sizeof(c1)) == 0);  // every rank computes the same
  std::set<std::string> names;
  for (uint64_t seq = 0; seq < 3; ++seq)
    for (int32_t color : {0, 1, 3, 1 << 30})
      names.insert(plexus::nccl::domain_rendezvous_id(plexus::nccl::child_domain_key(a, seq, color), 7).name);
  names.insert(plexus::nccl::domain_rendezvous_id(a, 7).name);
  names.insert(plexus::nccl::domain_rendezvous_id(plexus::nccl::child_domain_key(b, 0, 3), 7).name);
  CHECK(names.size() == 3 * 4 + 2);
}

TEST_CASE("plugins.nccl.domain.rendezvous_names") {
  const DomainKey key = fresh_key();
  const plexus::core::RendezvousId here = plexus::nccl::domain_rendezvous_id(key, 1);
  const plexus::core::RendezvousId there = plexus::nccl::domain_rendezvous_id(key, 2);
  const std::string name = here.name;
  CHECK(name.rfind("/plexus-nccl-", 0) == 0);
  CHECK(name.size() == std::strlen("/plexus-nccl-") + 32);
  CHECK(name.find('/', 1) == std::string::npos);
  CHECK(name != there.name);  // one segment per host
  CHECK(here.nonce != 0);
  CHECK(here.nonce != there.nonce);
  const plexus::core::RendezvousId again = plexus::nccl::domain_rendezvous_id(key, 1);
  CHECK(std::memcmp(&here, &again, sizeof(here)) == 0);
  // The key cannot be read off the name.
  char secret_hex[17];
  std::snprintf(secret_hex, sizeof(secret_hex), "%016llx", static_cast<unsigned long long>(key.secret[0]));
  CHECK(name.find(secret_hex) == std::string::npos);
}

TEST_CASE("plugins.nccl.domain.host_identity") {
  using plexus::nccl::host_identity_of;
  const uint64_t base = host_identity_of("node1", "boot-a", 23, "pid:[4026531836]");
  CHECK(base == host_identity_of("node1", "boot-a", 23, "pid:[4026531836]"));
  CHECK(base != host_identity_of("node2", "boot-a", 23, "pid:[4026531836]"));
  CHECK(base != host_identity_of("node1", "boot-b", 23, "pid:[4026531836]"));
  CHECK(base != host_identity_of("node1", "boot-a", 24, "pid:[4026531836]"));  // another /dev/shm
  CHECK(base != host_identity_of("node1", "boot-a", 23, "pid:[4026532000]"));  // another pid namespace
  CHECK(host_identity_of("ab", "c", 0, "") != host_identity_of("a", "bc", 0, ""));
  CHECK(plexus::nccl::host_identity() == plexus::nccl::host_identity());
  CHECK(plexus::nccl::host_identity() != 0);
}

TEST_CASE("plugins.nccl.domain.local_ranks") {
  // Ranks 0, 2, 3 on host 10; 1 and 4 on host 20.
  const std::vector<HostRank> all = {{10, 100}, {20, 200}, {10, 101}, {10, 102}, {20, 201}};
  const plexus::nccl::LocalRanks of3 = plexus::nccl::local_ranks(all, 3);
  CHECK(of3.ranks == std::vector<int32_t>{0, 2, 3});
  CHECK(of3.index == 2);
  const plexus::nccl::LocalRanks of1 = plexus::nccl::local_ranks(all, 1);
  CHECK(of1.ranks == std::vector<int32_t>{1, 4});
  CHECK(of1.index == 0);
  const plexus::nccl::LocalRanks alone = plexus::nccl::local_ranks({{5, 1}}, 0);
  CHECK(alone.ranks == std::vector<int32_t>{0});
  CHECK(alone.index == 0);
  CHECK(plexus::nccl::local_ranks(all, 5).index == -1);
  CHECK(plexus::nccl::local_ranks(all, -1).index == -1);
  CHECK(plexus::nccl::local_ranks({}, 0).ranks.empty());
}

// What the plugin does with it: two local ranks join, one posts a failure
// that the other sees through the failure word; a rank that leaves is
// "left", not lost; nothing stays in /dev/shm.
TEST_CASE("plugins.nccl.domain.rendezvous_of_two_thread_ranks") {
  const plexus::core::RendezvousId id = plexus::nccl::domain_rendezvous_id(fresh_key(), plexus::nccl::host_identity());
  std::unique_ptr<plexus::core::Rendezvous> r0, r1;
  plx_status s1 = PLX_ERR_INTERNAL;
  std::thread other([&] { s1 = plexus::core::Rendezvous::join(id, 2, 1, 10000, &r1); });
  const plx_status s0 = plexus::core::Rendezvous::join(id, 2, 0, 10000, &r0);
  other.join();
  REQUIRE(s0 == PLX_OK);
  REQUIRE(s1 == PLX_OK);
  CHECK_FALSE(shm_name_exists(id.name));
  const uint64_t *word = r1->failure_word();
  CHECK(__atomic_load_n(word, __ATOMIC_RELAXED) == 0);
  CHECK(r1->peer_alive(0));
  CHECK_FALSE(r1->peer_left(0));
  r0->post_failure(PLX_ERR_ABORTED, "rank 0 aborted");
  const uint64_t posted = __atomic_load_n(word, __ATOMIC_RELAXED);
  CHECK(static_cast<plx_status>(static_cast<uint32_t>(posted)) == PLX_ERR_ABORTED);
  CHECK((posted >> 32) == 0);  // the poster's local rank
  std::string message;
  CHECK(r1->failure(&message) == PLX_ERR_ABORTED);
  CHECK(message.find("rank 0 aborted") != std::string::npos);
  r0.reset();
  CHECK_FALSE(r1->peer_alive(0));
  CHECK(r1->peer_left(0));
}
