"""tp_model.py: the model half of tp_demo.py. A Megatron-style tensor-parallel
MLP stack written once against a tiny tensor interface with two
implementations, NumPy (CPU) and PyTorch (CPU or CUDA), so that the demo runs
on a GPU machine with PyTorch and in CI with NumPy alone.

Layer l of the stack, with full weights W1 [hidden, ffn], b1 [ffn],
W2 [ffn, hidden], b2 [hidden]:

    y = x + gelu(x @ W1 + b1) @ W2 + b2

Rank r of N holds columns r*ffn/N .. (r+1)*ffn/N of W1 and b1 (column-parallel:
no communication, each rank computes its slice of the hidden activation) and
the same rows of W2 (row-parallel: each rank computes a partial sum of the
output). One all-reduce adds the partials; b2 is added once, after it.
"""
import math
import time
from dataclasses import dataclass

# How far a rank's output may stray from the float64 reference, relative to
# the reference's RMS, per dtype, for 4 layers (scaled by sqrt(layers / 4)):
# a few rounding steps of the dtype per layer (activations and the partial
# sums are rounded to it before the all-reduce), far below the error of a
# wrong shard or a missing all-reduce (about 0.5 of the RMS).
TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "float16": 1.5e-2, "bfloat16": 1e-1}

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}

BIAS_SCALE = 0.5  # large enough that adding b2 on every rank (not once) fails the check


def tolerance(dtype, layers):
    return TOLERANCE[dtype] * math.sqrt(max(layers, 4) / 4)


def seed_of(seed, layer, which):
    """One integer seed per tensor, the same on every rank."""
    return (seed * 1000 + layer) * 10 + which


class NumpyOps:
    """Host arrays through NumPy; bfloat16 needs ml_dtypes."""
    name = "numpy"

    def __init__(self, dtype, device="cpu"):
        import numpy as np
        if device != "cpu":
            raise ValueError("NumPy tensors live on the CPU: use --device cpu or install PyTorch")
        if dtype == "bfloat16":
            import ml_dtypes  # noqa: F401  (registers numpy.dtype("bfloat16"))
        self.np, self.dtype, self.device = np, np.dtype(dtype), device

    def randn(self, shape, seed, scale, wide=False):
        """Normal(0, scale^2) values from a seed, rounded to the dtype (the
        reference upcasts those rounded values, so both use one set)."""
        rng = self.np.random.default_rng(seed)
        x = (rng.standard_normal(shape, dtype=self.np.float32) * scale).astype(self.dtype)
        return x.astype(self.np.float64) if wide else x

    def contiguous(self, x):
        return self.np.ascontiguousarray(x)

    def gelu(self, x):
        # the tanh approximation, as torch's gelu(approximate="tanh")
        c = self.np.asarray(math.sqrt(2 / math.pi), x.dtype)
        return 0.5 * x * (1 + self.np.tanh(c * (x + x.dtype.type(0.044715) * x ** 3)))

    def max_rel_error(self, y, ref):
        """max |y - ref| over the reference's RMS."""
        diff = self.np.abs(y.astype(self.np.float64) - ref).max()
        return float(diff / max(float(self.np.sqrt((ref ** 2).mean())), 1e-30))

    def synchronize(self):
        pass

    def stream(self):
        return None  # host memory: no stream

    def timer(self):
        return HostTimer()


