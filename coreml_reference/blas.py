"""Matrix products with the BLAS thread count chosen per product.

numpy's OpenBLAS runs every product on its configured threads (OPENBLAS_NUM_THREADS, default
all cores), and its threads wait for each other by spinning. On a machine whose cores are
all busy, a multi-threaded product waits until every one of its threads is scheduled again:
on this project's 2-core machine under a load average of 5, 2-thread products of PANNs' sizes
took 10-100x longer than on one thread (PyTorch's and onnxruntime's pools degrade far less).
On a quiet machine a second thread pays from about a quarter of a million multiply-adds on
(PANNs V1's products of 1.9 M to 53 M: 3.45 ms on one thread, 1.72 ms on two; PANNs V2's
[960, 160] x [160, 6]: 41 us on one, 22 us on two; the whole v3 V2 model 8.85 -> 8.35 ms with
the threshold at 256 k instead of 1 M); below that, waking it costs more (OpenBLAS itself
keeps products under about that size on one thread).

So ``matmul`` runs a product on one thread when it is small (under ``SMALL_MACS``
multiply-adds) or when the machine is busier than its cores (``_busy``), and on the configured
count otherwise; it restores the configured count after each product. The thread count can
move a result in its last bits (measured: sgemm of [300, 300] x [300, 300] differs by 3e-5
at values up to 79, about one float32 ulp), so on a busy machine an output may differ by
that much from a quiet one's: far inside every tolerance, but not bit-identical. Where the
OpenBLAS library cannot be found (another BLAS), products run as numpy runs them.
"""
from __future__ import annotations

import ctypes
import glob
import itertools
import os
import time

import numpy as np

SMALL_MACS = 1 << 18        # multiply-adds below which one thread is at least as fast
LOAD_CHECK_SECONDS = 0.2

_state = {"found": None, "set": None, "configured": 1, "busy": False, "checked": -1e9}


def _library():
    """(set_num_threads, configured thread count) of numpy's OpenBLAS, or None."""
    if _state["found"] is None:
        _state["found"] = False
        root = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
        paths = glob.glob(os.path.join(root, "numpy.libs", "lib*openblas*")) + glob.glob(
            os.path.join(os.path.dirname(np.__file__), ".dylibs", "lib*openblas*"))
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    setter = getattr(lib, prefix + "_set_num_threads" + suffix, None)
                    getter = getattr(lib, prefix + "_get_num_threads" + suffix, None)
                    if setter is not None and getter is not None:
                        setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                        core = getattr(lib, prefix + "_get_corename" + suffix, None)
                        if core is not None:
                            core.restype = ctypes.c_char_p
                        _state.update(found=True, set=setter, configured=max(1, getter()),
                                      core=core)
                        return _state
    return _state if _state["found"] else None


def kernels_name():
    """The CPU kernels numpy's OpenBLAS runs ("Haswell": AVX2, "SkylakeX": AVX-512 ...), as
    it chose them or OPENBLAS_CORETYPE set them; None when not OpenBLAS."""
    lib = _library()
    if lib is None or lib.get("core") is None:
        return None
    return lib["core"]().decode()


def configured_threads():
    """numpy's BLAS thread count as configured (None when not OpenBLAS)."""
    lib = _library()
    return lib["configured"] if lib else None


def _busy():
    """Whether a second BLAS thread would wait for a core, read at most every
    LOAD_CHECK_SECONDS: more threads runnable right now than cores (this one counted, and a
    spinning BLAS worker of ours: /proc/loadavg's fourth field), or a 1-minute load average of
    at least cores + 1. The average alone lags a new load by most of a minute: PANNs V1 on v3
    took 65 ms instead of 7 beside two busy processes before it rose."""
    now = time.monotonic()
    if now - _state["checked"] > LOAD_CHECK_SECONDS:
        cores = os.cpu_count() or 1
        _state["busy"] = _runnable() > cores or _load_average() >= cores + 1
        _state["checked"] = now
    return _state["busy"]


def _runnable():
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):     # not Linux
        return 0


def _load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def threads_for(macs):
    """Threads ``matmul`` gives a product of ``macs`` multiply-adds."""
    lib = _library()
    if lib is None or lib["configured"] == 1:
        return lib["configured"] if lib else None
    return 1 if macs < SMALL_MACS or _busy() else lib["configured"]


def macs_of(a_shape, b_shape):
    """Multiply-adds of ``np.matmul`` on arrays of these shapes."""
    m, k = (a_shape[-2], a_shape[-1]) if len(a_shape) > 1 else (1, a_shape[0])
    n = b_shape[-1] if len(b_shape) > 1 else 1
    batch = 1
    # the broadcast batch axes, in plain Python (np.broadcast_shapes cost 10 us a product);
    # shapes that do not broadcast are numpy's error to raise, whatever count this gives
    for x, y in itertools.zip_longest(reversed(a_shape[:-2]), reversed(b_shape[:-2]),
                                      fillvalue=1):
        batch *= x if y == 1 else y
    return batch * m * k * n


def matmul(a, b, macs=None):
    """``np.matmul(a, b)``, on the threads ``threads_for`` gives its size (``macs``: its
    multiply-adds, when the caller knows them already)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
    lib = _library()
    if lib is None or lib["configured"] == 1 or a.ndim == 0 or b.ndim == 0:
        return np.matmul(a, b)
    if threads_for(macs_of(a.shape, b.shape) if macs is None else macs) != 1:
        return np.matmul(a, b)
    lib["set"](1)                # a thread running beside this one at most loses speed
    try:
        return np.matmul(a, b)
    finally:
        lib["set"](lib["configured"])
