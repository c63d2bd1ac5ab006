"""Time conv_course.ops.conv2d and conv2d_backward against torch, in one process, interleaved.

Both thread pools (numpy's BLAS and torch) are limited to the same count; inputs are float32.
Calls shorter than a few milliseconds are timed in loops of equal length for both (medians per call).
Each timing follows 50 ms of untimed calls of the same implementation (see `_settled`), and one large
block is allocated and freed first (see `_settle_allocator`): otherwise one side's idle threads, or
page faults on memory that the allocator had handed back to the OS, are timed as part of the other.
Forward compares `ops.conv2d` with `F.conv2d`; backward compares `ops.conv2d_backward` with
`torch.ops.aten.convolution_backward` (the kernel autograd calls for conv2d's backward, without
re-running the forward). Ratios ours/torch are what matter: the CPU may be shared. On a busy CPU,
every multithreaded parallel region (torch's, or one BLAS call's) waits for descheduled threads,
which `ops` avoids by giving each thread its own part of the batch; `--threads 1` compares the
single-threaded kernels alone. numpy's BLAS kernels (e.g. Haswell/AVX2 when OPENBLAS_CORETYPE
forces them, while torch's oneDNN uses AVX-512) are printed and recorded with the results;
`make bench` runs without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (see the Makefile).

    python benchmarks/bench_conv.py [--quick] [--repeats R] [--threads T]

From other code (e.g. the book's performance appendix)::

    bench_conv = runpy.run_path("benchmarks/bench_conv.py")       # does not run main()
    rows = bench_conv["run"](bench_conv["QUICK_SUITE"], repeats=3)
"""

import argparse
import math
import sys
import time

import numpy as np

from conv_course import bench, ops
from conv_course.tables import format_table

# (label, (N, C_in, H, W), C_out, k, stride, padding)
SUITE = [
    ("1x1x28x28 -> 1, 3x3", (1, 1, 28, 28), 1, 3, 1, 0),
    ("64x1x28x28 -> 32, 3x3", (64, 1, 28, 28), 32, 3, 1, 0),
    ("64x32x26x26 -> 64, 3x3", (64, 32, 26, 26), 64, 3, 1, 0),
    ("8x64x56x56 -> 64, 3x3 p1", (8, 64, 56, 56), 64, 3, 1, 1),
    ("1x3x224x224 -> 64, 7x7 s2 p3", (1, 3, 224, 224), 64, 7, 2, 3),
    ("16x3x256x256 -> 16, 5x5", (16, 3, 256, 256), 16, 5, 1, 0),
]
# A few-second version: the same kinds of layers, smaller batches.
QUICK_SUITE = [
    ("1x1x28x28 -> 1, 3x3", (1, 1, 28, 28), 1, 3, 1, 0),
    ("16x1x28x28 -> 32, 3x3", (16, 1, 28, 28), 32, 3, 1, 0),
    ("8x32x26x26 -> 64, 3x3", (8, 32, 26, 26), 64, 3, 1, 0),
    ("1x3x224x224 -> 64, 7x7 s2 p3", (1, 3, 224, 224), 64, 7, 2, 3),
]
COLUMNS = [("shape", "shape", "{}"), ("pass", "pass", "{}"), ("ours_ms", "ours ms", "{:.3f}"),
           ("torch_ms", "torch ms", "{:.3f}"), ("ours_gflops", "ours GFLOP/s", "{:.1f}"),
           ("torch_gflops", "torch GFLOP/s", "{:.1f}"), ("ratio", "ours/torch", "{:.2f}"), ("flag", "IQR>10%", "{}")]


