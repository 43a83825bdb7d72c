#include "core/shm_segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <utility>

#include "core/random.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

constexpr mode_t kPrivateMode = 0600;
constexpr size_t kPurposeMaxChars = 64;
// open_or_create() retries while a name is created and removed under it;
// more than a handful of rounds means something else is churning the name.
constexpr int kRaceAttempts = 100;

std::string describe(const std::string &name) { return name.empty() ? "anonymous segment" : name; }

plx_status check_name(std::string_view name) {
  // glibc wants "/x" with no other slash; NAME_MAX bounds the part after '/'.
  const bool ok = name.size() >= 2 && name.front() == '/' &&
                  name.find_first_of(std::string_view("/\0", 2), 1) == std::string_view::npos &&
                  name.size() - 1 <= NAME_MAX;
  if (ok) return PLX_OK;
  return fail(PLX_ERR_INVALID_ARGUMENT,
              "invalid shared memory name '{}': want '/' then 1 to {} characters, no '/'", name,
              NAME_MAX);
}

// Reserves every page now: a full tmpfs fails here with ENOSPC (reported as
// PLX_ERR_OUT_OF_MEMORY) instead of raising SIGBUS at a rank's first touch.
plx_status reserve(int fd, size_t bytes, const std::string &what) {
  if (bytes == 0)
    return fail(PLX_ERR_INVALID_ARGUMENT, "{}: a segment needs at least 1 byte", what);
  // A memfd has no size limit: fallocate would take pages until the machine
  // runs out and its OOM killer picks some process (found by fuzzing
  // plx_mem_alloc). More than physical memory can never be reserved.
  const uint64_t physical = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                            static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (bytes > physical)
    return fail(PLX_ERR_OUT_OF_MEMORY, "{}: {} bytes asked, more than the machine's {} bytes of memory",
                what, bytes, physical);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
    return fail_errno(errno, "ftruncate " + what);
  const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (err != 0) return fail_errno(err, fmt::format("reserving {} bytes for {}", bytes, what));
  return PLX_OK;
}

// Reads the size of a named segment that must be private to this user.
plx_status private_size(const std::string &name, int fd, size_t *bytes) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno(errno, "fstat " + name);
  if (st.st_uid != ::geteuid())
    return fail(PLX_ERR_INVALID_ARGUMENT,
                "shared memory segment {} is owned by uid {}, not by this process's uid {}", name,
                st.st_uid, ::geteuid());
  if ((st.st_mode & 077) != 0)
    return fail(PLX_ERR_INVALID_ARGUMENT,
                "shared memory segment {} has mode {:04o}, which lets group or others in; plexus "
                "only opens segments private to their owner (0600)",
                name, st.st_mode & 07777);
  *bytes = static_cast<size_t>(st.st_size);
  return PLX_OK;
}

}  // namespace

ShmSegment::~ShmSegment() { reset(); }

ShmSegment::ShmSegment(ShmSegment &&other) noexcept { *this = std::move(other); }

ShmSegment &ShmSegment::operator=(ShmSegment &&other) noexcept {
  if (this == &other) return *this;
  reset();
  name_ = std::exchange(other.name_, {});
  fd_ = std::exchange(other.fd_, -1);
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  created_ = std::exchange(other.created_, false);
  unlinked_ = std::exchange(other.unlinked_, false);
  return *this;
}

void ShmSegment::reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  if (created_ && !unlinked_) ::shm_unlink(name_.c_str());
  name_.clear();
  fd_ = -1;
  data_ = nullptr;
  size_ = 0;
  created_ = unlinked_ = false;
}

std::string ShmSegment::make_name(std::string_view purpose) {
  const std::string suffix = random_hex(8);
  if (suffix.empty()) return {};
  std::string cleaned(purpose.substr(0, kPurposeMaxChars));
  for (char &c : cleaned) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    if (!keep) c = '_';
  }
  return fmt::format("/plexus-{}-{}-{}-{}", ::geteuid(), ::getpid(), cleaned, suffix);
}

plx_status ShmSegment::create(std::string_view name, size_t bytes, ShmSegment *out) {
  if (plx_status s = check_name(name); s != PLX_OK) return s;
  std::string path(name);
  const int fd = ::shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, kPrivateMode);
  if (fd < 0) return fail_errno(errno, "shm_open " + path);
  return finish_create(std::move(path), fd, bytes, out);
}

plx_status ShmSegment::open(std::string_view name, size_t expected_min_bytes, ShmSegment *out) {
  if (plx_status s = check_name(name); s != PLX_OK) return s;
  std::string path(name);
  const int fd = ::shm_open(path.c_str(), O_RDWR, 0);
  if (fd < 0 && errno == ENOENT)
    return fail(PLX_ERR_NOT_FOUND, "shared memory segment {} does not exist", path);
  if (fd < 0) return fail_errno(errno, "shm_open " + path);
  return finish_open(std::move(path), fd, expected_min_bytes, false, out);
}

