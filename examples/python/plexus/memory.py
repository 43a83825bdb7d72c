"""Pool allocations, registrations and queues of a communicator (the
classes Communicator.mem_alloc, .register and .queue return)."""
import ctypes

from . import _lib
from .errors import InvalidArgument, check
from .types import MemKind


class MemBlock:
    """A block from the communicator's pool (plx_mem_alloc). Freed by
    free(), by leaving a `with` block, or when garbage-collected. Host kinds
    (SHARED_HOST, PINNED_HOST) can be viewed as a NumPy array with
    as_array(); the views keep the block alive. A block must not outlive
    its communicator."""

    def __init__(self, comm, ptr, nbytes, kind, tag):
        self._comm, self.ptr, self.nbytes, self.kind, self.tag = comm, ptr, nbytes, kind, tag

    def as_array(self, dtype="uint8", shape=None):
        """A NumPy view of the block (host kinds only): `shape` defaults to
        as many elements of dtype as fit."""
        import numpy as np
        if self.ptr is None:
            raise InvalidArgument("MemBlock.as_array: the block was freed")
        if self.kind == MemKind.DEVICE:
            raise InvalidArgument("MemBlock.as_array: a device block has no host view; "
                                  "wrap .ptr with your CUDA library")
        dtype = np.dtype(dtype)
        shape = (self.nbytes // dtype.itemsize,) if shape is None else shape
        raw = (ctypes.c_uint8 * self.nbytes).from_address(self.ptr)
        raw._plexus_block = self  # the view keeps the block (and its pool) alive
        view = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)))
        return view.reshape(shape)

    def free(self):
        """Return the block to its pool; a second call does nothing."""
        if self.ptr is not None and self._comm._handle:
            ptr, self.ptr = self.ptr, None
            check(_lib.lib().plx_mem_free(self._comm._handle, ptr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()

    def __del__(self):
        try:
            self.free()
        except Exception:  # nothing can be raised from a finaliser
            pass

    def __repr__(self):
        return f"MemBlock({self.kind.name.lower()}, {self.nbytes} bytes at {self.ptr:#x})" \
            if self.ptr else "MemBlock(freed)"


class Registration:
    """A caller's buffer registered with the communicator (plx_mem_register):
    an optimisation, never a requirement. Keeps the buffer alive until
    deregister()."""

    def __init__(self, comm, handle, obj):
        self._comm, self._handle, self._obj = comm, handle, obj

    def deregister(self):
        if self._handle is not None and self._comm._handle:
            handle, self._handle, self._obj = self._handle, None, None
            check(_lib.lib().plx_mem_deregister(self._comm._handle, handle))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deregister()

    def __del__(self):
        try:
            self.deregister()
        except Exception:
            pass


class Queue:
    """A single-writer, many-reader ring of byte messages in shared memory
    (plx_queue_*). The writer rank calls enqueue(), every other rank
    dequeue(). Timeouts in ms: 0 = do not wait, -1 = the communicator's."""

    def __init__(self, comm, handle, slot_bytes):
        self._comm, self._handle = comm, handle
        self._buf = ctypes.create_string_buffer(max(slot_bytes, 4096))

    def enqueue(self, message, timeout_ms=-1):
        """Append a message (bytes-like or a contiguous NumPy array). True
        when written; False only with timeout_ms 0 and the ring full."""
        ptr, nbytes, keep = _message_pointer(message)
        status = check(_lib.lib().plx_queue_enqueue(self._live(), ptr, nbytes, timeout_ms))
        del keep
        return status == _lib.PLX_OK

    def dequeue(self, timeout_ms=-1):
        """The next message as bytes; None only with timeout_ms 0 and
        nothing there. The receive buffer grows to fit large messages."""
        lib, needed = _lib.lib(), ctypes.c_uint64(0)
        while True:
            status = lib.plx_queue_dequeue(self._live(), self._buf, len(self._buf),
                                           ctypes.byref(needed), timeout_ms)
            if status == _lib.PLX_ERR_INVALID_ARGUMENT and needed.value > len(self._buf):
                self._buf = ctypes.create_string_buffer(needed.value)  # nothing was consumed
                continue
            if check(status) == _lib.PLX_IN_PROGRESS:
                return None
            return self._buf.raw[:needed.value]

    def destroy(self):
        if self._handle is not None:
            handle, self._handle = self._handle, None
            check(_lib.lib().plx_queue_destroy(handle))

    def _live(self):
        if self._handle is None:
            raise InvalidArgument("Queue: used after destroy()")
        return self._handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __del__(self):
        try:
            self.destroy()
        except Exception:
            pass


def _message_pointer(message):
    """(address, bytes, object to keep alive) of a message; contiguous
    NumPy arrays are passed without a copy, other bytes-likes are copied."""
    if hasattr(message, "ctypes") and getattr(message, "flags", None) is not None \
            and message.flags.c_contiguous:
        return message.ctypes.data, message.nbytes, message
    data = bytes(memoryview(message).cast("B"))
    buf = ctypes.create_string_buffer(data, len(data))
    return ctypes.addressof(buf), len(data), buf
