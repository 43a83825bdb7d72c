"""ctypes declarations of libplexus.so.1: every public function of
abi/plexus/plexus.h and every struct of abi/plexus/types.h.

The library is found, in this order, at:
  1. $PLEXUS_LIBRARY (a path to libplexus.so.1);
  2. $PLEXUS_BUILD_DIR/loader/libplexus.so.1 (a build tree, as scripts/ use);
  3. <repository>/build/loader/libplexus.so.1 when this package is used from
     the source tree (examples/python/plexus);
  4. the system loader: libplexus.so.1 in the ld.so search path (after
     `meson install`).
"""
import ctypes
import os
from pathlib import Path

# Status codes (types.h).
PLX_OK = 0
PLX_IN_PROGRESS = 1
PLX_ERR_INVALID_ARGUMENT = -1
PLX_ERR_INVALID_USAGE = -2
PLX_ERR_UNSUPPORTED = -3
PLX_ERR_NOT_FOUND = -4
PLX_ERR_INCOMPATIBLE_ABI = -5
PLX_ERR_OUT_OF_MEMORY = -6
PLX_ERR_TIMEOUT = -7
PLX_ERR_PEER_LOST = -8
PLX_ERR_ABORTED = -9
PLX_ERR_DEVICE = -10
PLX_ERR_SYSTEM = -11
PLX_ERR_REMOTE = -12
PLX_ERR_INTERNAL = -13

PLX_UNIQUE_ID_BYTES = 256
PLX_OP_STATS_ALGO_SLOTS = 16
PLX_MEM_TAG_ALL = 0xFFFFFFFF
PLX_SPLIT_NO_COLOR = -1
PLX_COLL_FLAG_NO_CONTRIBUTION = 1 << 0
PLX_FORMAT_TEXT = 0
PLX_FORMAT_JSON = 1

SONAME = "libplexus.so.1"

c_status = ctypes.c_int32
c_handle = ctypes.c_void_p
c_size_p = ctypes.POINTER(ctypes.c_size_t)


class _Versioned(ctypes.Structure):
    """A struct that crosses the ABI: struct_size is set to this Python
    layout's size on construction, the way PLX_*_INIT does in C; keyword
    arguments set fields, the rest are zero."""

    def __init__(self, **fields):
        super().__init__()
        self.struct_size = ctypes.sizeof(type(self))
        for name, value in fields.items():
            setattr(self, name, value)


class UniqueIdStruct(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint8 * PLX_UNIQUE_ID_BYTES)]


class CollOptions(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("wire_dtype", ctypes.c_int32), ("algorithm", ctypes.c_int32),
                ("reserved", ctypes.c_uint64 * 2)]

    def __init__(self, **fields):
        fields.setdefault("wire_dtype", -1)  # -1: the buffer's own dtype
        super().__init__(**fields)


class CommConfig(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("cuda_device", ctypes.c_int32), ("timeout_ms", ctypes.c_int32),
                ("init_timeout_ms", ctypes.c_int32), ("reserved0", ctypes.c_int32),
                ("name", ctypes.c_char_p)]

    def __init__(self, **fields):
        fields.setdefault("cuda_device", -1)  # -1: current device / none
        super().__init__(**fields)