plx_status ShmSegment::open_or_create(std::string_view name, size_t create_bytes,
                                      size_t open_min_bytes, ShmSegment *out, bool *created) {
  if (plx_status s = check_name(name); s != PLX_OK) return s;
  const std::string path(name);
  for (int attempt = 0; attempt < kRaceAttempts; ++attempt) {
    int fd = ::shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, kPrivateMode);
    *created = fd >= 0;
    if (*created) return finish_create(path, fd, create_bytes, out);
    if (errno != EEXIST) return fail_errno(errno, "shm_open " + path);
    fd = ::shm_open(path.c_str(), O_RDWR, 0);
    if (fd >= 0) return finish_open(path, fd, open_min_bytes, true, out);
    if (errno != ENOENT) return fail_errno(errno, "shm_open " + path);
    // Removed between our two calls: race to create it again.
  }
  return fail(PLX_ERR_SYSTEM,
              "shared memory segment {} kept being created and removed while "
              "opening it ({} attempts)",
              path, kRaceAttempts);
}

plx_status ShmSegment::create_memfd(std::string_view debug_name, size_t bytes, ShmSegment *out) {
  const std::string label(debug_name.substr(0, 200));  // the kernel allows 249 bytes
  const int fd = ::memfd_create(label.c_str(), MFD_CLOEXEC);
  if (fd < 0) return fail_errno(errno, "memfd_create " + label);
  return finish_create({}, fd, bytes, out);
}

plx_status ShmSegment::from_fd(int fd, size_t bytes, ShmSegment *out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno(errno, fmt::format("fstat fd {}", fd));
  // Mapping past the end of the file would turn into SIGBUS on first touch.
  if (bytes == 0 || static_cast<size_t>(st.st_size) < bytes)
    return fail(PLX_ERR_INVALID_ARGUMENT, "fd {} has {} bytes, asked to map {}", fd, st.st_size,
                bytes);
  const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return fail_errno(errno, fmt::format("dup fd {}", fd));
  return adopt({}, own, bytes, false, out);
}

plx_status ShmSegment::unlink() {
  if (name_.empty() || unlinked_) return PLX_OK;
  if (::shm_unlink(name_.c_str()) != 0 && errno != ENOENT)
    return fail_errno(errno, "shm_unlink " + name_);
  unlinked_ = true;
  return PLX_OK;
}

// Sizes and maps a descriptor fresh from shm_open(O_CREAT) or memfd_create;
// on failure removes the name and closes, so nothing leaks.
plx_status ShmSegment::finish_create(std::string name, int fd, size_t bytes, ShmSegment *out) {
  plx_status s = reserve(fd, bytes, describe(name));
  if (s == PLX_OK) return adopt(std::move(name), fd, bytes, true, out);
  if (!name.empty()) ::shm_unlink(name.c_str());
  ::close(fd);
  return s;
}

// Checks and maps a descriptor from shm_open of an existing name; closes it
// on failure. retry_small: a segment under min_bytes is one whose creator
// has not sized it yet (PLX_IN_PROGRESS), not an error.
plx_status ShmSegment::finish_open(std::string name, int fd, size_t min_bytes, bool retry_small,
                                   ShmSegment *out) {
  size_t bytes = 0;
  plx_status s = private_size(name, fd, &bytes);
  const size_t needed = std::max<size_t>(min_bytes, 1);
  if (s == PLX_OK && bytes < needed)
    s = retry_small ? PLX_IN_PROGRESS
                    : fail(PLX_ERR_INVALID_ARGUMENT,
                           "shared memory segment {} has {} bytes, expected at least {}", name,
                           bytes, needed);
  if (s == PLX_OK) return adopt(std::move(name), fd, bytes, false, out);
  ::close(fd);
  return s;
}

// Maps fd and hands it to *out. MAP_POPULATE faults the pages in now, so the
// first collective does not pay for it.
plx_status ShmSegment::adopt(std::string name, int fd, size_t bytes, bool created,
                             ShmSegment *out) {
  void *data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (data == MAP_FAILED) {
    const plx_status s =
        fail_errno(errno, fmt::format("mmap {} bytes of {}", bytes, describe(name)));
    if (created && !name.empty()) ::shm_unlink(name.c_str());
    ::close(fd);
    return s;
  }
  ShmSegment segment;
  segment.name_ = std::move(name);
  segment.fd_ = fd;
  segment.data_ = data;
  segment.size_ = bytes;
  segment.created_ = created && !segment.name_.empty();
  *out = std::move(segment);
  return PLX_OK;
}

}  // namespace plexus::core
