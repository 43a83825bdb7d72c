// What becomes of a handle's object when it is closed or destroyed.
//
// PLX-L-20 promises that a handle that is not live is rejected. Deleting
// the object would make that a read of freed memory (an error ASan reports,
// and glibc's tcache overwrites the magic anyway), and worse, a new object
// could get the same address: a stale handle would then reach another
// communicator. So the object is destroyed (everything it owns is freed)
// but its memory stays allocated, with a magic of 0, for the life of the
// process: a few hundred bytes per communicator, none reused.
#pragma once

#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

namespace plexus::loader {

// T's first member is its uint64_t magic (plx_backend, plx_comm, plx_queue).
template <typename T>
void retire(T *object) {
  static std::mutex mutex;
  static auto *graveyard = new std::vector<void *>();  // keeps them reachable for LeakSanitizer
  object->~T();
  new (static_cast<void *>(object)) uint64_t(0);
  std::lock_guard lock(mutex);
  graveyard->push_back(object);
}

}  // namespace plexus::loader
