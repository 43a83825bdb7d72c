"""Communicator: the collectives, point-to-point, memory pools, statistics
and queues of one communicator (plx_comm_*)."""
import contextlib
import ctypes

from . import _lib
from .buffers import as_buffer, empty_like, resolve_stream, same_dtype
from .errors import InvalidArgument, check
from .memory import MemBlock, Queue, Registration
from .types import Algorithm, Coll, MemKind, Pressure, ReduceOp, to_enum


class Communicator:
    """A communicator of `nranks` ranks, this one being `rank`
    (plx_comm_init: collective, every rank calls it with the same id).

    Collectives take NumPy arrays or torch tensors (contiguous; CPU, or CUDA
    where the backend takes device memory) and return the output. Passing
    no recv, or recv that is send, works in place. Keywords of every
    collective: stream (default: None for host memory, the tensor's current
    CUDA stream for device memory), no_contribution, wire_dtype, algorithm
    (plx_coll_options). Failures raise PlexusError subclasses; a PeerLost,
    PlexusTimeout or Aborted is sticky: destroy() and start over.

    Config keywords: cuda_device (-1: current/none), timeout_ms and
    init_timeout_ms (0: PLEXUS_TIMEOUT_MS / PLEXUS_INIT_TIMEOUT_MS), name."""

    def __init__(self, backend, unique_id, nranks, rank, **config):
        from .comm import UniqueId, _config
        self._backend, self._handle = backend, None  # the backend outlives us
        uid, handle = UniqueId.coerce(unique_id), ctypes.c_void_p()
        check(_lib.lib().plx_comm_init(backend._live(), ctypes.byref(uid._struct), nranks, rank,
                                       ctypes.byref(_config(**config)), ctypes.byref(handle)))
        self._handle = handle.value

    @classmethod
    def _wrap(cls, backend, handle):
        comm = cls.__new__(cls)
        comm._backend, comm._handle = backend, handle
        return comm

    # -- life cycle -----------------------------------------------------
    def destroy(self):
        """Release everything the communicator holds (local; also after a
        failure). A second call does nothing."""
        if self._handle:
            handle, self._handle = self._handle, None
            check(_lib.lib().plx_comm_destroy(handle))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __del__(self):
        try:
            self.destroy()
        except Exception:
            pass

    def _live(self):
        if not self._handle:
            raise InvalidArgument("Communicator: used after destroy()")
        return self._handle

    def _query(self, fn):
        value = ctypes.c_int32()
        check(fn(self._live(), ctypes.byref(value)))
        return value.value

    @property
    def rank(self):
        return self._query(_lib.lib().plx_comm_rank)

    @property
    def size(self):
        return self._query(_lib.lib().plx_comm_size)

    @property
    def device(self):
        """CUDA device ordinal of this rank, -1 for host backends."""
        return self._query(_lib.lib().plx_comm_device)

    def async_status(self):
        """PLX_OK (0), PLX_IN_PROGRESS (1) or the sticky error's status
        (negative; errors.error_for turns it into an exception)."""
        return self._query(_lib.lib().plx_comm_async_status)

    def abort(self):
        """Make every rank's pending and later calls fail with Aborted."""
        check(_lib.lib().plx_comm_abort(self._live()))

    def split(self, color, key=0, **config):
        """Ranks with the same color form a new communicator ordered by key;
        color None (PLX_SPLIT_NO_COLOR) gives None. Collective."""
        from .comm import _config
        handle = ctypes.c_void_p()
        color = _lib.PLX_SPLIT_NO_COLOR if color is None else color
        check(_lib.lib().plx_comm_split(self._live(), color, key, ctypes.byref(_config(**config)),
                                        ctypes.byref(handle)))
        return Communicator._wrap(self._backend, handle.value) if handle.value else None

    # -- collectives ----------------------------------------------------
    def _call(self, name, buffers, stream, options, *args):
        from .comm import _options
        opts = _options(**options)
        stream = resolve_stream(buffers, stream)
        fn = getattr(_lib.lib(), name)
        check(fn(self._live(), *args, None if opts is None else ctypes.byref(opts), stream))

    @staticmethod
    def _in_out(send, recv, what):
        """(send buffer, recv buffer, recv object): recv None means in place."""
        s = as_buffer(send, f"{what}: send")
        if recv is None or recv is send:
            if s is None:
                raise InvalidArgument(f"{what}: send and recv are both None")
            return s, as_buffer(send, f"{what}: send (in place)", writable=True), send
        return s, as_buffer(recv, f"{what}: recv", writable=True), recv

    def all_reduce(self, send, recv=None, op="sum", *, stream=None, **options):
        """recv = op over ranks of send (same shape). Returns recv."""
        s, r, out = self._in_out(send, recv, "all_reduce")
        if s is not None and s.count != r.count:
            raise InvalidArgument(f"all_reduce: send has {s.count} elements, recv {r.count}")
        self._call("plx_all_reduce", [s, r], stream, options, s and s.ptr, r.ptr, r.count,
                   same_dtype(s, r), to_enum(ReduceOp, op, "op"))
        return out

    def reduce(self, send, recv=None, op="sum", root=0, *, stream=None, **options):
        """Like all_reduce, but only root's recv is written; recv None is in
        place on root. Returns recv (None on other ranks without one)."""
        if recv is None and self.rank != root:
            s, r, out = as_buffer(send, "reduce: send"), None, None
            if s is None:
                raise InvalidArgument("reduce: send and recv are both None")
        else:
            s, r, out = self._in_out(send, recv, "reduce")
        count = (s or r).count
        if r is not None and s is not None and r.count != s.count:
            raise InvalidArgument(f"reduce: send has {s.count} elements, recv {r.count}")
        self._call("plx_reduce", [s, r], stream, options, s and s.ptr, r and r.ptr, count,
                   same_dtype(s, r), to_enum(ReduceOp, op, "op"), root)
        return out

    def broadcast(self, buf, root=0, recv=None, *, stream=None, **options):
        """Root's data into every rank's buffer. In place on `buf`, or from
        buf (read on root only, may be None elsewhere) into recv."""
        s, r, out = self._in_out(buf, recv, "broadcast")
        if s is not None and self.rank == root and s.count != r.count:
            raise InvalidArgument(f"broadcast: send has {s.count} elements, recv {r.count}")
        self._call("plx_broadcast", [s, r], stream, options, s and s.ptr, r.ptr, r.count,
                   same_dtype(s, r), root)
        return out

    def all_gather(self, send, recv=None, *, stream=None, **options):
        """recv = every rank's send, concatenated (size * send elements; a
        new 1-D array when recv is None). Returns recv."""
        s = as_buffer(send, "all_gather: send")
        recv = empty_like(s, self.size * s.count) if recv is None else recv
        r = as_buffer(recv, "all_gather: recv", writable=True)
        if r.count != self.size * s.count:
            raise InvalidArgument(f"all_gather: recv has {r.count} elements, expected "
                                  f"{self.size} ranks x {s.count}")
        self._call("plx_all_gather", [s, r], stream, options, s.ptr, r.ptr, s.count,
                   same_dtype(s, r))
        return recv

    def gather(self, send, recv=None, root=0, counts=None, *, stream=None, **options):
        """Every rank's send onto root's recv, rank after rank. counts: the
        element count of every rank (the same list on all ranks), or None
        when all send as many. Root gets recv (new when None); others None."""
        size, rank = self.size, self.rank
        s = as_buffer(send, "gather: send")
        c_counts = None
        if counts is not None:
            if len(counts) != size or s.count != counts[rank]:
                raise InvalidArgument(f"gather: counts needs {size} entries and entry {rank} "
                                      f"equal to send's {s.count} elements, got {list(counts)}")
            c_counts = (ctypes.c_uint64 * size)(*counts)
        total = sum(counts) if counts is not None else size * s.count
        if rank == root and recv is None:
            recv = empty_like(s, total)
        r = as_buffer(recv, "gather: recv", writable=True)
        if r is not None and rank == root and r.count != total:
            raise InvalidArgument(f"gather: recv has {r.count} elements, expected {total}")
        self._call("plx_gather", [s, r], stream, options, s.ptr, r and r.ptr, s.count, c_counts,
                   same_dtype(s, r), root)
        return recv if rank == root else None

    def reduce_scatter(self, send, recv=None, op="sum", *, stream=None, **options):
        """send holds size blocks; rank r's recv gets block r reduced over
        ranks (a new array when recv is None). Returns recv."""
        s = as_buffer(send, "reduce_scatter: send")
        if s.count % self.size:
            raise InvalidArgument(f"reduce_scatter: send's {s.count} elements do not split "
                                  f"into {self.size} equal blocks")
        recv = empty_like(s, s.count // self.size) if recv is None else recv
        r = as_buffer(recv, "reduce_scatter: recv", writable=True)
        if r.count * self.size != s.count:
            raise InvalidArgument(f"reduce_scatter: recv has {r.count} elements, expected "
                                  f"{s.count // self.size}")
        self._call("plx_reduce_scatter", [s, r], stream, options, s.ptr, r.ptr, r.count,
                   same_dtype(s, r), to_enum(ReduceOp, op, "op"))
        return recv

    def barrier(self, *, stream=None, **options):
        self._call("plx_barrier", [], stream, options)

    def send(self, buf, peer, *, stream=None, **options):
        b = as_buffer(buf, "send: buf")
        self._call("plx_send", [b], stream, options, b.ptr, b.count, b.dtype, peer)

    def recv(self, buf, peer, *, stream=None, **options):
        b = as_buffer(buf, "recv: buf", writable=True)
        self._call("plx_recv", [b], stream, options, b.ptr, b.count, b.dtype, peer)
        return buf

    @contextlib.contextmanager
    def group(self):
        """`with comm.group():` issues the sends and receives inside together."""
        check(_lib.lib().plx_group_start(self._live()))
        try:
            yield self
        finally:
            check(_lib.lib().plx_group_end(self._live()))

    # -- statistics -----------------------------------------------------
    def stats(self, coll="all_reduce"):
        """Calls, bytes, host time and algorithms of one collective kind."""
        st = _lib.OpStats()
        check(_lib.lib().plx_comm_stats(self._live(), to_enum(Coll, coll, "coll"),
                                        ctypes.byref(st)))
        algos = {a.name.lower(): st.algorithm_calls[a] for a in Algorithm if st.algorithm_calls[a]}
        last = Algorithm(st.last_algorithm).name.lower() \
            if st.last_algorithm in Algorithm._value2member_map_ else str(st.last_algorithm)
        return {"calls": st.calls, "bytes": st.bytes, "time_ns": st.time_ns,
                "last_algorithm": last, "algorithm_calls": algos}

    # -- memory ---------------------------------------------------------
    def mem_alloc(self, nbytes, kind="shared_host", alignment=0, tag=0):
        """A MemBlock from the pool of `kind` (shared_host is mapped by every
        rank, so collectives on it skip a copy)."""
        kind = to_enum(MemKind, kind, "kind")
        params, ptr = _lib.MemAllocParams(kind=kind, bytes=nbytes, alignment=alignment,
                                          tag=tag), ctypes.c_void_p()
        check(_lib.lib().plx_mem_alloc(self._live(), ctypes.byref(params), ctypes.byref(ptr)))
        return MemBlock(self, ptr.value, nbytes, kind, tag)

    def register(self, obj):
        """Register an array or tensor's memory (an optimisation)."""
        b, handle = as_buffer(obj, "register"), ctypes.c_void_p()
        nbytes = b.count * _lib.lib().plx_dtype_size(b.dtype)
        check(_lib.lib().plx_mem_register(self._live(), b.ptr, nbytes, ctypes.byref(handle)))
        return Registration(self, handle.value, obj)

    def mem_stats(self, kind="shared_host", tag=None):
        """The pool's statistics as a dict, in total or for one tag."""
        st = _lib.MemStats()
        tag = _lib.PLX_MEM_TAG_ALL if tag is None else tag
        check(_lib.lib().plx_mem_stats_get(self._live(), to_enum(MemKind, kind, "kind"), tag,
                                           ctypes.byref(st)))
        return {name: getattr(st, name) for name, _ in st._fields_
                if name not in ("struct_size", "kind")}

    def _released(self, fn, kind, *args):
        released = ctypes.c_uint64()
        check(fn(self._live(), to_enum(MemKind, kind, "kind"), *args, ctypes.byref(released)))
        return released.value

    def defragment(self, kind="shared_host"):
        """Coalesce free blocks, return free segments; bytes released."""
        return self._released(_lib.lib().plx_mem_defragment, kind)

    def trim(self, kind="shared_host", keep_bytes=0):
        """Release free segments down to keep_bytes reserved; bytes released."""
        return self._released(_lib.lib().plx_mem_trim, kind, keep_bytes)

    def pressure(self, kind="shared_host"):
        level = ctypes.c_int32()
        check(_lib.lib().plx_mem_pressure(self._live(), to_enum(MemKind, kind, "kind"),
                                          ctypes.byref(level)))
        return Pressure(level.value)

    # -- queues ---------------------------------------------------------
    def queue(self, writer_rank=0, slot_bytes=0, slot_count=0):
        """A Queue written by writer_rank and read by every other rank.
        Collective. slot_bytes 0 = 4096, slot_count 0 = 64."""
        config, handle = _lib.QueueConfig(writer_rank=writer_rank, slot_bytes=slot_bytes,
                                          slot_count=slot_count), ctypes.c_void_p()
        check(_lib.lib().plx_queue_create(self._live(), ctypes.byref(config), ctypes.byref(handle)))
        return Queue(self, handle.value, slot_bytes or 4096)
