// Memory for the objects behind handles (plx_backend, plx_comm, plx_queue).
//
// PLX-L-20 promises that a handle that is not live is rejected. Deleting
// the object into malloc would make that check a read of freed memory, and
// worse, a new object could get the same address: a stale handle would then
// reach another communicator. So these objects live in a range of addresses
// reserved for them (opened 64 KiB at a time), carved in order and never
// handed out twice. When an
// object goes, its magic (its first 8 bytes) is cleared, and a page whose
// objects have all gone is given back to the system: it still reads as
// zeros, so a stale handle into it finds no magic, and no memory is kept.
#pragma once

#include <cstddef>

namespace plexus::loader {

// Zeroed memory of `bytes` at an address no object had before, 64-byte
// aligned; from the heap (kept forever, as before) once the reserved range
// is used up or could not be reserved. Throws std::bad_alloc as new would.
void *take_handle_memory(size_t bytes);
// After the object's destructor: its magic reads 0 from now on; a page no
// live object uses any more returns to the system.
void give_back_handle_memory(void *object, size_t bytes);

// Class-level new and delete for a handle object type.
#define PLX_HANDLE_MEMORY                                                                          \
  static void *operator new(size_t bytes) { return plexus::loader::take_handle_memory(bytes); }  \
  static void operator delete(void *object, size_t bytes) {                                     \
    plexus::loader::give_back_handle_memory(object, bytes);                                      \
  }

}  // namespace plexus::loader
