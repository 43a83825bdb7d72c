#!/usr/bin/env python3
"""A Python host through ctypes: loads libplexus (PLEXUS_LIB), reads the
version and a status name, gets a readable plx_last_error() after a bad call,
checks the load report is JSON, and runs a 1-rank all-reduce on fixture-good
(PLEXUS_PLUGIN_PATH points at the fixture plugins)."""
import ctypes
import json
import os
import sys

PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_FLOAT32, PLX_SUM, PLX_FORMAT_JSON = 0, -1, 8, 0, 1


class UniqueId(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint8 * 256)]


def load():
    lib = ctypes.CDLL(os.environ["PLEXUS_LIB"])
    lib.plx_version_string.restype = ctypes.c_char_p
    lib.plx_status_string.restype = ctypes.c_char_p
    lib.plx_status_string.argtypes = [ctypes.c_int32]
    lib.plx_last_error.restype = ctypes.c_char_p
    lib.plx_backend_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.plx_backend_close.argtypes = [ctypes.c_void_p]
    lib.plx_load_report.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p,
                                    ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.plx_get_unique_id.argtypes = [ctypes.c_void_p, ctypes.POINTER(UniqueId)]
    lib.plx_comm_init.argtypes = [ctypes.c_void_p, ctypes.POINTER(UniqueId), ctypes.c_int32,
                                  ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.plx_comm_destroy.argtypes = [ctypes.c_void_p]
    lib.plx_all_reduce.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                   ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def check_version(lib):
    major, minor, patch = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()
    assert lib.plx_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch)) == PLX_OK
    text = lib.plx_version_string().decode()
    assert text.startswith(f"{major.value}.{minor.value}.{patch.value} (plugin ABI 1."), text
    assert lib.plx_status_string(-7) == b"PLX_ERR_TIMEOUT"
    assert lib.plx_status_string(0) == b"PLX_OK"
    return text


def check_bad_call(lib):
    backend = ctypes.c_void_p()
    status = lib.plx_backend_open(b"./rel.so", ctypes.byref(backend))
    error = lib.plx_last_error().decode()
    assert status == PLX_ERR_INVALID_ARGUMENT, (status, error)
    assert "relative path" in error and "The grammar" in error, error
    assert backend.value is None


def report_json(lib, backend):
    needed = ctypes.c_size_t()
    assert lib.plx_load_report(backend, PLX_FORMAT_JSON, None, 0, ctypes.byref(needed)) == PLX_OK
    buf = ctypes.create_string_buffer(needed.value)
    assert lib.plx_load_report(backend, PLX_FORMAT_JSON, buf, needed.value, ctypes.byref(needed)) == PLX_OK
    return json.loads(buf.value.decode())


def check_all_reduce(lib):
    backend, comm, uid = ctypes.c_void_p(), ctypes.c_void_p(), UniqueId()
    assert lib.plx_backend_open(b"fixture-decline,fixture-good", ctypes.byref(backend)) == PLX_OK, \
        lib.plx_last_error()
    report = report_json(lib, backend)
    assert [c["name"] for c in report["candidates"] if c["chosen"]] == ["fixture-good"], report
    assert report["candidates"][0]["status"] == "PLX_ERR_UNSUPPORTED", report
    assert lib.plx_get_unique_id(backend, ctypes.byref(uid)) == PLX_OK
    assert lib.plx_comm_init(backend, ctypes.byref(uid), 1, 0, None, ctypes.byref(comm)) == PLX_OK, \
        lib.plx_last_error()
    send = (ctypes.c_float * 5)(1.5, -2.0, 3.25, 0.0, 1e6)
    recv = (ctypes.c_float * 5)()
    assert lib.plx_all_reduce(comm, send, recv, 5, PLX_FLOAT32, PLX_SUM, None, None) == PLX_OK, \
        lib.plx_last_error()
    assert list(recv) == list(send), list(recv)
    assert lib.plx_comm_destroy(comm) == PLX_OK
    assert lib.plx_backend_close(backend) == PLX_OK


def main():
    lib = load()
    version = check_version(lib)
    check_bad_call(lib)
    failed = ctypes.c_void_p()
    assert lib.plx_backend_open(b"nonsense", ctypes.byref(failed)) != PLX_OK
    assert report_json(lib, None)["status"] == "PLX_ERR_NOT_FOUND"  # this thread's failed open
    check_all_reduce(lib)
    print(f"loader.ctypes: libplexus {version}: version, status names, last error, "
          f"JSON report and a 1-rank all_reduce OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
