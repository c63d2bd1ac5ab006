"""Autograding throughput: a simulated class through plain nbgrader, and in-kernel test times.

    .venv/bin/python benchmarks/bench_grading.py [--students 60] [--assignments 01-corr2d 02-conv2d 05-pooling]
                                                 [--whole [ASSIGNMENT ...]]

1. Throughput: a temporary course gets `--students` submissions for each assignment, a seeded
   mix of complete (the solution), half-done (the release with the first answer filled in) and
   untouched notebooks, and `nbgrader autograde` grades them: submissions per minute.
2. In the kernel: the solution notebook of each assignment is executed once (nbclient, the
   kernel nbgrader uses) and the test cells are timed: visible + hidden tests per assignment, and
   the whole notebook (what a correct student's grading costs on top of the kernel start).
3. With ``--whole``: a correct submission of each assignment through ``conv-course autograde``
   (sandbox and re-check on): in the assignment's first run, alone in a later run, and per
   submission in a class of four.

The functions are reusable (E's sandboxed autograde compares against `plain_autograde`):
``make_class``, ``plain_autograde``, ``measure_throughput(root, assignments, grade=...)``, ``kernel_timings``.
"""

import argparse
import copy
import datetime
import os
import pathlib
import shutil
import sys
import tempfile
import time

import nbformat
import numpy as np

from conv_course import bench
from conv_course.autograding import course
from conv_course.tables import format_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_ASSIGNMENTS = ["01-corr2d", "02-conv2d", "05-pooling"]
MIX = {"complete": 0.6, "half": 0.3, "untouched": 0.1}

__all__ = ["make_class", "plain_autograde", "measure_throughput", "kernel_timings", "main"]


def _nb(root, directory, assignment):
    return nbformat.read(pathlib.Path(root) / directory / assignment / f"{assignment}.ipynb", as_version=4)


def _half_done(solution, release):
    """The release with the solution's FIRST answer cell filled in (a student halfway through)."""
    nb = copy.deepcopy(release)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    first = next(iter(answers))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == first:
            cell.source = answers[first]
    return nb


def make_class(root, assignments=DEFAULT_ASSIGNMENTS, n_students=60, seed=0):
    """Create an nbgrader course in `root` with `n_students` submissions per assignment.

    Returns {assignment: {"complete": n, "half": n, "untouched": n}}.
    """
    root = pathlib.Path(root)
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(ROOT / "solutions" / a, root / "solutions" / a, dirs_exist_ok=True)
    assert course.release(str(root), assignments, quiet=True) == 0, "nbgrader generate_assignment failed"
    rng = np.random.default_rng(seed)
    counts = {}
    for a in assignments:
        kinds = rng.choice(list(MIX), size=n_students, p=list(MIX.values()))
        solution, release = _nb(root, "solutions", a), _nb(root, "exercises", a)
        notebooks = {"complete": solution, "half": _half_done(solution, release), "untouched": release}
        for i, kind in enumerate(kinds):
            path = root / "submitted" / f"student{i:03d}" / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebooks[kind], path)
        counts[a] = {k: int((kinds == k).sum()) for k in MIX}
    return counts


def plain_autograde(root, assignment):
    """Grade every submission of `assignment` with plain nbgrader (unsandboxed, one process)."""
    code = course.nbgrader(str(root), "autograde", assignment, "--force", "--log-level=WARN", quiet=True)
    if code:
        raise RuntimeError(f"nbgrader autograde {assignment} failed with exit status {code}")


def measure_throughput(root, assignments, grade=plain_autograde):
    """Time `grade(root, assignment)` for each assignment. Returns rows and the overall rate."""
    rows = []
    for a in assignments:
        n = len(list(pathlib.Path(root).glob(f"submitted/*/{a}/{a}.ipynb")))
        t0 = time.perf_counter()
        grade(root, a)
        seconds = time.perf_counter() - t0
        rows.append({"assignment": a, "submissions": n, "seconds": seconds, "per_minute": 60 * n / seconds,
                     "per_submission_s": seconds / n})
    total_n, total_s = sum(r["submissions"] for r in rows), sum(r["seconds"] for r in rows)
    return rows, {"submissions": total_n, "seconds": total_s, "per_minute": 60 * total_n / total_s}


