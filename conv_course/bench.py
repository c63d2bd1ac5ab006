"""Benchmark plumbing shared by `benchmarks/bench_*.py`, and ``conv-course bench``.

Implementations are compared in ONE process: same inputs, same thread counts, runs
interleaved after a warmup, medians over repeats with the interquartile range. Scripts
print a short table and write JSON under ``benchmarks/results/``.
"""

import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from . import REPO_ROOT

__all__ = ["limit_threads", "interleaved", "environment", "write_results",
           "add_bench_arguments", "run_bench", "SCRIPTS"]

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results")
SCRIPTS = ["bench_conv.py", "bench_training.py", "bench_grading.py", "bench_autograde.py", "bench_book.py"]


def limit_threads(n):
    """Give numpy's BLAS and torch the same `n` threads, so they neither fight nor differ."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def interleaved(fns, repeats=7, warmup=1, sync=None):
    """Time each callable in `fns` (name -> fn) `repeats` times, round-robin, after `warmup` runs.

    Returns name -> {"median_s", "iqr_s", "noisy"}; noisy marks IQR/median > 10%.
    `sync` (e.g. torch.cuda.synchronize) is called before each clock read.
    """
    sync = sync or (lambda: None)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        q1, med, q3 = np.percentile(ts, [25, 50, 75])
        out[name] = {"median_s": float(med), "iqr_s": float(q3 - q1), "noisy": bool(q3 - q1 > 0.1 * med)}
    return out


def environment(threads=None):
    """Versions and machine facts recorded beside every result."""
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "numpy": np.__version__, "threads": threads}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def write_results(name, payload):
    """Write `payload` as benchmarks/results/<name>.json and return the path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    return path


def add_bench_arguments(parser):
    parser.add_argument("names", nargs="*", help="which benchmarks (conv, training, grading, autograde, book); default all")


def run_bench(args):
    wanted = [f"bench_{n}.py" for n in args.names] if args.names else SCRIPTS
    code = 0
    for script in wanted:
        path = os.path.join(REPO_ROOT, "benchmarks", script)
        if not os.path.exists(path):
            print(f"bench: no such benchmark {script}", file=sys.stderr)
            code = 2
            continue
        print(f"== {script}", flush=True)
        code = subprocess.call([sys.executable, path], cwd=REPO_ROOT) or code
    return code
