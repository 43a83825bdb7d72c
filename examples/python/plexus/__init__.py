"""plexus from Python: communication backends behind one C ABI, through
ctypes. NumPy arrays and PyTorch tensors (CPU or CUDA) go straight to the
collectives; failures raise PlexusError subclasses carrying the status and
plx_last_error().

    import numpy as np, plexus
    backend = plexus.Backend()                 # PLEXUS_BACKEND, default auto
    uid = backend.unique_id()                  # rank 0; send bytes(uid) to the others
    comm = backend.communicator(uid, nranks, rank)
    x = comm.all_reduce(np.ones(1024, np.float32))   # in place, sum

libplexus.so.1 is found through PLEXUS_LIBRARY, PLEXUS_BUILD_DIR, the build
tree next to this package, or the system loader (see _lib.py). See
examples/python/allreduce_numpy.py and docs/user-guide.md ("From Python").
"""
from .comm import (Backend, BackendProps, Communicator, UniqueId, describe_plugins,
                   last_load_report, version)
from .errors import (Aborted, DeviceError, IncompatibleAbi, InternalError, InvalidArgument,
                     InvalidUsage, NotFound, OutOfMemory, PeerLost, PlexusError, PlexusTimeout,
                     RemoteError, SystemFailure, Unsupported, error_for)
from .memory import MemBlock, Queue, Registration
from .types import Algorithm, Coll, DType, MemKind, Pressure, ReduceOp, Threading

__version__ = "0.1.0"

__all__ = [
    "Backend", "BackendProps", "Communicator", "UniqueId", "describe_plugins",
    "last_load_report", "version", "MemBlock", "Queue", "Registration",
    "Algorithm", "Coll", "DType", "MemKind", "Pressure", "ReduceOp", "Threading",
    "PlexusError", "InvalidArgument", "InvalidUsage", "Unsupported", "NotFound",
    "IncompatibleAbi", "OutOfMemory", "PlexusTimeout", "PeerLost", "Aborted", "DeviceError",
    "SystemFailure", "RemoteError", "InternalError", "error_for",
]