class TorchOps:
    """PyTorch tensors on the CPU or on this rank's GPU."""
    name = "torch"

    def __init__(self, dtype, device):
        import torch
        self.torch, self.dtype, self.device = torch, getattr(torch, dtype), torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            # float32 means float32: TF32 would round the inputs to 10 bits
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def randn(self, shape, seed, scale, wide=False):
        # generated on the CPU so that every rank and GPU model gets the same values
        g = self.torch.Generator().manual_seed(seed)
        x = (self.torch.randn(shape, generator=g) * scale).to(self.dtype)
        x = x.to(self.device)
        return x.double() if wide else x

    def contiguous(self, x):
        return x.contiguous()

    def gelu(self, x):
        return self.torch.nn.functional.gelu(x, approximate="tanh")

    def max_rel_error(self, y, ref):
        diff = (y.double() - ref).abs().max().item()
        return diff / max(ref.pow(2).mean().sqrt().item(), 1e-30)

    def synchronize(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def stream(self):
        """The stream plexus orders a device all-reduce on: PyTorch's current
        one, where the matmuls that produced the partial sums were queued."""
        if self.device.type != "cuda":
            return None
        return self.torch.cuda.current_stream(self.device).cuda_stream

    def timer(self):
        return CudaTimer(self.torch) if self.device.type == "cuda" else HostTimer()


class HostTimer:
    """Sums the wall time between start() and stop(): host collectives return
    when they are done."""

    def __init__(self):
        self.total, self._t0 = 0.0, 0.0

    def start(self):
        self._t0 = time.perf_counter()

    def stop(self):
        self.total += time.perf_counter() - self._t0

    def seconds(self):
        return self.total


class CudaTimer:
    """Sums the stream time between start() and stop() with CUDA events: a
    device all-reduce returns once queued, so the host clock would measure
    only the launch. Includes waiting for the slowest peer, which is part of
    what the all-reduce costs."""

    def __init__(self, torch):
        self.torch, self.pairs = torch, []

    def start(self):
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        self.pairs.append([ev, None])

    def stop(self):
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        self.pairs[-1][1] = ev

    def seconds(self):
        self.torch.cuda.synchronize()
        return sum(a.elapsed_time(b) for a, b in self.pairs) / 1000.0


def make_ops(kind, dtype, device):
    return TorchOps(dtype, device) if kind == "torch" else NumpyOps(dtype, device)


@dataclass
class Layer:
    w1: object  # [hidden, ffn] full, or [hidden, ffn/N] this rank's columns
    b1: object  # [ffn] or [ffn/N]
    w2: object  # [ffn, hidden] or [ffn/N, hidden] this rank's rows
    b2: object  # [hidden], whole on every rank


def full_layer(ops, seed, layer, hidden, ffn, wide=False):
    """Layer `layer`'s full weights, the same on every rank. Scaled by
    1/sqrt(fan-in) so that activations stay of order 1 through the stack."""
    return Layer(ops.randn((hidden, ffn), seed_of(seed, layer, 1), hidden ** -0.5, wide),
                 ops.randn((ffn,), seed_of(seed, layer, 2), BIAS_SCALE, wide),
                 ops.randn((ffn, hidden), seed_of(seed, layer, 3), ffn ** -0.5, wide),
                 ops.randn((hidden,), seed_of(seed, layer, 4), BIAS_SCALE, wide))


def shard_layer(ops, full, rank, nranks):
    """This rank's part: a column block of W1 and b1, the same row block of W2
    (copied, so the full weights can be dropped and the shards are
    contiguous for the matmuls)."""
    ffn = full.b1.shape[0]
    if ffn % nranks:
        raise ValueError(f"ffn {ffn} is not a multiple of {nranks} ranks")
    cols = slice(rank * ffn // nranks, (rank + 1) * ffn // nranks)
    return Layer(ops.contiguous(full.w1[:, cols]), ops.contiguous(full.b1[cols]),
                 ops.contiguous(full.w2[cols, :]), full.b2)


def build_shards(ops, seed, layers, hidden, ffn, rank, nranks):
    """Every rank builds each full layer from the seed and keeps its shard."""
    return [shard_layer(ops, full_layer(ops, seed, i, hidden, ffn), rank, nranks)
            for i in range(layers)]


def tp_block(ops, comm, x, layer, timer):
    """One tensor-parallel MLP block: two local matmuls and ONE all-reduce."""
    h = ops.gelu(x @ layer.w1 + layer.b1)   # column-parallel: this rank's ffn/N activations
    partial = h @ layer.w2                  # row-parallel: this rank's share of the sum over ffn
    timer.start()
    comm.all_reduce(partial, op="sum", stream=ops.stream())  # in place: now the full sum
    timer.stop()
    return x + partial + layer.b2           # bias once, after the sum


def tp_forward(ops, comm, x, shards, timer):
    for layer in shards:
        x = tp_block(ops, comm, x, layer, timer)
    return x


def reference_forward(ops, seed, inputs, layers, hidden, ffn):
    """The same stack in one process with the full weights, in float64 (the
    weights are the dtype's rounded values, upcast): what the ranks' output
    must match up to the dtype's rounding. Takes and returns a list of
    float64 inputs, so the weights are built once for all of them."""
    for i in range(layers):
        w = full_layer(ops, seed, i, hidden, ffn, wide=True)
        inputs = [x + ops.gelu(x @ w.w1 + w.b1) @ w.w2 + w.b2 for x in inputs]
    return inputs


def make_input(ops, seed, tokens, hidden, wide=False):
    """The activations entering the stack, [tokens, hidden], the same on
    every rank (float64 with wide, as the reference takes them)."""
    return ops.randn((tokens, hidden), seed_of(seed, 999, 0), 1.0, wide)


class NullTimer:
    """For warm-up passes, which are not measured."""

    def start(self):
        pass

    def stop(self):
        pass
