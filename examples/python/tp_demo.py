#!/usr/bin/env python3
"""tp_demo.py: tensor parallelism through plexus. N processes, one per rank,
run a Megatron-style MLP stack (column-parallel linear, GELU, row-parallel
linear, ONE all-reduce of the partial outputs per layer, see tp_model.py),
check every rank's output against a one-process float64 reference built from
the same seeded weights, and time a decode-shaped loop (batch 1: many small
all-reduces) and a prefill-shaped one (many tokens: few large all-reduces),
printing time per step, tokens/s and the all-reduce share per backend.

    python3 examples/python/tp_demo.py                       # CPU: shm-native, 2 ranks
    python3 examples/python/tp_demo.py --device cuda --ranks 2   # each GPU backend and auto
    python3 examples/python/tp_demo.py --backend nccl --dtype float16 --hidden 4096

Tensors are PyTorch's when it is installed (CPU or CUDA), else NumPy arrays
(CPU only). A CUDA tensor goes to plexus as its data pointer on
torch.cuda.current_stream().cuda_stream; a CPU tensor or array as host memory,
which shm-native takes. The backends run one after the other, each in fresh
processes; the parent is no rank, it only hands out the work and the
results. Exit code 0 when every check passed and every backend ran.
"""
import argparse
import multiprocessing
import os
import queue
import sys
import time

# tp_model, and plexus from the clone when it is not installed (an installed one comes first)
sys.path.append(os.path.dirname(os.path.abspath(__file__)))
import plexus  # noqa: E402
import tp_model  # noqa: E402

GPU_BACKENDS = ["p2p-tree", "nccl", "pinned-host", "auto"]
DEFAULTS = {  # sizes per device: a GPU run of real shapes, a CPU run of a few seconds
    "cuda": dict(dtype="bfloat16", hidden=2048, layers=4, decode_steps=200, prefill_tokens=2048,
                 prefill_steps=10, warmup=5),
    "cpu": dict(dtype="float32", hidden=256, layers=4, decode_steps=100, prefill_tokens=128,
                prefill_steps=5, warmup=2),
}


def torch_or_none():
    try:
        import torch
        return torch
    except ImportError:
        return None


