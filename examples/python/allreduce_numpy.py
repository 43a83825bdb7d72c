#!/usr/bin/env python3
"""allreduce_numpy.py: the smallest plexus host in Python. Starts N ranks as
processes, joins them in one communicator and all-reduces a random NumPy
array, checking every rank's result against NumPy's own sum.

    python3 examples/python/allreduce_numpy.py --ranks 4
    python3 examples/python/allreduce_numpy.py --ranks 2 --dtype int64 --backend shm-native

The backend is --backend, else PLEXUS_BACKEND, else shm-native: NumPy arrays
are host memory, which the GPU backends `auto` prefers on a GPU machine do
not take.

This process is rank 0: it opens the backend, makes the communicator's
unique id and hands its 256 bytes to ranks 1..N-1, which it starts with
multiprocessing ("spawn": fresh interpreters, nothing inherited but the
arguments). A real host sends the bytes over its own channel (a TCP store,
torch.distributed, an environment variable as uid.hex()).
"""
import argparse
import multiprocessing
import os
import sys

import numpy as np

try:
    import plexus
except ImportError:  # run from a clone without `pip install examples/python`
    sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
    import plexus


def rank_input(rank, count, dtype, seed):
    """Rank r's input: random but reproducible, so any rank can compute
    everyone's inputs and with them the expected sum."""
    rng = np.random.default_rng(seed + rank)
    if np.issubdtype(dtype, np.integer):
        low = 0 if np.issubdtype(dtype, np.unsignedinteger) else -100
        return rng.integers(low, 100, count).astype(dtype)
    return rng.standard_normal(count).astype(dtype)


def tolerance(dtype, nranks):
    """Sums in another order round differently: allow a few ulps per rank
    (exact for integers)."""
    return 4 * nranks * float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0


def run_rank(backend, uid_bytes, nranks, rank, count, dtype, seed):
    """One rank: join, all-reduce in place, compare with NumPy. Exit code 0
    when the result matches."""
    with backend.communicator(plexus.UniqueId.from_bytes(uid_bytes), nranks, rank) as comm:
        x = rank_input(rank, count, dtype, seed)
        comm.all_reduce(x, op="sum")  # in place; returns x
        inputs = np.stack([rank_input(r, count, dtype, seed) for r in range(nranks)])
        # Integers wrap in their own type, as in C; floats are summed in float64.
        wide = dtype if np.issubdtype(dtype, np.integer) else np.float64
        expected = inputs.sum(axis=0, dtype=wide)
        ok = np.allclose(x, expected, rtol=tolerance(dtype, nranks), atol=tolerance(dtype, nranks))
        print(f"rank {rank}/{nranks} on {backend.name}: all_reduce of {count} x "
              f"{np.dtype(dtype).name}: {'OK' if ok else 'MISMATCH'}", flush=True)
    return 0 if ok else 1


def child(spec, uid_bytes, nranks, rank, count, dtype, seed):
    try:
        with plexus.Backend(spec) as backend:
            code = run_rank(backend, uid_bytes, nranks, rank, count, dtype, seed)
    except plexus.PlexusError as e:
        print(f"rank {rank}: {e}", file=sys.stderr, flush=True)
        code = 2
    sys.exit(code)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=4, help="processes (default 4)")
    parser.add_argument("--count", type=int, default=1 << 16, help="elements (default 65536)")
    parser.add_argument("--dtype", default="float32", help="a NumPy dtype (default float32)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default=os.environ.get("PLEXUS_BACKEND") or "shm-native",
                        help="backend spec (default: PLEXUS_BACKEND, else shm-native)")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)

    try:
        backend = plexus.Backend(args.backend)
    except plexus.PlexusError as e:
        print(f"allreduce_numpy: cannot open backend {args.backend!r}: {e}", file=sys.stderr)
        return 2
    uid = backend.unique_id()  # rank 0 makes the id ...
    ctx = multiprocessing.get_context("spawn")
    peers = [ctx.Process(target=child, args=(args.backend, bytes(uid), args.ranks, r, args.count,
                                              dtype, args.seed)) for r in range(1, args.ranks)]
    for p in peers:  # ... and hands its 256 bytes to every other rank
        p.start()
    try:
        code = run_rank(backend, bytes(uid), args.ranks, 0, args.count, dtype, args.seed)
    except plexus.PlexusError as e:
        print(f"rank 0: {e}", file=sys.stderr)
        code = 2
    for p in peers:
        p.join()
        code = code or p.exitcode
    backend.close()
    print(f"allreduce_numpy: {args.ranks} ranks: {'OK' if code == 0 else 'FAILED'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