class MemAllocParams(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("kind", ctypes.c_int32),
                ("bytes", ctypes.c_uint64), ("alignment", ctypes.c_uint64),
                ("tag", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class MemStats(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("kind", ctypes.c_int32),
                ("bytes_in_use", ctypes.c_uint64), ("bytes_requested", ctypes.c_uint64),
                ("bytes_reserved", ctypes.c_uint64), ("bytes_peak", ctypes.c_uint64),
                ("largest_free_block", ctypes.c_uint64), ("alloc_count", ctypes.c_uint64),
                ("free_count", ctypes.c_uint64), ("segment_count", ctypes.c_uint64),
                ("defragment_count", ctypes.c_uint64), ("bytes_released", ctypes.c_uint64),
                ("fragmentation", ctypes.c_double)]


class OpStats(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("coll", ctypes.c_int32),
                ("calls", ctypes.c_uint64), ("bytes", ctypes.c_uint64),
                ("time_ns", ctypes.c_uint64), ("last_algorithm", ctypes.c_int32),
                ("reserved0", ctypes.c_int32),
                ("algorithm_calls", ctypes.c_uint64 * PLX_OP_STATS_ALGO_SLOTS)]


class TopologyInfo(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("gpu_count", ctypes.c_int32),
                ("numa_node_count", ctypes.c_int32), ("core_count", ctypes.c_int32),
                ("pu_count", ctypes.c_int32), ("p2p_all_pairs", ctypes.c_int32),
                ("nvlink_all_pairs", ctypes.c_int32), ("reserved0", ctypes.c_int32)]


class QueueConfig(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("writer_rank", ctypes.c_int32),
                ("slot_bytes", ctypes.c_uint64), ("slot_count", ctypes.c_uint32),
                ("flags", ctypes.c_uint32)]


class BackendProps(_Versioned):
    _fields_ = [("struct_size", ctypes.c_uint32), ("abi_major", ctypes.c_uint16),
                ("abi_minor", ctypes.c_uint16), ("name", ctypes.c_char_p),
                ("path", ctypes.c_char_p), ("build_info", ctypes.c_char_p),
                ("version_major", ctypes.c_int32), ("version_minor", ctypes.c_int32),
                ("version_patch", ctypes.c_int32), ("threading", ctypes.c_int32),
                ("capabilities", ctypes.c_uint64), ("mem_kind_mask", ctypes.c_uint32),
                ("alloc_kind_mask", ctypes.c_uint32), ("dtype_mask", ctypes.c_uint32),
                ("reduce_op_mask", ctypes.c_uint32)]


# The sizes types.h and plexus.h pin with static assertions: a mismatch here
# is a bug in this file, caught at import rather than as corrupted memory.
_PINNED_SIZES = {UniqueIdStruct: 256, CollOptions: 32, CommConfig: 32, MemAllocParams: 32,
                 MemStats: 96, OpStats: 168, TopologyInfo: 32, QueueConfig: 24,
                 BackendProps: 72}
for _struct, _size in _PINNED_SIZES.items():
    assert ctypes.sizeof(_struct) == _size, f"{_struct.__name__}: layout differs from types.h"

_P = ctypes.POINTER
_u64, _i32, _u32, _vp = ctypes.c_uint64, ctypes.c_int32, ctypes.c_uint32, ctypes.c_void_p
_opts = _P(CollOptions)

# name: (restype, [argtypes]), in the order of plexus.h.
_SIGNATURES = {
    "plx_version": (c_status, [_P(_i32), _P(_i32), _P(_i32)]),
    "plx_version_string": (ctypes.c_char_p, []),
    "plx_status_string": (ctypes.c_char_p, [c_status]),
    "plx_last_error": (ctypes.c_char_p, []),
    "plx_dtype_string": (ctypes.c_char_p, [_i32]),
    "plx_dtype_size": (ctypes.c_size_t, [_i32]),
    "plx_reduce_op_string": (ctypes.c_char_p, [_i32]),
    "plx_coll_string": (ctypes.c_char_p, [_i32]),
    "plx_algorithm_string": (ctypes.c_char_p, [_i32]),
    "plx_backend_open": (c_status, [ctypes.c_char_p, _P(c_handle)]),
    "plx_backend_close": (c_status, [c_handle]),
    "plx_backend_props_get": (c_status, [c_handle, _P(BackendProps)]),
    "plx_load_report": (c_status, [c_handle, _i32, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
    "plx_plugins_describe": (c_status, [_i32, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
    "plx_backend_topology": (c_status, [c_handle, _P(TopologyInfo), ctypes.c_char_p,
                                        ctypes.c_size_t, c_size_p]),
    "plx_get_unique_id": (c_status, [c_handle, _P(UniqueIdStruct)]),
    "plx_comm_init": (c_status, [c_handle, _P(UniqueIdStruct), _i32, _i32, _P(CommConfig),
                                 _P(c_handle)]),
    "plx_comm_split": (c_status, [c_handle, _i32, _i32, _P(CommConfig), _P(c_handle)]),
    "plx_comm_destroy": (c_status, [c_handle]),
    "plx_comm_abort": (c_status, [c_handle]),
    "plx_comm_async_status": (c_status, [c_handle, _P(c_status)]),
    "plx_comm_rank": (c_status, [c_handle, _P(_i32)]),
    "plx_comm_size": (c_status, [c_handle, _P(_i32)]),
    "plx_comm_device": (c_status, [c_handle, _P(_i32)]),
    "plx_comm_stats": (c_status, [c_handle, _i32, _P(OpStats)]),
    "plx_all_reduce": (c_status, [c_handle, _vp, _vp, _u64, _i32, _i32, _opts, _vp]),
    "plx_reduce": (c_status, [c_handle, _vp, _vp, _u64, _i32, _i32, _i32, _opts, _vp]),
    "plx_broadcast": (c_status, [c_handle, _vp, _vp, _u64, _i32, _i32, _opts, _vp]),
    "plx_all_gather": (c_status, [c_handle, _vp, _vp, _u64, _i32, _opts, _vp]),
    "plx_gather": (c_status, [c_handle, _vp, _vp, _u64, _P(_u64), _i32, _i32, _opts, _vp]),
    "plx_reduce_scatter": (c_status, [c_handle, _vp, _vp, _u64, _i32, _i32, _opts, _vp]),
    "plx_barrier": (c_status, [c_handle, _opts, _vp]),
    "plx_send": (c_status, [c_handle, _vp, _u64, _i32, _i32, _opts, _vp]),
    "plx_recv": (c_status, [c_handle, _vp, _u64, _i32, _i32, _opts, _vp]),
    "plx_group_start": (c_status, [c_handle]),
    "plx_group_end": (c_status, [c_handle]),
    "plx_mem_alloc": (c_status, [c_handle, _P(MemAllocParams), _P(_vp)]),
    "plx_mem_free": (c_status, [c_handle, _vp]),
    "plx_mem_register": (c_status, [c_handle, _vp, _u64, _P(c_handle)]),
    "plx_mem_deregister": (c_status, [c_handle, c_handle]),
    "plx_mem_stats_get": (c_status, [c_handle, _i32, _u32, _P(MemStats)]),
    "plx_mem_defragment": (c_status, [c_handle, _i32, _P(_u64)]),
    "plx_mem_trim": (c_status, [c_handle, _i32, _u64, _P(_u64)]),
    "plx_mem_pressure": (c_status, [c_handle, _i32, _P(_i32)]),
    "plx_queue_create": (c_status, [c_handle, _P(QueueConfig), _P(c_handle)]),
    "plx_queue_enqueue": (c_status, [c_handle, _vp, _u64, _i32]),
    "plx_queue_dequeue": (c_status, [c_handle, _vp, _u64, _P(_u64), _i32]),
    "plx_queue_destroy": (c_status, [c_handle]),
}


def _candidates():
    """Where to look for the library, in order (see the module docstring)."""
    if os.environ.get("PLEXUS_LIBRARY"):
        yield os.environ["PLEXUS_LIBRARY"]
        return  # named explicitly: never fall back to another copy
    if os.environ.get("PLEXUS_BUILD_DIR"):
        yield str(Path(os.environ["PLEXUS_BUILD_DIR"]) / "loader" / SONAME)
    in_tree = Path(__file__).resolve().parents[3] / "build" / "loader" / SONAME
    if in_tree.exists():
        yield str(in_tree)
    yield SONAME


def _declare(lib):
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def load():
    """Load libplexus.so.1 from the first candidate that loads; OSError with
    every place tried when none does."""
    tried = []
    for path in _candidates():
        try:
            return _declare(ctypes.CDLL(path))
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise OSError("plexus: cannot load libplexus.so.1; tried:\n  " + "\n  ".join(tried) +
                  "\nSet PLEXUS_LIBRARY to its path (e.g. build/loader/libplexus.so.1) or run "
                  "`meson install -C build`.")


_lib = None


def lib():
    """The loaded library (loaded on first use, so that importing plexus
    never fails just because the library is elsewhere)."""
    global _lib
    if _lib is None:
        _lib = load()
    return _lib
