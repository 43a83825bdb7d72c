"""Backends, unique ids and communicators: the host API of plexus.h in
Python. Collectives take NumPy arrays or PyTorch tensors (CPU or CUDA) and
return the output; see buffers.py for how they are passed."""
import ctypes
import json as _json
from dataclasses import dataclass

from . import _lib
from .errors import InvalidArgument, check
from .types import (CAPABILITIES, Algorithm, Coll, DType, MemKind, ReduceOp, Threading,
                    mask_names, to_enum)

_FORMATS = {"text": _lib.PLX_FORMAT_TEXT, "json": _lib.PLX_FORMAT_JSON}


def _read_text(fn, *args, fmt="text"):
    """Call a report function with the two-call buffer protocol (ask the
    size, then fill); JSON is parsed into a dict."""
    if fmt not in _FORMATS:
        raise InvalidArgument(f"format: {fmt!r} is not 'text' or 'json'")
    needed = ctypes.c_size_t(0)
    check(fn(*args, _FORMATS[fmt], None, 0, ctypes.byref(needed)))
    while True:  # a report may grow between the calls: ask again then
        capacity = needed.value
        buf = ctypes.create_string_buffer(capacity)
        check(fn(*args, _FORMATS[fmt], buf, capacity, ctypes.byref(needed)))
        if needed.value <= capacity:
            text = buf.value.decode(errors="replace")
            return _json.loads(text) if fmt == "json" else text


def version():
    """(major, minor, patch, text) of the loaded libplexus."""
    lib, parts = _lib.lib(), [ctypes.c_int32() for _ in range(3)]
    check(lib.plx_version(*(ctypes.byref(p) for p in parts)))
    return tuple(p.value for p in parts) + (lib.plx_version_string().decode(),)


def describe_plugins(fmt="text"):
    """Every plugin in the search path, not initialised (what plexus-info
    prints): text, or a dict with fmt="json"."""
    return _read_text(lambda f, b, c, n: _lib.lib().plx_plugins_describe(f, b, c, n), fmt=fmt)


def last_load_report(fmt="text"):
    """The load report of this thread's most recent Backend() attempt, also
    when it failed: read it after catching the error."""
    return _read_text(_lib.lib().plx_load_report, None, fmt=fmt)


class UniqueId:
    """The 256 opaque bytes that name a communicator. One rank makes it
    (Backend.unique_id()) and hands it to the others out of band: as bytes
    (bytes(uid), UniqueId.from_bytes) or as hex text (uid.hex(),
    UniqueId.from_hex), e.g. through an environment variable."""

    def __init__(self, data=None):
        self._struct = _lib.UniqueIdStruct()
        if data is not None:
            data = bytes(data)
            if len(data) != _lib.PLX_UNIQUE_ID_BYTES:
                raise InvalidArgument(f"UniqueId: {len(data)} bytes, "
                                      f"expected {_lib.PLX_UNIQUE_ID_BYTES}")
            ctypes.memmove(self._struct.bytes, data, len(data))

    @classmethod
    def from_bytes(cls, data):
        return cls(data)

    @classmethod
    def from_hex(cls, text):
        try:
            return cls(bytes.fromhex(text))
        except ValueError as e:
            raise InvalidArgument(f"UniqueId.from_hex: {e}") from None

    def __bytes__(self):
        return bytes(self._struct.bytes)

    def hex(self):
        return bytes(self).hex()

    def __eq__(self, other):
        return isinstance(other, UniqueId) and bytes(self) == bytes(other)

    def __hash__(self):
        return hash(bytes(self))

    def __repr__(self):
        return f"UniqueId({self.hex()[:16]}...)"

    @staticmethod
    def coerce(value):
        if isinstance(value, UniqueId):
            return value
        return UniqueId.from_hex(value) if isinstance(value, str) else UniqueId(value)