def _inputs(shape, c_out, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random(shape, dtype=np.float32)
    weight = (rng.standard_normal((c_out, shape[1], k, k)) * math.sqrt(2 / (shape[1] * k * k))).astype(np.float32)
    return x, weight, rng.standard_normal(c_out).astype(np.float32)


def _settled(fns, settle_s=0.05):
    """A `sync` for bench.interleaved (called before each clock read) that, before each timing starts,
    runs the function about to be timed again, untimed, for at least `settle_s` seconds (once at least).

    Each implementation is then timed after running on its own, not right after the other: torch's
    OpenMP worker threads spin, waiting for more work, for about 8 ms after each parallel region
    (longer when they share a core), and a numpy call timed in that window runs one of its two
    threads on a core shared with a spinning one. Measured on the 7x7 case, 2 cores: 1.30 ms right
    after torch, 1.50 after 10 ms of numpy calls, 1.13 after 30 ms, 1.06 after 100 ms, and 1.065
    with no torch call at all.
    """
    order, reads = list(fns.values()), [0]

    def sync():
        k = reads[0]
        reads[0] += 1
        if k % 2 == 0:  # before the clock starts (reads alternate: start, stop)
            fn, t0 = order[(k // 2) % len(order)], time.perf_counter()
            fn()
            while time.perf_counter() - t0 < settle_s:
                fn()
    return sync


def _timed(fns, repeats, budget_s=2e-3):
    """bench.interleaved over `fns`, each timing looping enough calls to last about `budget_s`.

    A call of a few microseconds, timed alone, measures the clock and the caches more than the
    call; both implementations get the same number of calls per timing. Medians are per call.
    """
    once = []
    for fn in fns.values():
        fn()
        t0 = time.perf_counter()
        fn()
        once.append(time.perf_counter() - t0)
    calls = max(1, int(budget_s / max(min(once), 1e-7)))
    def looped(fn):
        def run():
            for _ in range(calls):
                fn()  # each result is dropped before the next call, as in a caller's loop
        return run

    res = bench.interleaved({name: looped(fn) for name, fn in fns.items()}, repeats=repeats, sync=_settled(fns))
    for r in res.values():
        r["median_s"] /= calls
        r["iqr_s"] /= calls
    return res, calls


def _row(label, which, flops, timed):
    res, calls = timed
    ours, theirs = res["ours"], res["torch"]
    return {"shape": label, "pass": which, "calls_per_timing": calls,
            "ours_ms": 1e3 * ours["median_s"], "torch_ms": 1e3 * theirs["median_s"],
            "ours_iqr_ms": 1e3 * ours["iqr_s"], "torch_iqr_ms": 1e3 * theirs["iqr_s"],
            "ours_gflops": flops / ours["median_s"] / 1e9, "torch_gflops": flops / theirs["median_s"] / 1e9,
            "ratio": ours["median_s"] / theirs["median_s"],
            "flag": "noisy" if ours["noisy"] or theirs["noisy"] else ""}


def _settle_allocator(nbytes=30 << 20):
    """Allocate, touch and free one `nbytes` block, so that both sides reuse freed memory from here on.

    glibc's malloc serves large blocks with mmap and returns each to the OS when freed, so that every
    new one costs a page fault per 4 KiB page; the first time it frees such a block it raises that
    threshold to the block's size (at most 32 MiB), after which blocks up to it are reused. Until some
    library frees a large block, torch's 7x7 forward here took 2.7 ms (1,540 page faults a call)
    instead of 0.63 ms: timings depended on which case, and which library, ran first.
    """
    np.ones(nbytes, np.uint8)


def run(suite=SUITE, repeats=7, threads=2, backward=True):
    """Time each case of `suite`; returns one row (dict) per case and pass ("forward"/"backward")."""
    import torch
    import torch.nn.functional as F

    bench.limit_threads(threads)
    _settle_allocator()
    rows = []
    for label, shape, c_out, k, stride, padding in suite:
        x, weight, bias = _inputs(shape, c_out, k)
        xt, wt, bt = map(torch.from_numpy, (x, weight, bias))
        kw = dict(stride=stride, padding=padding)
        y = ops.conv2d(x, weight, bias, **kw)
        flops = 2.0 * y.size * shape[1] * k * k
        res = _timed({"ours": lambda: ops.conv2d(x, weight, bias, **kw),
                      "torch": lambda: F.conv2d(xt, wt, bt, **kw)}, repeats)
        rows.append(_row(label, "forward", flops, res))
        if not backward:
            continue
        grad_out = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
        gt = torch.from_numpy(grad_out)
        res = _timed({
            "ours": lambda: ops.conv2d_backward(grad_out, x, weight, **kw),
            "torch": lambda: torch.ops.aten.convolution_backward(
                gt, xt, wt, [c_out], [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1, [True, True, True]),
        }, repeats)
        rows.append(_row(label, "backward", 2 * flops, res))
    return rows


def blas_info():
    """numpy's BLAS libraries as threadpoolctl sees them: name, version, kernel architecture, threads."""
    from threadpoolctl import threadpool_info

    return [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]


def geometric_mean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller suite, 3 repeats (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 7, quick 3)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    suite = QUICK_SUITE if args.quick else SUITE
    repeats = args.repeats or (3 if args.quick else 7)
    rows = run(suite, repeats, args.threads)
    blas = blas_info()
    print(f"float32, {args.threads} threads each, medians of {repeats}; numpy BLAS: "
          + ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']} kernels)" for b in blas))
    print(format_table(rows, COLUMNS))
    summary = {p: geometric_mean(r["ratio"] for r in rows if r["pass"] == p) for p in ("forward", "backward")}
    print("geometric mean ours/torch: " + ", ".join(f"{p} {v:.2f}" for p, v in summary.items()))
    path = bench.write_results("conv" if not args.quick else "conv_quick", {
        "benchmark": "conv2d forward and backward, conv_course.ops vs torch", "dtype": "float32",
        "repeats": repeats, "environment": bench.environment(args.threads), "blas": blas,
        "suite": [{"label": s[0], "input": s[1], "c_out": s[2], "k": s[3], "stride": s[4], "padding": s[5]}
                  for s in suite],
        "rows": rows, "geometric_mean_ratio": summary})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
