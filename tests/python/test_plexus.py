#!/usr/bin/env python3
"""The plexus Python package (examples/python/plexus) without pytest:
statuses map to exception classes carrying plx_last_error(), unique ids
round-trip through bytes and hex, arrays are checked before any pointer
reaches C, and the collectives, pools, statistics and reports work on a
1-rank shm-native communicator. PLEXUS_LIBRARY names the build's library."""
import threading
import unittest

import numpy as np

import plexus
from plexus import _lib


class Errors(unittest.TestCase):
    def test_invalid_spec_raises_invalid_argument_with_message(self):
        with self.assertRaises(plexus.InvalidArgument) as caught:
            plexus.Backend("./relative.so")
        e = caught.exception
        self.assertEqual(e.status, _lib.PLX_ERR_INVALID_ARGUMENT)
        self.assertEqual(e.status_name, "PLX_ERR_INVALID_ARGUMENT")
        self.assertIn("relative path", e.message)
        self.assertIn("The grammar", e.message)
        self.assertTrue(str(e).startswith("PLX_ERR_INVALID_ARGUMENT: "))
        self.assertIsInstance(e, ValueError)
        self.assertEqual(plexus.last_load_report("json")["status"], "PLX_ERR_INVALID_ARGUMENT")

    def test_missing_plugin_is_not_found(self):
        with self.assertRaises(plexus.NotFound) as caught:
            plexus.Backend("no-such-plugin")
        self.assertIn("no-such-plugin", caught.exception.message)

    def test_every_status_has_its_class_and_library_name(self):
        lib = _lib.lib()
        for status in range(-1, -14, -1):
            e = plexus.error_for(status, "detail")
            self.assertIsInstance(e, plexus.PlexusError)
            self.assertIsNot(type(e), plexus.PlexusError, status)
            self.assertEqual(e.status_name, lib.plx_status_string(status).decode())
        self.assertIsInstance(plexus.error_for(-7, ""), TimeoutError)
        self.assertIsInstance(plexus.error_for(-8, ""), plexus.PeerLost)
        self.assertIsInstance(plexus.error_for(-9, ""), plexus.Aborted)
        self.assertIsInstance(plexus.error_for(-3, ""), plexus.Unsupported)
        unknown = plexus.error_for(-99, "x")
        self.assertIs(type(unknown), plexus.PlexusError)
        self.assertEqual(unknown.status, -99)

    def test_struct_sizes_are_set(self):
        self.assertEqual(_lib.CollOptions().struct_size, 32)
        self.assertEqual(_lib.CollOptions().wire_dtype, -1)
        self.assertEqual(_lib.CommConfig().cuda_device, -1)
        self.assertEqual(_lib.BackendProps().struct_size, 72)


class UniqueIds(unittest.TestCase):
    def test_round_trip(self):
        with plexus.Backend("shm-native") as backend:
            uid = backend.unique_id()
        self.assertEqual(len(bytes(uid)), 256)
        self.assertEqual(plexus.UniqueId.from_bytes(bytes(uid)), uid)
        self.assertEqual(plexus.UniqueId.from_hex(uid.hex()), uid)
        with self.assertRaises(plexus.InvalidArgument):
            plexus.UniqueId(b"short")
        with self.assertRaises(plexus.InvalidArgument):
            plexus.UniqueId.from_hex("zz")

    def test_corrupted_id_is_rejected_by_the_loader(self):
        with plexus.Backend("shm-native") as backend:
            data = bytearray(bytes(backend.unique_id()))
            data[100] ^= 0xFF
            with self.assertRaises(plexus.InvalidArgument):
                backend.communicator(bytes(data), 1, 0, init_timeout_ms=2000)