def _seconds(cell):
    ex = cell.metadata.get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def kernel_timings(assignment):
    """Execute the solution notebook once; seconds spent in test cells and in all cells."""
    from nbclient import NotebookClient

    nb = _nb(ROOT, "solutions", assignment)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": tempfile.gettempdir()}}).execute()
    wall = time.perf_counter() - t0
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    errors = [c.metadata["nbgrader"]["grade_id"] for c in tests
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    if errors:
        raise RuntimeError(f"{assignment}: the solution fails {errors}")
    return {"assignment": assignment, "test_cells": len(tests),
            "tests_s": sum(_seconds(c) for c in tests),
            "all_cells_s": sum(_seconds(c) for c in nb.cells if c.cell_type == "code"),
            "with_kernel_start_s": wall}


def whole_assignment(assignment, copies=4, jobs=1):
    """Seconds to autograde correct submissions (the solution) with `conv-course autograde`.

    Sandbox and trusted re-check on, as instructors run it. Returns {"first_s": one submission,
    in the assignment's first run (which records the instructor's plan, "plan_s" of it, and
    caches it), "alone_s": one submission graded alone in a later run (a late submission),
    "warm_s": per submission in a class of `copies` (each kernel started, and its imports
    preloaded, while the previous submission runs)}.
    """
    from conv_course.autograding import autograde, recheck

    with tempfile.TemporaryDirectory(prefix="bench-whole-") as tmp:
        root = pathlib.Path(tmp)
        shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
        shutil.copytree(ROOT / "solutions" / assignment, root / "solutions" / assignment)
        assert course.release(str(root), [assignment], quiet=True) == 0, "nbgrader generate_assignment failed"
        solution = _nb(root, "solutions", assignment)
        students = [f"student{i:03d}" for i in range(copies + 2)]
        for student in students:
            path = root / "submitted" / student / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(solution, path)
        shutil.copytree(ROOT / "solutions" / assignment, root / "plan")
        t0 = time.perf_counter()
        recheck.build_plan(solution, str(root / "plan"))
        plan_s = time.perf_counter() - t0
        records, seconds = {}, []
        for group in ([students[0]], [students[1]], students[2:]):
            t0 = time.perf_counter()
            records.update(autograde.autograde(str(root), assignment, jobs=jobs, progress=False, students=group))
            seconds.append((time.perf_counter() - t0) / len(group))
    scores = {(r["score"], r["max_score"], r["status"]) for r in records.values()}
    if len(scores) != 1 or next(iter(scores))[0] != next(iter(scores))[1]:
        raise RuntimeError(f"{assignment}: the solution did not get full marks: {scores}")
    return {"assignment": assignment, "first_s": seconds[0], "plan_s": plan_s, "alone_s": seconds[1],
            "warm_s": seconds[2], "copies": copies}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60, help="class size (default 60)")
    parser.add_argument("--assignments", nargs="+", default=DEFAULT_ASSIGNMENTS)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads in this process")
    parser.add_argument("--whole", nargs="*", default=None, metavar="ASSIGNMENT",
                        help="also time whole correct assignments through `conv-course autograde` "
                             "(no names: all of solutions/)")
    args = parser.parse_args(argv)
    if args.students < 1:
        parser.error(f"--students must be >= 1; got {args.students}")
    bench.limit_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # kernels inherit it

    timings = [kernel_timings(a) for a in args.assignments]
    print(format_table(timings, [("assignment", "assignment", "{}"), ("test_cells", "test cells", "{}"),
                                       ("tests_s", "tests in kernel (s)", "{:.3f}"),
                                       ("all_cells_s", "all cells (s)", "{:.3f}"),
                                       ("with_kernel_start_s", "incl. kernel start (s)", "{:.2f}")]))
    whole = []
    if args.whole is not None:
        names = args.whole or sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
        whole = [whole_assignment(a) for a in names]
        print()
        print(format_table(whole, [("assignment", "correct submission of", "{}"),
                                         ("first_s", "first run (s)", "{:.2f}"),
                                         ("plan_s", "of it, the plan (s)", "{:.2f}"),
                                         ("alone_s", "later, alone (s)", "{:.2f}"),
                                         ("warm_s", "in a class of 4, each (s)", "{:.2f}")]))
        print()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        mix = make_class(tmp, args.assignments, args.students)
        rows, overall = measure_throughput(tmp, args.assignments)
    print()
    print(format_table(rows, [("assignment", "assignment", "{}"), ("submissions", "submissions", "{}"),
                                    ("seconds", "seconds", "{:.1f}"), ("per_minute", "per minute", "{:.1f}"),
                                    ("per_submission_s", "s / submission", "{:.2f}")]))
    print(f"\nclass of {args.students} x {len(args.assignments)} assignments: "
          f"{overall['per_minute']:.1f} submissions per minute (plain nbgrader, 1 process)")
    path = bench.write_results("bench_grading", {
        "students": args.students, "assignments": args.assignments, "mix": mix, "kernel": timings,
        "whole_assignment": whole,
        "throughput": rows, "overall": overall, "environment": bench.environment(args.threads),
        "load_average": os.getloadavg()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
