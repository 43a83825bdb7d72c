// What becomes of a handle's object when it is closed or destroyed: it is
// destroyed (everything it owns is freed) and its memory goes back through
// its type's operator delete (handle_memory.hpp), which clears its magic
// and never hands its address out again, so PLX-L-20's check of a stale
// handle reads no freed memory and never reaches another object.
#pragma once

namespace plexus::loader {

// T is plx_backend, plx_comm or plx_queue (PLX_HANDLE_MEMORY).
template <typename T>
void retire(T *object) {
  delete object;
}

}  // namespace plexus::loader
