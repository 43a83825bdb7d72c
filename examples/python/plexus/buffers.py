"""Turning NumPy arrays and PyTorch tensors into what the C ABI takes: a
pointer, an element count, a plexus dtype, a memory kind and, for CUDA
tensors, the stream to order the call on.

PyTorch is never imported here unless a tensor is passed in, so NumPy-only
hosts do not pay for it (and need not have it installed)."""
from dataclasses import dataclass
from typing import Any, Optional

from .errors import InvalidArgument
from .types import DType, MemKind

try:
    import numpy as _np
except ImportError:  # a torch-only host
    _np = None


@dataclass
class Buffer:
    """One side of a collective: the C view of an array or tensor."""
    obj: Any             # the array or tensor (kept alive for the call)
    ptr: int             # address of element 0
    count: int           # elements
    dtype: DType
    kind: MemKind        # MemKind.HOST or MemKind.DEVICE
    device: int          # CUDA device ordinal, -1 for host memory
    stream: Optional[int]  # current CUDA stream for a device tensor, else None

    def where(self):
        return f"cuda:{self.device}" if self.kind == MemKind.DEVICE else "host memory"


def _dtype_from_name(name, what, source):
    member = DType.__members__.get(name.upper())
    if member is None:
        names = ", ".join(d.name.lower() for d in DType)
        raise InvalidArgument(f"{what}: {source} dtype {name} has no plexus dtype ({names})")
    return member


def _from_numpy(arr, what, writable):
    if not arr.flags.c_contiguous:
        raise InvalidArgument(f"{what}: the array is not C-contiguous (shape {arr.shape}, "
                              f"strides {arr.strides}); pass numpy.ascontiguousarray(...)")
    if writable and not arr.flags.writeable:
        raise InvalidArgument(f"{what}: the array is read-only but receives the result")
    if not arr.dtype.isnative:
        raise InvalidArgument(f"{what}: dtype {arr.dtype.str} is not in native byte order")
    dtype = _dtype_from_name(arr.dtype.name, what, "NumPy")  # ml_dtypes' bfloat16 maps too
    return Buffer(arr, arr.ctypes.data, arr.size, dtype, MemKind.HOST, -1, None)


def _from_torch(tensor, what):
    import torch  # only reached with a tensor in hand, so torch is there
    if not tensor.is_contiguous():
        raise InvalidArgument(f"{what}: the tensor is not contiguous (shape "
                              f"{tuple(tensor.shape)}, stride {tensor.stride()}); "
                              "pass tensor.contiguous()")
    dtype = _dtype_from_name(str(tensor.dtype).replace("torch.", ""), what, "PyTorch")
    if tensor.device.type == "cuda":
        # Stream-ordered like NCCL: enqueue on the stream PyTorch would use
        # for this device right now, so the call is ordered after the kernels
        # that produced the tensor.
        stream = torch.cuda.current_stream(tensor.device).cuda_stream
        return Buffer(tensor, tensor.data_ptr(), tensor.numel(), dtype, MemKind.DEVICE,
                      tensor.device.index, stream)
    if tensor.device.type != "cpu":
        raise InvalidArgument(f"{what}: tensors on {tensor.device.type} are not supported "
                              "(cpu or cuda)")
    return Buffer(tensor, tensor.data_ptr(), tensor.numel(), dtype, MemKind.HOST, -1, None)


def _is_torch_tensor(obj):
    return type(obj).__module__.startswith("torch") and hasattr(obj, "data_ptr")


def as_buffer(obj, what, writable=False):
    """Buffer for a NumPy array or a torch tensor; None for None."""
    if obj is None:
        return None
    if _np is not None and isinstance(obj, _np.ndarray):
        return _from_numpy(obj, what, writable)
    if _is_torch_tensor(obj):
        return _from_torch(obj, what)
    raise TypeError(f"{what}: expected a numpy.ndarray or a torch.Tensor, "
                    f"got {type(obj).__name__}")


def empty_like(buf, count):
    """A new 1-D array or tensor of `count` elements of buf's type, on the
    same device: the output of a collective the caller did not provide."""
    if _is_torch_tensor(buf.obj):
        import torch
        return torch.empty(count, dtype=buf.obj.dtype, device=buf.obj.device)
    return _np.empty(count, dtype=buf.obj.dtype)


def resolve_stream(buffers, stream):
    """The stream argument of a call: the caller's (an int or an object with
    .cuda_stream, as torch.cuda.Stream), else the current stream of the
    first device buffer, else None (host memory). Also checks that every
    buffer lives in the same place."""
    present = [b for b in buffers if b is not None]
    places = {b.where() for b in present}
    if len(places) > 1:
        raise InvalidArgument("buffers of one call must live in one place, got " +
                              " and ".join(sorted(places)))
    if stream is not None:
        return int(getattr(stream, "cuda_stream", stream))
    return next((b.stream for b in present if b.kind == MemKind.DEVICE), None)


def same_dtype(*buffers):
    """The dtype all given buffers share; InvalidArgument when they differ."""
    present = [b for b in buffers if b is not None]
    dtypes = {b.dtype for b in present}
    if len(dtypes) > 1:
        raise InvalidArgument("send and recv must have one dtype, got " +
                              " and ".join(sorted(d.name.lower() for d in dtypes)))
    return present[0].dtype
