#include "plugins/shm-native/shm_slots.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "core/host_topology.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::shm_native {
namespace {

constexpr uint64_t page_bytes = 4096;

uint64_t round_to_page(uint64_t bytes) { return (bytes + page_bytes - 1) / page_bytes * page_bytes; }

// Sets the file's memory policy through a mapping made only for that, before
// any page exists, then reserves every page: shmem allocates a file's pages
// by the file's shared policy, so posix_fallocate puts them on `node` (and a
// full tmpfs fails here instead of raising SIGBUS at first touch).
plx_status size_on_node(int fd, uint64_t bytes, int32_t node) {
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return core::fail_errno(errno, "ftruncate of the slots' memfd");
  void *map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return core::fail_errno(errno, "mmap of the slots' memfd");
  if (core::bind_memory_to_node(map, bytes, node) != PLX_OK)
    core::log_info("shm-native: slots not bound to NUMA node {}: {}", node, core::last_message());
  ::munmap(map, bytes);
  const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (err != 0) return core::fail_errno(err, fmt::format("reserving {} bytes of slots", bytes));
  return PLX_OK;
}

// Opens a peer's descriptor through /proc; -1 with the failure set.
int open_proc_fd(int32_t pid, int32_t fd) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const int own = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (own < 0)
    core::fail(PLX_ERR_UNSUPPORTED, "shm-native: cannot open {} ({}): slots cannot grow and pool "
               "buffers are copied", path, std::strerror(errno));
  return own;
}

}  // namespace

uint64_t slot_size_for(uint64_t want, uint64_t min_bytes, uint64_t cap_bytes) {
  uint64_t size = std::min(min_bytes, cap_bytes);
  while (size < want && size < cap_bytes) size = std::min(cap_bytes, round_to_page(size + size / 2));
  return size;
}

int32_t node_of_range(const void *addr, size_t bytes) {
  const auto *base = static_cast<const uint8_t *>(addr);
  const size_t last = (bytes - 1) / page_bytes * page_bytes;
  const int first = core::memory_node_of(base);
  if (core::memory_node_of(base + last / 2 / page_bytes * page_bytes) != first) return -1;
  return core::memory_node_of(base + last) == first ? first : -1;
}

Placement place_existing(void *addr, size_t bytes, int32_t node) {
  if (core::bind_memory_to_node(addr, bytes, node) != PLX_OK)
    core::log_info("shm-native: segment not moved to NUMA node {}: {}", node, core::last_message());
  return {node, node_of_range(addr, bytes)};
}

void write_slot_header(core::ShmSegment &segment, uint32_t generation, uint64_t slot_bytes) {
  new (segment.data()) SlotHeader{SlotHeader::magic_value, generation, slot_bytes, ::getpid()};
}

plx_status create_slot_memfd(uint32_t generation, uint64_t slot_bytes, int32_t node,
                             core::ShmSegment *out, Placement *where) {
  const uint64_t bytes = slot_file_bytes(slot_bytes);
  const int fd = ::memfd_create("plexus-slots", MFD_CLOEXEC);
  if (fd < 0) return core::fail_errno(errno, "memfd_create for the slots");
  plx_status s = size_on_node(fd, bytes, node);
  if (s == PLX_OK) s = core::ShmSegment::from_fd(fd, bytes, out);  // populated: every page faulted
  ::close(fd);
  if (s != PLX_OK) return s;
  write_slot_header(*out, generation, slot_bytes);
  *where = {node, node_of_range(out->data(), bytes)};
  return PLX_OK;
}

plx_status create_slot_named(const char *name, uint64_t slot_bytes, int32_t node, core::ShmSegment *out,
                             Placement *where) {
  const uint64_t bytes = slot_file_bytes(slot_bytes);
  if (plx_status s = core::ShmSegment::create(name, bytes, out)) return s;
  *where = place_existing(out->data(), bytes, node);
  write_slot_header(*out, 0, slot_bytes);
  return PLX_OK;
}

plx_status check_slot_header(const core::ShmSegment &segment, uint32_t generation, uint64_t slot_bytes) {
  const auto &h = *static_cast<const SlotHeader *>(segment.data());
  if (segment.size() >= slot_file_bytes(slot_bytes) && h.magic == SlotHeader::magic_value &&
      h.generation == generation && h.slot_bytes == slot_bytes)
    return PLX_OK;
  return core::fail(PLX_ERR_INTERNAL, "shm-native: a peer's slot segment is not generation {} of {} "
                    "bytes a slot (its header says generation {}, {} bytes, magic {:#x})",
                    generation, slot_bytes, h.generation, h.slot_bytes, h.magic);
}

// Opening the /proc link reopens the owner's file itself; the header then
// proves it is the generation announced (the number may have been reused).
plx_status map_peer_slots(int32_t pid, const SlotSegmentRef &ref, core::ShmSegment *out) {
  const int own = open_proc_fd(pid, ref.fd);
  if (own < 0) return PLX_ERR_UNSUPPORTED;
  const plx_status s = core::ShmSegment::from_fd(own, slot_file_bytes(ref.slot_bytes), out);
  ::close(own);
  if (s != PLX_OK) return s;
  return check_slot_header(*out, ref.generation, ref.slot_bytes);
}

void StagingReport::placed(const Placement &where, uint64_t slot_bytes, bool growable) {
  std::lock_guard lock(mutex_);
  where_ = where, slot_bytes_ = slot_bytes, growable_ = growable;
}

void StagingReport::grew(const Placement &where, uint64_t slot_bytes) {
  std::lock_guard lock(mutex_);
  where_ = where, slot_bytes_ = slot_bytes;
  ++growths_;
}

namespace {

template <typename T>
void nullable(core::JsonWriter &json, std::string_view name, bool known, T value) {
  json.key(name);
  if (known) json.value(value);
  else json.null();
}

}  // namespace

void StagingReport::write_json(core::JsonWriter &json) const {
  std::lock_guard lock(mutex_);
  const bool made = growable_ >= 0;
  json.begin_object().field("slot_min_bytes", min_bytes_).field("slot_max_bytes", cap_bytes_);
  nullable(json, "slot_bytes", made, slot_bytes_);
  json.field("growths", growths_);
  nullable(json, "growable", made, growable_ == 1);
  nullable(json, "numa_node", made, where_.node);
  nullable(json, "placed_node", where_.placed >= 0, where_.placed);
  json.field("placement", made ? where_.state() : "no communicator yet").end_object();
}

}  // namespace plexus::shm_native
