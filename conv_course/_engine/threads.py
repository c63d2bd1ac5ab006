"""Run blocks of a convolution on as many Python threads as BLAS may use, each with single-threaded BLAS.

A multithreaded BLAS call synchronises its threads many times (once per panel of the inner
dimension); on a busy machine each synchronisation can wait for a descheduled thread. Splitting the
batch into one part per thread, each computed with one-threaded BLAS, needs a single join instead.
The thread count is numpy's BLAS limit (e.g. set by `threadpoolctl` or `conv_course.bench.limit_threads`),
so ops never uses more threads than BLAS would. Falls back to running inline when BLAS limits cannot
be read or changed from this thread.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["count", "run_parts", "split", "scratch", "blocks", "CHUNK_BYTES"]

# Work buffers are built a block of samples (or output rows) at a time, so that they stay in cache.
CHUNK_BYTES = 1 << 20

_STATE = {"blas": None, "pool": None, "size": 0, "pid": None}
_LOCK = threading.Lock()
_SCRATCH = threading.local()  # per-thread work buffers, see scratch


def _blas():
    """threadpoolctl controllers of numpy's BLAS libraries ([] if threadpoolctl is unavailable)."""
    if _STATE["blas"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            _STATE["blas"] = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # pragma: no cover - threadpoolctl missing or failing: run inline
            _STATE["blas"] = []
    return _STATE["blas"]


def count():
    """How many threads `run_parts` would use now: numpy's BLAS thread limit (1 when it cannot be read)."""
    libs = _blas()
    return min((lib.get_num_threads() or 1) for lib in libs) if libs else 1


def split(items, parts):
    """`items` cut into at most `parts` contiguous, nearly equal, non-empty lists."""
    parts = max(1, min(parts, len(items)))
    q, r = divmod(len(items), parts)
    bounds = [i * q + min(i, r) for i in range(parts + 1)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


def run_parts(fn, items):
    """[fn(part) for part in split(items, T)] with T = BLAS thread count, each part on its own thread.

    While the parts run, BLAS is set to one thread, then restored. With T == 1, a single item,
    or BLAS limits out of reach, runs fn(items) inline and returns [result].
    """
    libs, threads = _blas(), count()
    if threads <= 1 or len(items) <= 1 or not _LOCK.acquire(blocking=False):
        return [fn(items)]
    try:
        old = [lib.get_num_threads() for lib in libs]
        for lib in libs:
            lib.set_num_threads(1)
        try:
            if any(lib.get_num_threads() != 1 for lib in libs):  # another thread controls BLAS
                return [fn(items)]
            if (_STATE["size"], _STATE["pid"]) != (threads, os.getpid()):  # a forked child has no pool threads
                if _STATE["pool"] is not None and _STATE["pid"] == os.getpid():
                    _STATE["pool"].shutdown()
                _STATE["pool"] = ThreadPoolExecutor(threads - 1, "conv_course")
                _STATE["size"], _STATE["pid"] = threads, os.getpid()
            first, *rest = split(items, threads)
            futures = [_STATE["pool"].submit(fn, part) for part in rest]
            return [fn(first)] + [f.result() for f in futures]  # the calling thread does the first part
        finally:
            for lib, n in zip(libs, old):
                lib.set_num_threads(n)
    finally:
        _LOCK.release()


def scratch(dtype):
    """scratch(name, shape) -> a `shape` view of this thread's buffer `name`, grown on demand and kept.

    Blocks and calls reuse these buffers: fresh large temporaries in every block (or call) cost page
    faults, as the allocator maps and unmaps them, and took most of the time of mid-sized convolutions.
    A view lives until the next request of the same name in the same thread; never return one.
    """
    dtype = np.dtype(dtype)
    store = _SCRATCH.__dict__.setdefault("buffers", {})

    def view(name, shape):
        size = int(np.prod(shape))
        buf = store.get((name, dtype.str))
        if buf is None or buf.size < size:
            buf = store[(name, dtype.str)] = np.empty(size, dtype)
        return buf[:size].reshape(shape)
    return view


def blocks(n, ho, row_bytes, chunk_bytes=None):
    """(n0, n1, r0, r1) blocks: whole samples while a block of rows fits `chunk_bytes`, else row bands.

    `row_bytes` is the buffer size one output row needs; `chunk_bytes` defaults to `CHUNK_BYTES`.
    Blocks are of nearly equal size and, where the sizes allow, a multiple of the thread count in
    number, so that the threads of `run_parts` get equal shares.
    """
    rows = max(1, (chunk_bytes or CHUNK_BYTES) // max(1, row_bytes))
    threads = count()
    if rows >= ho:
        parts = -(-n // max(1, rows // ho))
        parts = min(n, -(-parts // threads) * threads)
        return [(n * i // parts, n * (i + 1) // parts, 0, ho) for i in range(parts)]
    bands = -(-ho // rows)
    if n % threads:
        bands = min(ho, -(-bands // threads) * threads)
    return [(n0, n0 + 1, ho * j // bands, ho * (j + 1) // bands) for n0 in range(n) for j in range(bands)]