class OneRank(unittest.TestCase):
    def setUp(self):
        self.backend = plexus.Backend("shm-native")
        self.comm = self.backend.communicator(self.backend.unique_id(), 1, 0, name="py-test")

    def tearDown(self):
        self.comm.destroy()
        self.backend.close()

    def test_queries(self):
        self.assertEqual((self.comm.rank, self.comm.size, self.comm.device), (0, 1, -1))
        props = self.backend.props
        self.assertEqual(props.name, "shm-native")
        self.assertIn("float32", props.dtypes)
        self.assertIn("all_reduce", props.collectives)
        self.assertIn("shm-native", self.backend.load_report())
        self.assertIn("plugins", plexus.describe_plugins("json"))
        summary, full = self.backend.topology()
        self.assertGreaterEqual(summary["core_count"], 1)
        self.assertIsInstance(full, dict)

    def test_all_reduce_in_place_and_out_of_place(self):
        for dtype in (np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64, np.float16,
                      np.float32, np.float64):
            x = np.arange(7, dtype=dtype)
            self.assertIs(self.comm.all_reduce(x), x)
            out = np.zeros_like(x)
            self.assertIs(self.comm.all_reduce(x, out, op="max"), out)
            np.testing.assert_array_equal(out, np.arange(7, dtype=dtype))
        self.assertEqual(self.comm.stats("all_reduce")["calls"], 18)

    def test_arrays_are_checked_before_c_sees_them(self):
        with self.assertRaisesRegex(plexus.InvalidArgument, "not C-contiguous"):
            self.comm.all_reduce(np.zeros((4, 4), np.float32)[:, 0])
        with self.assertRaisesRegex(plexus.InvalidArgument, "one dtype"):
            self.comm.all_reduce(np.zeros(4, np.float32), np.zeros(4, np.float64))
        with self.assertRaisesRegex(plexus.InvalidArgument, "4 elements, recv 3"):
            self.comm.all_reduce(np.zeros(4, np.float32), np.zeros(3, np.float32))
        with self.assertRaisesRegex(plexus.InvalidArgument, "complex64 has no plexus dtype"):
            self.comm.all_reduce(np.zeros(4, np.complex64))
        read_only = np.zeros(4, np.float32)
        read_only.flags.writeable = False
        with self.assertRaisesRegex(plexus.InvalidArgument, "read-only"):
            self.comm.all_reduce(read_only)
        with self.assertRaisesRegex(plexus.InvalidArgument, "not a ReduceOp"):
            self.comm.all_reduce(np.zeros(4, np.float32), op="median")
        with self.assertRaises(TypeError):
            self.comm.all_reduce([1.0, 2.0])

    def test_library_errors_carry_last_error(self):
        with self.assertRaises(plexus.InvalidArgument) as caught:
            self.comm.broadcast(np.zeros(4, np.float32), root=3)
        self.assertIn("root", caught.exception.message)

    def test_other_collectives(self):
        np.testing.assert_array_equal(self.comm.all_gather(np.arange(3)), np.arange(3))
        np.testing.assert_array_equal(self.comm.reduce_scatter(np.arange(4.0)), np.arange(4.0))
        np.testing.assert_array_equal(self.comm.gather(np.arange(2, dtype=np.int32), counts=[2]),
                                      np.arange(2))
        np.testing.assert_array_equal(self.comm.reduce(np.ones(3), op="prod"), np.ones(3))
        np.testing.assert_array_equal(self.comm.broadcast(np.ones(3)), np.ones(3))
        self.comm.all_reduce(None, np.ones(5, np.float32), no_contribution=True)
        self.comm.barrier()

    def test_pool_block_as_array(self):
        block = self.comm.mem_alloc(1 << 16, "shared_host", tag=3)
        view = block.as_array("float32")
        view[:] = 2.0
        self.comm.all_reduce(view, op="avg")
        self.assertEqual(float(view[0]), 2.0)
        self.assertEqual(self.comm.mem_stats("shared_host", tag=3)["bytes_in_use"], 1 << 16)
        del view
        block.free()
        block.free()  # a second free does nothing
        self.assertEqual(self.comm.mem_stats()["bytes_in_use"], 0)
        self.assertGreaterEqual(self.comm.trim("shared_host"), 0)
        self.assertIsInstance(self.comm.pressure(), plexus.Pressure)
        with self.assertRaises(plexus.InvalidArgument):
            self.comm.mem_alloc(0)

    def test_used_after_destroy(self):
        self.comm.destroy()
        with self.assertRaisesRegex(plexus.InvalidArgument, "after destroy"):
            self.comm.all_reduce(np.zeros(2, np.float32))


