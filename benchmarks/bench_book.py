"""How long the book takes to build: clean (every notebook executed) and rebuilt from the cache.

Phases, each a real ``jupyter-book build`` of the repository in a fresh temporary output folder
(the repository's own ``_build`` is never touched):

  clean          fresh output folder and fresh jupyter-cache: every notebook executes;
  rebuild        the same command again, nothing changed: Sphinx finds no outdated page;
  rebuild --all  every page re-read and re-rendered, notebook outputs taken from the cache.

Targets (2 CPU cores): clean <= 10 minutes, rebuild <= 60 s. A clean build takes minutes, so it
runs once by default (``--clean-repeats`` for more); rebuilds are repeated and the median is
reported with the interquartile range. The per-notebook execution times that Jupyter Book logs
are recorded too, to find the slow chapters, and every page is executed once more cell by cell
(nbclient with timing) to check that no cell runs longer than 60 s (``--skip-cells`` skips this).

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
from conv_course.tables import format_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {"clean": 600.0, "rebuild": 60.0, "rebuild --all": 60.0}
CELL_LIMIT_S = 60.0  # no cell of the book may run longer (2 CPU cores)
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
        failures = [line for line in log.splitlines() if re.search(r"(Error|Timeout)\w*: ", line)]
        sys.stderr.write(log[-4000:] + "\n" + "\n".join(dict.fromkeys(failures)) + "\n")
        raise SystemExit(f"bench_book: jupyter-book build failed with code {proc.returncode}")
    return seconds, log


def toc_notebooks(root):
    """Paths of the pages in _toc.yml that are notebooks (MyST with a kernelspec, or .ipynb)."""
    import yaml

    toc = yaml.safe_load(open(os.path.join(root, "_toc.yml")))
    files = [toc["root"]]
    stack = list(toc.get("parts", [])) + [{"chapters": toc.get("chapters", [])}]
    while stack:
        for entry in stack.pop(0).get("chapters") or []:
            files.append(entry["file"])
            stack.append({"chapters": entry.get("sections")})
    found = []
    for name in files:
        for ext in (".ipynb", ".md"):
            path = os.path.join(root, name + ext)
            if os.path.exists(path) and (ext == ".ipynb" or "kernelspec:" in open(path).read(2000)):
                found.append(path)
                break
    return found


def cell_times(path):
    """Execute one page as Jupyter Book does (its folder as working directory); seconds per code cell."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    times = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in meta and "shell.execute_reply" in meta:
            start, end = (np.datetime64(meta[k].rstrip("Z")) for k in ("iopub.execute_input", "shell.execute_reply"))
            times.append(float((end - start) / np.timedelta64(1, "ms")) / 1000)
    return times


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
    parser.add_argument("--skip-cells", action="store_true",
                        help="skip timing every cell of every page (one more execution of the book)")
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

    print(format_table(rows, [("phase", "phase", "{}"), ("runs", "runs", "{}"),
                                    ("median_s", "median s", "{:.1f}"), ("iqr_s", "IQR s", "{:.1f}"),
                                    ("target_s", "target s", "{:.0f}"),
                                    ("within_target", "within target", "{}"),
                                    ("notebooks_executed", "notebooks executed", "{}")]))
    slowest = sorted(((float(np.median(v)), k) for k, v in per_notebook.items()), reverse=True)
    print("\nslowest notebooks in the clean build (execution only):")
    for secs, path in slowest[:5]:
        print(f"  {secs:6.1f} s  {path}")
    slowest_cells = {}
    if not args.skip_cells:
        for nb_path in toc_notebooks(args.root):
            times = cell_times(nb_path)
            slowest_cells[os.path.relpath(nb_path, args.root)] = max(times) if times else 0.0
        worst_cell = max(slowest_cells.values(), default=0.0)
        print(f"\nslowest cell of each page (limit {CELL_LIMIT_S:.0f} s):")
        for name, secs in sorted(slowest_cells.items(), key=lambda kv: -kv[1]):
            print(f"  {secs:6.1f} s  {name}{'  OVER LIMIT' if secs > CELL_LIMIT_S else ''}")
    path = bench.write_results("book", {
        "benchmark": "book build", "environment": bench.environment(),
        "targets_s": TARGETS, "phases": rows,
        "notebook_execution_s": {k: float(np.median(v)) for k, v in per_notebook.items()},
        "slowest_cell_s": slowest_cells, "cell_limit_s": CELL_LIMIT_S,
        "note": "clean = fresh output folder and jupyter-cache; rebuilds reuse the last clean build's folder",
    })
    print(f"\nwrote {path}")
    if not args.keep:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    cells_ok = all(secs <= CELL_LIMIT_S for secs in slowest_cells.values())
    return 0 if cells_ok and all(r["within_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
