#!/usr/bin/env python3
"""The bad-input sweep through the Python package (issue 10), smaller than
the C one (tests/loader/test_bad_input.cpp): each row passes one wrong
argument through the package and names the exception class it must raise
and the words its message must hold. Rows cover what the package checks
itself (arrays, enum names) and what it passes on to the loader (ranks,
sizes, ids, structs), so a message from either side names the argument.
Afterwards the communicator must still work. PLEXUS_LIBRARY names the
build's library; PLEXUS_BACKEND is shm-native."""
import unittest

import numpy as np

import plexus

A = np.arange(8, dtype=np.float32)


def corrupted(uid):
    data = bytearray(bytes(uid))
    data[77] ^= 0x10
    return plexus.UniqueId(bytes(data))


# (what, call(backend, comm), exception class, words in the message)
ROWS = [
    ("spec relative path", lambda b, c: plexus.Backend("./libplexus-x.so"), plexus.InvalidArgument,
     ["relative path", "grammar"]),
    ("spec unknown plugin", lambda b, c: plexus.Backend("no-such-plugin"), plexus.NotFound,
     ["no-such-plugin"]),
    ("nranks 0", lambda b, c: b.communicator(b.unique_id(), 0, 0), plexus.InvalidArgument,
     ["plx_comm_init", "nranks is 0"]),
    ("rank out of range", lambda b, c: b.communicator(b.unique_id(), 2, 5), plexus.InvalidArgument,
     ["plx_comm_init", "rank 5"]),
    ("negative timeout", lambda b, c: b.communicator(b.unique_id(), 1, 0, timeout_ms=-4),
     plexus.InvalidArgument, ["plx_comm_init", "timeout_ms"]),
    ("corrupted id", lambda b, c: b.communicator(corrupted(b.unique_id()), 1, 0), plexus.InvalidArgument,
     ["plx_comm_init", "id"]),
    ("id of 5 bytes", lambda b, c: plexus.UniqueId(b"12345"), plexus.InvalidArgument, ["UniqueId", "256"]),
    ("id not hex", lambda b, c: plexus.UniqueId.from_hex("zz"), plexus.InvalidArgument, ["from_hex"]),
    ("unknown op name", lambda b, c: c.all_reduce(A, op="median"), plexus.InvalidArgument, ["op", "median"]),
    ("unknown op number", lambda b, c: c.all_reduce(A, op=9), plexus.InvalidArgument, ["op", "9"]),
    ("root out of range", lambda b, c: c.broadcast(A, root=3), plexus.InvalidArgument,
     ["plx_broadcast", "root 3"]),
    ("negative root", lambda b, c: c.reduce(A, np.empty_like(A), root=-1), plexus.InvalidArgument,
     ["plx_reduce", "root -1"]),
    ("dtype mismatch", lambda b, c: c.all_reduce(A, np.empty(8, np.float64)), plexus.InvalidArgument,
     ["float32", "float64"]),
    ("count mismatch", lambda b, c: c.all_reduce(A, np.empty(4, np.float32)), plexus.InvalidArgument,
     ["all_reduce", "8", "4"]),
    ("not contiguous", lambda b, c: c.all_reduce(np.zeros((4, 4), np.float32)[:, 1]),
     plexus.InvalidArgument, ["C-contiguous"]),
    ("read-only recv", lambda b, c: c.all_reduce(A, np.frombuffer(bytes(32), np.float32)),
     plexus.InvalidArgument, ["read-only"]),
    ("dtype without plexus type", lambda b, c: c.all_reduce(np.zeros(4, np.complex64)),
     plexus.InvalidArgument, ["complex64"]),
    ("not an array", lambda b, c: c.all_reduce([1.0, 2.0]), TypeError, ["numpy.ndarray"]),
    ("both buffers None", lambda b, c: c.all_reduce(None), plexus.InvalidArgument, ["None"]),
    ("wire dtype not float", lambda b, c: c.all_reduce(A, wire_dtype="int32"), plexus.InvalidArgument,
     ["plx_all_reduce", "wire_dtype"]),
    ("wire dtype not carried", lambda b, c: c.all_reduce(np.ones(8, np.float64), wire_dtype="bfloat16"),
     plexus.Unsupported, ["shm-native", "wire_dtype bfloat16", "float64"]),
    ("unknown algorithm", lambda b, c: c.all_reduce(A, algorithm="magic"), plexus.InvalidArgument,
     ["algorithm", "magic"]),
    ("unknown coll", lambda b, c: c.stats("scan"), plexus.InvalidArgument, ["coll", "scan"]),
    ("split color", lambda b, c: c.split(-2), plexus.InvalidArgument, ["plx_comm_split", "color -2"]),
    ("alloc zero bytes", lambda b, c: c.mem_alloc(0), plexus.InvalidArgument, ["plx_mem_alloc", "bytes is 0"]),
    ("alloc host kind", lambda b, c: c.mem_alloc(64, kind="host"), plexus.InvalidArgument,
     ["plx_mem_alloc", "kind 0"]),
    ("alloc alignment", lambda b, c: c.mem_alloc(64, alignment=384), plexus.InvalidArgument,
     ["plx_mem_alloc", "alignment 384"]),
    ("alloc tag", lambda b, c: c.mem_alloc(64, tag=64), plexus.InvalidArgument, ["plx_mem_alloc", "tag 64"]),
    ("alloc device kind", lambda b, c: c.mem_alloc(64, kind="device"), plexus.Unsupported,
     ["plx_mem_alloc", "shm-native"]),
    ("stats tag", lambda b, c: c.mem_stats(tag=99), plexus.InvalidArgument, ["plx_mem_stats_get", "tag 99"]),
    ("queue writer", lambda b, c: c.queue(writer_rank=2), plexus.InvalidArgument,
     ["plx_queue_create", "writer_rank 2"]),
    ("queue slot size", lambda b, c: c.queue(slot_bytes=1 << 31), plexus.InvalidArgument,
     ["plx_queue_create", "slot_bytes"]),
    ("send unsupported", lambda b, c: c.send(A, 0), plexus.Unsupported, ["plx_send", "shm-native"]),
]


class BadInput(unittest.TestCase):
    def test_every_row_raises_its_class_with_a_message_naming_the_argument(self):
        with plexus.Backend("shm-native") as backend, \
                backend.communicator(backend.unique_id(), 1, 0, timeout_ms=5000) as comm:
            for what, call, error, words in ROWS:
                with self.subTest(what):
                    with self.assertRaises(error) as caught:
                        call(backend, comm)
                    message = str(caught.exception)
                    for word in words:
                        self.assertIn(word, message)
                    self.assertEqual(comm.async_status(), 0)  # bad input breaks nothing
            self.assertEqual(list(comm.all_reduce(A.copy())), list(A))
        print(f"python.bad_input: {len(ROWS)} rows")

    def test_destroyed_communicator_and_closed_backend_are_refused(self):
        backend = plexus.Backend("shm-native")
        comm = backend.communicator(backend.unique_id(), 1, 0)
        comm.destroy()
        with self.assertRaises(plexus.InvalidArgument) as caught:
            comm.all_reduce(A)
        self.assertIn("used after destroy", str(caught.exception))
        backend.close()
        with self.assertRaises(plexus.InvalidArgument) as caught:
            backend.unique_id()
        self.assertIn("used after close", str(caught.exception))


if __name__ == "__main__":
    unittest.main(verbosity=1)