@dataclass
class BackendProps:
    """What a backend is and can do (plx_backend_props)."""
    name: str
    path: str
    build_info: str
    version: tuple
    abi: tuple
    threading: Threading
    capabilities: int
    collectives: list
    features: list
    mem_kinds: list
    alloc_kinds: list
    dtypes: list
    reduce_ops: list


class Backend:
    """A loaded backend (plx_backend_open). spec None reads PLEXUS_BACKEND;
    else "shm-native", "nccl,shm-native", "^nccl", "/abs/libplexus-x.so".
    Close it with close() or a `with` block once its communicators are
    gone. A failed open raises; last_load_report() then says why."""

    def __init__(self, spec=None):
        self._handle = None
        handle = ctypes.c_void_p()
        check(_lib.lib().plx_backend_open(None if spec is None else spec.encode(),
                                          ctypes.byref(handle)))
        self._handle = handle.value

    def close(self):
        if self._handle:
            check(_lib.lib().plx_backend_close(self._handle))
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _live(self):
        if not self._handle:
            raise InvalidArgument("Backend: used after close()")
        return self._handle

    @property
    def props(self):
        p = _lib.BackendProps()
        check(_lib.lib().plx_backend_props_get(self._live(), ctypes.byref(p)))
        text = lambda s: (s or b"").decode(errors="replace")  # noqa: E731
        return BackendProps(
            text(p.name), text(p.path), text(p.build_info),
            (p.version_major, p.version_minor, p.version_patch), (p.abi_major, p.abi_minor),
            Threading(p.threading), p.capabilities, mask_names(Coll, p.capabilities),
            [name for name, bit in CAPABILITIES.items() if p.capabilities & bit],
            mask_names(MemKind, p.mem_kind_mask), mask_names(MemKind, p.alloc_kind_mask),
            mask_names(DType, p.dtype_mask), mask_names(ReduceOp, p.reduce_op_mask))

    @property
    def name(self):
        return self.props.name

    def load_report(self, fmt="text"):
        """Every candidate tried and why the winner won: text or dict."""
        return _read_text(_lib.lib().plx_load_report, self._live(), fmt=fmt)

    def topology(self):
        """(summary dict, full JSON dict) of the machine as this backend
        sees it; Unsupported where the backend probes none."""
        info, lib = _lib.TopologyInfo(), _lib.lib()
        fn = lambda _fmt, buf, cap, needed: lib.plx_backend_topology(  # noqa: E731
            self._live(), ctypes.byref(info), buf, cap, needed)
        full = _read_text(fn, fmt="json")
        summary = {name: getattr(info, name) for name, _ in info._fields_
                   if name not in ("struct_size", "reserved0")}
        return summary, full

    def unique_id(self):
        """A new UniqueId for a communicator of this backend's plugin."""
        uid = UniqueId()
        check(_lib.lib().plx_get_unique_id(self._live(), ctypes.byref(uid._struct)))
        return uid

    def communicator(self, unique_id, nranks, rank, **config):
        """Join a communicator; see Communicator."""
        return Communicator(self, unique_id, nranks, rank, **config)


def _config(cuda_device=-1, timeout_ms=0, init_timeout_ms=0, name=None):
    return _lib.CommConfig(cuda_device=cuda_device, timeout_ms=timeout_ms,
                           init_timeout_ms=init_timeout_ms,
                           name=None if name is None else name.encode())


def _options(no_contribution=False, wire_dtype=None, algorithm=None):
    """A CollOptions for the keywords given, None (NULL: defaults) without."""
    if not no_contribution and wire_dtype is None and algorithm is None:
        return None
    return _lib.CollOptions(
        flags=_lib.PLX_COLL_FLAG_NO_CONTRIBUTION if no_contribution else 0,
        wire_dtype=-1 if wire_dtype is None else to_enum(DType, wire_dtype, "wire_dtype"),
        algorithm=0 if algorithm is None else to_enum(Algorithm, algorithm, "algorithm"))


# Re-exported: the Communicator is defined in communicator.py, which imports
# this module's helpers lazily, so either may be imported first.
from .communicator import Communicator  # noqa: E402