def has_module(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


# -- one rank -----------------------------------------------------------------
def sync_ranks(ops, comm, x):
    """Start the timed loops together: a one-element all-reduce, then wait
    for the device, so no rank's clock starts while a peer still warms up."""
    comm.all_reduce(ops.contiguous(x[0, :1] * 0), stream=ops.stream())
    ops.synchronize()


def timed_loop(ops, comm, x, shards, steps, warmup):
    """(wall seconds, all-reduce seconds) of `steps` forward passes of x."""
    for _ in range(warmup):  # first calls connect peers, fill caches, pick routes
        tp_model.tp_forward(ops, comm, x, shards, tp_model.NullTimer())
    sync_ranks(ops, comm, x)
    timer, t0 = ops.timer(), time.perf_counter()
    for _ in range(steps):
        tp_model.tp_forward(ops, comm, x, shards, timer)
    ops.synchronize()
    return time.perf_counter() - t0, timer.seconds()


def check(ops, comm, a, shards, inputs):
    """Max error of this rank's TP output for each input against the
    reference (relative to the reference's RMS)."""
    outs = [tp_model.tp_forward(ops, comm, x, shards, tp_model.NullTimer()) for x in inputs]
    ops.synchronize()
    wide = [tp_model.make_input(ops, a.seed, x.shape[0], a.hidden, wide=True) for x in inputs]
    refs = tp_model.reference_forward(ops, a.seed, wide, a.layers, a.hidden, a.ffn)
    return [ops.max_rel_error(y, r) for y, r in zip(outs, refs)]


def rank_work(ops, comm, rank, a):
    """Build the shards, check the output, time both loops."""
    shards = tp_model.build_shards(ops, a.seed, a.layers, a.hidden, a.ffn, rank, a.ranks)
    decode_x = tp_model.make_input(ops, a.seed, 1, a.hidden)
    prefill_x = tp_model.make_input(ops, a.seed, a.prefill_tokens, a.hidden)
    errors = check(ops, comm, a, shards, [decode_x, prefill_x])
    result = dict(rank=rank, err_decode=errors[0], err_prefill=errors[1])
    result["decode"] = timed_loop(ops, comm, decode_x, shards, a.decode_steps, a.warmup)
    result["prefill"] = timed_loop(ops, comm, prefill_x, shards, a.prefill_steps, a.warmup)
    return result


def get_uid(rank, nranks, backend, uid_q):
    """Rank 0 makes the communicator's id and hands its 256 bytes to the
    others (here through a multiprocessing queue; a real host uses its own
    channel: a TCP store, torch.distributed, an environment variable)."""
    if rank != 0:
        data = uid_q.get(timeout=120)
        if data is None:
            raise RuntimeError("rank 0 could not make the unique id")
        return plexus.UniqueId.from_bytes(data)
    uid = backend.unique_id()
    for _ in range(nranks - 1):
        uid_q.put(bytes(uid))
    return uid


def rank_main(spec, rank, a, uid_q, res_q):
    """A rank's process: open the backend, join, work, report to the parent."""
    try:
        if a.device == "cpu" and a.tensors == "torch":
            torch_or_none().set_num_threads(max(1, (os.cpu_count() or 1) // a.ranks))
        # the GPU before the communicator: plexus and PyTorch must agree on it
        ops = tp_model.make_ops(a.tensors, a.dtype, f"cuda:{rank}" if a.device == "cuda" else "cpu")
        try:
            backend = plexus.Backend(spec)
        except plexus.PlexusError:
            if rank == 0:  # unblock the others, which wait for the id
                for _ in range(a.ranks - 1):
                    uid_q.put(None)
            raise
        with backend:
            uid = get_uid(rank, a.ranks, backend, uid_q)
            config = dict(cuda_device=rank) if a.device == "cuda" else {}
            with backend.communicator(uid, a.ranks, rank, name="tp-demo", **config) as comm:
                result = rank_work(ops, comm, rank, a)
                result["name"] = backend.name
        res_q.put(result)
    except Exception as e:  # reported by the parent, which then ends the others
        res_q.put(dict(rank=rank, error=f"{type(e).__name__}: {e}"))


# -- the parent ---------------------------------------------------------------
def run_backend(spec, a):
    """Start the ranks for one backend; their results, or an error text."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no CUDA state inherited
    uid_q, res_q = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=rank_main, args=(spec, r, a, uid_q, res_q)) for r in range(a.ranks)]
    for p in procs:
        p.start()
    results, errors, deadline = [], [], time.monotonic() + a.timeout
    while len(results) + len(errors) < a.ranks:
        try:
            r = res_q.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            errors.append(f"timed out after {a.timeout} s")
            break
        if "error" in r:
            errors.append(f"rank {r['rank']}: {r['error']}")
            deadline = min(deadline, time.monotonic() + 20)  # peers may now hang: give them 20 s
        else:
            results.append(r)
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.terminate()
            p.join()
    return sorted(results, key=lambda r: r["rank"]), errors


def report(spec, a, results, errors):
    """Print one backend's lines; its summary row (None when it failed)."""
    if errors:
        for e in errors:
            print(f"[{spec}] FAILED: {e}", flush=True)
        return None
    tol = tp_model.tolerance(a.dtype, a.layers)
    err = max(max(r["err_decode"], r["err_prefill"]) for r in results)
    ok = err <= tol
    print(f"[{spec}] backend {results[0]['name']}: check on every rank: max error "
          f"{err:.2e} of the reference's RMS (tolerance {tol:.0e}): {'OK' if ok else 'MISMATCH'}")
    row = dict(spec=spec, ok=ok, err=err)
    elem = tp_model.DTYPE_BYTES[a.dtype]
    for loop, tokens, steps in (("decode", 1, a.decode_steps),
                                ("prefill", a.prefill_tokens, a.prefill_steps)):
        wall = max(r[loop][0] for r in results)  # the slowest rank sets the pace
        share = sum(r[loop][1] / r[loop][0] for r in results) / len(results)
        row[loop] = (wall / steps * 1e3, tokens * steps / wall, share * 100)
        print(f"[{spec}] {loop:7s} ({tokens} token(s) x {steps} steps, {a.layers} all-reduces "
              f"of {human(tokens * a.hidden * elem)} a step): {row[loop][0]:.3f} ms/step, "
              f"{row[loop][1]:.0f} tokens/s, all-reduce {row[loop][2]:.0f}% of the time", flush=True)
    return row


def human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def summary(rows, a):
    print(f"\nsummary: {a.ranks} ranks, {a.device}, {a.dtype} {a.tensors} tensors, {a.layers} layers, "
          f"hidden {a.hidden}, ffn {a.ffn}")
    print(f"{'backend':<14}{'check':>7}{'decode ms':>11}{'tok/s':>10}{'AR %':>6}"
          f"{'prefill ms':>12}{'tok/s':>10}{'AR %':>6}")
    for spec, row in rows:
        if row is None:
            print(f"{spec:<14}{'FAILED':>7}")
            continue
        d, p = row["decode"], row["prefill"]
        print(f"{spec:<14}{'OK' if row['ok'] else 'BAD':>7}{d[0]:>11.3f}{d[1]:>10.0f}{d[2]:>6.0f}"
              f"{p[0]:>12.3f}{p[1]:>10.0f}{p[2]:>6.0f}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", help="backend spec; repeat for several "
                        "(default: shm-native on CPU; " + ", ".join(GPU_BACKENDS) + " on GPUs)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when PyTorch sees GPUs")
    parser.add_argument("--ranks", type=int, help="processes (default: every GPU, or 2 on CPU)")
    parser.add_argument("--tensors", choices=["auto", "torch", "numpy"], default="auto",
                        help="auto: PyTorch when installed, else NumPy (CPU only)")
    parser.add_argument("--dtype", help="float32, float64, float16, bfloat16 (default: bfloat16 "
                        "on GPUs, float32 on CPU)")
    parser.add_argument("--hidden", type=int, help="model width (default 2048 on GPUs, 256 on CPU)")
    parser.add_argument("--ffn", type=int, help="MLP width (default 4 x hidden)")
    parser.add_argument("--layers", type=int)
    parser.add_argument("--decode-steps", type=int)
    parser.add_argument("--prefill-tokens", type=int)
    parser.add_argument("--prefill-steps", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per backend")
    return parser.parse_args()


def resolve(a):
    """Fill the defaults that depend on what this machine has; an error
    text when the combination cannot run."""
    torch = torch_or_none() if a.tensors != "numpy" else None
    if a.tensors == "auto":
        a.tensors = "torch" if torch else "numpy"
    if a.tensors == "torch" and torch is None:
        return "--tensors torch: PyTorch is not installed"
    gpus = torch.cuda.device_count() if torch and torch.cuda.is_available() else 0
    a.device = a.device or ("cuda" if gpus and a.tensors == "torch" else "cpu")
    if a.device == "cuda" and a.tensors != "torch":
        return "--device cuda needs PyTorch tensors"
    a.ranks = a.ranks or (gpus if a.device == "cuda" else 2)
    if a.device == "cuda" and a.ranks > gpus:
        return f"{a.ranks} ranks need {a.ranks} GPUs, PyTorch sees {gpus}"
    for key, value in DEFAULTS[a.device].items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.ffn = a.ffn or 4 * a.hidden
    if a.dtype not in tp_model.TOLERANCE:
        return f"--dtype {a.dtype}: one of {', '.join(tp_model.TOLERANCE)}"
    if a.dtype == "bfloat16" and a.tensors == "numpy" and not has_module("ml_dtypes"):
        return "--dtype bfloat16 with NumPy needs ml_dtypes (or use PyTorch tensors)"
    if a.ffn % a.ranks:
        return f"ffn {a.ffn} is not a multiple of {a.ranks} ranks"
    a.backend = a.backend or (GPU_BACKENDS if a.device == "cuda" else ["shm-native"])
    return None


def main():
    a = parse_args()
    problem = resolve(a)
    if problem:
        print(f"tp_demo: {problem}", file=sys.stderr)
        return 2
    if a.device != "cuda":  # N ranks share the cores: one BLAS thread pool each would oversubscribe them
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(max(1, (os.cpu_count() or 1) // a.ranks)))
    print(f"tp_demo: {a.ranks} ranks on {a.device}, {a.dtype} {a.tensors} tensors, {a.layers} "
          f"layers, hidden {a.hidden}, ffn {a.ffn} ({a.ffn // a.ranks} per rank)", flush=True)
    rows = []
    for spec in a.backend:
        results, errors = run_backend(spec, a)
        rows.append((spec, report(spec, a, results, errors)))
    summary(rows, a)
    return 0 if all(row and row["ok"] for _, row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
