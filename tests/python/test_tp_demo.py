#!/usr/bin/env python3
"""The tensor-parallel demo (examples/python/tp_demo.py) on the CPU: 2 ranks
on shm-native at tiny sizes with NumPy, or PyTorch's CPU tensors where it is
installed, must match the one-process reference; and the check must be able
to fail (a stack that skips the all-reduce, or adds the row-parallel bias on
every rank, is far outside the tolerance). Exit 77 (skipped) only when
neither NumPy nor PyTorch can be imported. PLEXUS_LIBRARY names the build's
library; without it the clone's build/ is used."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_DIR = os.path.join(HERE, "..", "..", "examples", "python")
sys.path.insert(0, DEMO_DIR)

try:
    import numpy  # noqa: F401
    TENSORS = "numpy"
except ImportError:
    try:
        import torch  # noqa: F401
        TENSORS = "torch"
    except ImportError:
        print("neither NumPy nor PyTorch: the demo cannot run; skipped")
        sys.exit(77)

import tp_model  # noqa: E402

TINY = ["--hidden", "64", "--ffn", "128", "--layers", "3", "--decode-steps", "10",
        "--prefill-tokens", "16", "--prefill-steps", "2", "--warmup", "1"]


class FakeComm:
    """Stands in for a communicator of `nranks` ranks run in one process: it
    records the partial sums instead of reducing them."""

    def __init__(self):
        self.calls = 0

    def all_reduce(self, x, op="sum", stream=None):
        self.calls += 1
        return x


class Model(unittest.TestCase):
    def setUp(self):
        self.ops = tp_model.make_ops(TENSORS, "float64", "cpu")
        self.x = tp_model.make_input(self.ops, 3, 4, 32)
        self.ref = tp_model.reference_forward(self.ops, 3, [self.x], 2, 32, 64)[0]

    def tp_by_hand(self, nranks, bias_every_rank=False, reduce=True):
        """The TP stack with the all-reduce done here, over shards of every rank."""
        shards = [tp_model.build_shards(self.ops, 3, 2, 32, 64, r, nranks) for r in range(nranks)]
        x = self.x
        for layer in range(2):
            parts = [self.ops.gelu(x @ s[layer].w1 + s[layer].b1) @ s[layer].w2 for s in shards]
            total = sum(parts) if reduce else parts[0]
            bias = shards[0][layer].b2 * (nranks if bias_every_rank else 1)
            x = x + total + bias
        return x

    def test_shards_summed_match_the_reference(self):
        for nranks in (1, 2, 4):
            err = self.ops.max_rel_error(self.tp_by_hand(nranks), self.ref)
            self.assertLess(err, tp_model.tolerance("float64", 2), nranks)

    def test_a_wrong_stack_fails_the_check(self):
        tol = tp_model.tolerance("bfloat16", 2)  # even the loosest tolerance catches these
        self.assertGreater(self.ops.max_rel_error(self.tp_by_hand(2, reduce=False), self.ref), tol)
        self.assertGreater(self.ops.max_rel_error(self.tp_by_hand(2, bias_every_rank=True),
                                                  self.ref), tol)

    def test_one_all_reduce_per_layer(self):
        shards = tp_model.build_shards(self.ops, 3, 2, 32, 64, 0, 1)
        comm = FakeComm()
        y = tp_model.tp_forward(self.ops, comm, self.x, shards, tp_model.NullTimer())
        self.assertEqual(comm.calls, 2)
        self.assertLess(self.ops.max_rel_error(y, self.ref), tp_model.tolerance("float64", 2))


class Demo(unittest.TestCase):
    def run_demo(self, *extra):
        env = dict(os.environ, PLEXUS_BACKEND="shm-native")
        proc = subprocess.run([sys.executable, os.path.join(DEMO_DIR, "tp_demo.py"), "--ranks", "2",
                               "--device", "cpu", "--timeout", "60", *TINY, *extra],
                              env=env, capture_output=True, text=True, timeout=120)
        sys.stdout.write(proc.stdout + proc.stderr)
        return proc

    def test_two_ranks_match_the_reference(self):
        proc = self.run_demo()
        self.assertEqual(proc.returncode, 0)
        self.assertIn("[shm-native] backend shm-native: check on every rank", proc.stdout)
        self.assertIn(": OK", proc.stdout)
        self.assertRegex(proc.stdout, r"decode .* ms/step, \d+ tokens/s, all-reduce \d+%")
        self.assertRegex(proc.stdout, r"prefill .* ms/step, \d+ tokens/s, all-reduce \d+%")

    def test_float64_and_a_missing_backend(self):
        proc = self.run_demo("--dtype", "float64", "--backend", "shm-native",
                             "--backend", "no-such-plugin")
        self.assertEqual(proc.returncode, 1)  # the second backend fails, the first still ran
        self.assertRegex(proc.stdout, r"shm-native +OK")
        self.assertIn("[no-such-plugin] FAILED: rank 0: NotFound", proc.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
