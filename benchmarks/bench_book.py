"""How long the book takes to build: clean (every notebook executed) and rebuilt from the cache.

Phases, each a real ``jupyter-book build`` of the repository in a fresh temporary output folder
(the repository's own ``_build`` is never touched):

  clean          fresh output folder and fresh jupyter-cache: every notebook executes;
  rebuild        the same command again, nothing changed: Sphinx finds no outdated page;
  rebuild --all  every page re-read and re-rendered, notebook outputs taken from the cache.

Targets (2 CPU cores): clean <= 10 minutes, rebuild <= 60 s. A clean build takes minutes, so it
runs once by default (``--clean-repeats`` for more); rebuilds are repeated and the median is
reported with the interquartile range. The per-notebook execution times that Jupyter Book logs
are recorded too, to find the slow chapters.

    .venv/bin/python benchmarks/bench_book.py [--clean-repeats 1] [--rebuild-repeats 3]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from conv_course import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {"clean": 600.0, "rebuild": 60.0, "rebuild --all": 60.0}
EXECUTED = re.compile(r"(\S+\.(?:md|ipynb)): Executed notebook in ([\d.]+) seconds")


def jupyter_book(root, out_dir, all_pages=False):
    """Build the book into `out_dir`/_build; returns (seconds, log text). Raises if the build fails.

    The working directory is `out_dir`, so the relative jupyter-cache path of _config.yml
    (``_build/.jupyter_cache``) is a fresh cache inside it.
    """
    cmd = [os.path.join(os.path.dirname(sys.executable), "jupyter-book"), "build", root,
           "--builder", "html", "--path-output", out_dir]
    if all_pages:
        cmd.append("--all")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=out_dir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.stderr.write(log[-4000:])
        raise SystemExit(f"bench_book: jupyter-book build failed with code {proc.returncode}")
    return seconds, log


def summarize(phase, times, executed):
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return {"phase": phase, "runs": len(times), "median_s": float(med), "iqr_s": float(q3 - q1),
            "target_s": TARGETS[phase], "within_target": bool(med <= TARGETS[phase]),
            "notebooks_executed": executed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-repeats", type=int, default=1, help="clean builds (each minutes long)")
    parser.add_argument("--rebuild-repeats", type=int, default=3, help="repeats of each rebuild phase")
    parser.add_argument("--keep", action="store_true", help="keep the temporary build folders")
    parser.add_argument("--root", default=ROOT, help="the book's root folder (default: this repository)")
    args = parser.parse_args(argv)

    rows, per_notebook, folders = [], {}, []
    clean_times, executed = [], 0
    for _ in range(args.clean_repeats):
        out = tempfile.mkdtemp(prefix="bench-book-")
        folders.append(out)
        seconds, log = jupyter_book(args.root, out)
        clean_times.append(seconds)
        runs = EXECUTED.findall(log)
        executed = len(runs)
        for path, secs in runs:
            per_notebook.setdefault(os.path.relpath(path, args.root), []).append(float(secs))
    rows.append(summarize("clean", clean_times, executed))

    for phase, all_pages in [("rebuild", False), ("rebuild --all", True)]:
        times, executed = [], 0
        for _ in range(args.rebuild_repeats):
            seconds, log = jupyter_book(args.root, folders[-1], all_pages=all_pages)
            times.append(seconds)
            executed = max(executed, len(EXECUTED.findall(log)))
        rows.append(summarize(phase, times, executed))

    print(bench.format_table(rows, [("phase", "phase", "{}"), ("runs", "runs", "{}"),
                                    ("median_s", "median s", "{:.1f}"), ("iqr_s", "IQR s", "{:.1f}"),
                                    ("target_s", "target s", "{:.0f}"),
                                    ("within_target", "within target", "{}"),
                                    ("notebooks_executed", "notebooks executed", "{}")]))
    slowest = sorted(((float(np.median(v)), k) for k, v in per_notebook.items()), reverse=True)
    print("\nslowest notebooks in the clean build (execution only):")
    for secs, path in slowest[:5]:
        print(f"  {secs:6.1f} s  {path}")
    path = bench.write_results("book", {
        "benchmark": "book build", "environment": bench.environment(),
        "targets_s": TARGETS, "phases": rows,
        "notebook_execution_s": {k: float(np.median(v)) for k, v in per_notebook.items()},
        "note": "clean = fresh output folder and jupyter-cache; rebuilds reuse the last clean build's folder",
    })
    print(f"\nwrote {path}")
    if not args.keep:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(r["within_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
