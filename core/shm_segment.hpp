// POSIX shared memory, mapped: named segments (shm_open) that ranks open by
// name, and anonymous ones (memfd) whose descriptor is passed to peers.
//
// A segment is reserved in full when it is created (posix_fallocate and a
// populated mapping), so a full /dev/shm fails create() with
// PLX_ERR_OUT_OF_MEMORY instead of killing a rank with SIGBUS later.
//
// Names are private to their owner: they are unguessable (make_name), created
// with mode 0600 and O_EXCL, and open() refuses a segment that another user
// owns or that group or others may access, so a squatter cannot hand a rank
// memory it controls.
//
// Lifetime of the name: a creator owns its name until unlink(). Destroying a
// creator that still owns its name unlinks it, so no name outlives the job
// even on an error path; destroying an opener never unlinks (the creator or
// the protocol on top decides when the name goes). The mapping lives until
// the object is destroyed, whatever happened to the name.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "plexus/types.h"

namespace plexus::core {

class ShmSegment {
 public:
  ShmSegment() = default;
  ~ShmSegment();
  ShmSegment(ShmSegment &&other) noexcept;
  ShmSegment &operator=(ShmSegment &&other) noexcept;
  ShmSegment(const ShmSegment &) = delete;
  ShmSegment &operator=(const ShmSegment &) = delete;

  // "/plexus-<uid>-<pid>-<purpose>-<16 random hex>"; purpose is cut to 64
  // characters and anything but [A-Za-z0-9_.-] becomes '_'. "" when the
  // kernel gave no random bytes (create() then refuses the name).
  static std::string make_name(std::string_view purpose);

  // Creates `name` (O_EXCL, mode 0600) with `bytes` bytes, reserved and
  // mapped. An existing name is PLX_ERR_SYSTEM (EEXIST, the message names
  // it); no space is PLX_ERR_OUT_OF_MEMORY. Nothing is left behind on error.
  static plx_status create(std::string_view name, size_t bytes, ShmSegment *out);

  // Opens and maps all of an existing segment. PLX_ERR_NOT_FOUND when the
  // name does not exist; PLX_ERR_INVALID_ARGUMENT when another user owns it,
  // its mode lets group or others in, or it has fewer than
  // expected_min_bytes bytes (or none).
  static plx_status open(std::string_view name, size_t expected_min_bytes, ShmSegment *out);

  // The first caller creates `name` with create_bytes bytes (*created =
  // true); later callers open it (*created = false), checked as open() does.
  // PLX_IN_PROGRESS, with no error set, when the segment exists but its
  // creator has not yet sized it to open_min_bytes: call again shortly.
  static plx_status open_or_create(std::string_view name, size_t create_bytes,
                                   size_t open_min_bytes, ShmSegment *out, bool *created);

  // An anonymous segment (memfd_create; debug_name shows in /proc/<pid>/fd).
  static plx_status create_memfd(std::string_view debug_name, size_t bytes, ShmSegment *out);
  // Maps `bytes` bytes of a descriptor received from a peer; fd is dup'ed,
  // the caller keeps its own.
  static plx_status from_fd(int fd, size_t bytes, ShmSegment *out);

  // Removes the name; the mapping stays valid. Idempotent, and a name that
  // is already gone is not an error. PLX_OK for anonymous segments.
  plx_status unlink();

  void *data() const { return data_; }
  size_t size() const { return size_; }
  // "" for anonymous segments; kept after unlink() for messages.
  const std::string &name() const { return name_; }
  int fd() const { return fd_; }
  bool valid() const { return data_ != nullptr; }

 private:
  static plx_status finish_create(std::string name, int fd, size_t bytes, ShmSegment *out);
  static plx_status finish_open(std::string name, int fd, size_t min_bytes, bool retry_small,
                                ShmSegment *out);
  static plx_status adopt(std::string name, int fd, size_t bytes, bool created, ShmSegment *out);
  void reset();

  std::string name_;
  int fd_ = -1;
  void *data_ = nullptr;
  size_t size_ = 0;
  bool created_ = false;   // this object made the name, so it removes it
  bool unlinked_ = false;  // unlink() ran; the name is not ours any more
};

}  // namespace plexus::core