def fake_torch():
    """A stand-in `torch` module with just what plexus.buffers touches
    (tensors backed by NumPy arrays), so the tensor path is tested the
    same way with or without PyTorch; the real module is put back after."""
    import sys
    import types
    torch = types.ModuleType("torch")

    class Device:
        def __init__(self, kind, index=None):
            self.type, self.index = kind, index

    class DType:
        def __init__(self, name):
            self.name = name

        def __str__(self):
            return "torch." + self.name

    class Tensor:
        def __init__(self, array, device=Device("cpu")):
            self.array, self.device = array, device
            self.dtype, self.shape = DType(array.dtype.name), array.shape

        def is_contiguous(self):
            return self.array.flags.c_contiguous

        def data_ptr(self):
            return self.array.ctypes.data

        def numel(self):
            return self.array.size

        def stride(self):
            return tuple(s // self.array.itemsize for s in self.array.strides)

    Tensor.__module__ = "torch"
    torch.Tensor, torch.Device = Tensor, Device
    torch.cuda = types.SimpleNamespace(
        current_stream=lambda device: types.SimpleNamespace(cuda_stream=0x1234))
    torch.empty = lambda n, dtype, device: Tensor(np.empty(n, dtype.name), device)
    sys.modules["torch"] = torch
    return torch


class TorchPath(unittest.TestCase):
    """The tensor path of plexus.buffers against a stand-in torch (the real
    one's CUDA path runs on the GPU machines)."""

    def setUp(self):
        import sys
        self.saved = sys.modules.get("torch")
        self.torch = fake_torch()

    def tearDown(self):
        import sys
        if self.saved is None:
            sys.modules.pop("torch", None)
        else:
            sys.modules["torch"] = self.saved

    def test_cuda_tensor_is_device_memory_on_the_current_stream(self):
        from plexus.buffers import as_buffer, resolve_stream
        t = self.torch.Tensor(np.zeros(8, np.float16), self.torch.Device("cuda", 1))
        b = as_buffer(t, "send")
        self.assertEqual((b.kind, b.device, b.stream, b.dtype, b.count),
                         (plexus.MemKind.DEVICE, 1, 0x1234, plexus.DType.FLOAT16, 8))
        self.assertEqual(resolve_stream([b, b], None), 0x1234)
        self.assertEqual(resolve_stream([b], 77), 77)
        with self.assertRaisesRegex(plexus.InvalidArgument, "one place"):
            resolve_stream([b, as_buffer(np.zeros(8, np.float16), "recv")], None)
        strided = self.torch.Tensor(np.zeros((4, 4), np.float32)[:, 0])
        with self.assertRaisesRegex(plexus.InvalidArgument, "not contiguous"):
            as_buffer(strided, "send")

    def test_cpu_tensor_all_reduce(self):
        with plexus.Backend("shm-native") as backend:
            with backend.communicator(backend.unique_id(), 1, 0) as comm:
                t = self.torch.Tensor(np.arange(6, dtype=np.float32))
                self.assertIs(comm.all_reduce(t), t)
                gathered = comm.all_gather(t)
                self.assertIsInstance(gathered, self.torch.Tensor)
                np.testing.assert_array_equal(gathered.array, np.arange(6))


class TwoThreadRanks(unittest.TestCase):
    """Two ranks as threads of this process (shm-native's thread_ranks):
    a queue and an all-reduce across them."""

    def test_queue_and_all_reduce(self):
        backend = plexus.Backend("shm-native")
        uid, results = backend.unique_id(), {}

        def rank_main(rank):
            with backend.communicator(uid, 2, rank) as comm:
                x = comm.all_reduce(np.full(1000, rank + 1, np.int64))
                with comm.queue(writer_rank=0, slot_bytes=256) as q:
                    if rank == 0:
                        q.enqueue(b"hello")
                        q.enqueue(np.arange(200, dtype=np.int32))  # 800 bytes: chunked
                        results[rank] = int(x[0])
                    else:
                        results[rank] = (int(x[0]), q.dequeue(), q.dequeue())
                    comm.barrier()

        threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        backend.close()
        self.assertEqual(results[0], 3)
        self.assertEqual(results[1][:2], (3, b"hello"))
        self.assertEqual(np.frombuffer(results[1][2], np.int32).tolist(), list(range(200)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
