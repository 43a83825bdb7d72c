"""Exceptions: every failing plexus call raises a PlexusError subclass that
carries the status (code and name) and plx_last_error()'s message.

    try:
        comm.all_reduce(x)
    except plexus.PeerLost as e:      # a rank died
        print(e.status_name, e.message)

Where a Python built-in exception means the same thing, the class derives
from it too, so `except TimeoutError` or `except ValueError` also works.
"""
from . import _lib


class PlexusError(Exception):
    """A plexus call failed. `status` is the plx_status (negative),
    `status_name` its name ("PLX_ERR_TIMEOUT"), `message` what
    plx_last_error() said (or what the Python layer found wrong)."""

    status = None  # set on each subclass

    def __init__(self, message, status=None, status_name=None):
        if status is not None:
            self.status = status
        self.status_name = status_name or _STATUS_NAMES.get(self.status, "PLX_ERR_<unknown>")
        self.message = message
        super().__init__(message)

    def __str__(self):
        return f"{self.status_name}: {self.message}"


class InvalidArgument(PlexusError, ValueError):
    """An argument is wrong; the message names it (PLX_ERR_INVALID_ARGUMENT)."""
    status = _lib.PLX_ERR_INVALID_ARGUMENT


class InvalidUsage(PlexusError, RuntimeError):
    """A call in the wrong state or order (PLX_ERR_INVALID_USAGE)."""
    status = _lib.PLX_ERR_INVALID_USAGE


class Unsupported(PlexusError, NotImplementedError):
    """The backend cannot do this: op, dtype, memory kind, or no device
    (PLX_ERR_UNSUPPORTED)."""
    status = _lib.PLX_ERR_UNSUPPORTED


class NotFound(PlexusError, LookupError):
    """No such plugin, parameter or registration (PLX_ERR_NOT_FOUND)."""
    status = _lib.PLX_ERR_NOT_FOUND


class IncompatibleAbi(PlexusError):
    """Plugin and loader share no ABI version (PLX_ERR_INCOMPATIBLE_ABI)."""
    status = _lib.PLX_ERR_INCOMPATIBLE_ABI


class OutOfMemory(PlexusError, MemoryError):
    """Host, pinned, shared or device memory could not be had."""
    status = _lib.PLX_ERR_OUT_OF_MEMORY


class PlexusTimeout(PlexusError, TimeoutError):
    """A peer did not arrive in time; the message names the missing ranks.
    Sticky: destroy the communicator."""
    status = _lib.PLX_ERR_TIMEOUT


class PeerLost(PlexusError):
    """A peer rank died. Sticky: destroy the communicator."""
    status = _lib.PLX_ERR_PEER_LOST


class Aborted(PlexusError):
    """Some rank called abort(). Sticky: destroy the communicator."""
    status = _lib.PLX_ERR_ABORTED


class DeviceError(PlexusError):
    """CUDA failed; the message holds CUDA's own text (PLX_ERR_DEVICE)."""
    status = _lib.PLX_ERR_DEVICE


class SystemFailure(PlexusError, OSError):
    """The operating system failed (shm_open, mmap...): PLX_ERR_SYSTEM."""
    status = _lib.PLX_ERR_SYSTEM


class RemoteError(PlexusError):
    """Another node or NCCL's network reported an error (PLX_ERR_REMOTE)."""
    status = _lib.PLX_ERR_REMOTE


class InternalError(PlexusError):
    """A bug in plexus or a plugin: report it with the message."""
    status = _lib.PLX_ERR_INTERNAL


_CLASSES = [InvalidArgument, InvalidUsage, Unsupported, NotFound, IncompatibleAbi, OutOfMemory,
            PlexusTimeout, PeerLost, Aborted, DeviceError, SystemFailure, RemoteError,
            InternalError]
_BY_STATUS = {cls.status: cls for cls in _CLASSES}
# The names are those plx_status_string() gives; kept here so that errors
# raised by the Python layer itself need no library.
_STATUS_NAMES = {_lib.PLX_OK: "PLX_OK", _lib.PLX_IN_PROGRESS: "PLX_IN_PROGRESS"}
_STATUS_NAMES.update({value: name for name, value in vars(_lib).items()
                      if name.startswith("PLX_ERR_")})


def error_for(status, message, status_name=None):
    """The exception for a status: its subclass, or PlexusError for a code
    this version does not know."""
    cls = _BY_STATUS.get(status, PlexusError)
    return cls(message, status=status, status_name=status_name)


def check(status):
    """Raise for a negative status with this thread's plx_last_error();
    return PLX_OK or PLX_IN_PROGRESS unchanged."""
    if status >= 0:
        return status
    lib = _lib.lib()
    message = lib.plx_last_error().decode(errors="replace")
    raise error_for(status, message, lib.plx_status_string(status).decode())
