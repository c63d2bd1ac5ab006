"""``conv-course autograde ASSIGNMENT --jobs N``: sandboxed, re-checked, parallel nbgrader autograding.

Three phases, so that only this (coordinating) process ever writes the gradebook:

1. prepare (here): read each ``submitted/<student>/<assignment>/`` notebook and sanitize it with
   nbgrader's own preprocessors (locked and test cells restored from the gradebook);
2. execute (workers, ``--jobs N`` processes or a Dask cluster with ``--scheduler``): run the
   notebook in the sandboxed kernel (`execution`), and the trusted re-check beside it; return
   outputs and verdicts;
3. record (here, `gradebook`): nbgrader's Autograde converter, with execution replaced by the workers'
   outputs, writes ``autograded/`` and the scores; the re-check then confirms or lowers each
   test cell's score and flags disagreements (``trusted/<assignment>.json``, needs_manual_grade).

The phases overlap: the coordinator prepares the next submissions and records finished ones while
the workers execute. A worker needs no course files: a job carries the sanitized notebook, the
submission's files and the recorded reference calls, so Dask workers can live on other machines.
"""

import os
import shutil
import sys
import tempfile
import time

import nbformat

from . import gradebook, trusted

__all__ = ["autograde", "grade_submission", "load_course_config", "add_autograde_arguments", "run_autograde"]

_MAX_FILES_BYTES = 64 << 20


def load_course_config(course_dir):
    """The course's nbgrader_config.py as a traitlets Config, with the course root set."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    bin_dir = os.path.dirname(sys.executable)  # nbgrader runs `alembic` from PATH to create the gradebook
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    cfg = Config()
    if os.path.exists(os.path.join(course_dir, "nbgrader_config.py")):
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=course_dir).load_config())
    cfg.CourseDirectory.root = os.path.abspath(course_dir)
    return cfg


def _prepare(cfg, coursedir, assignment, student, notebooks):
    """Phase 1: sanitized notebooks and files of one submission (a job), or an error string."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                        OverwriteKernelspec)

    sub = coursedir.format_path(coursedir.submitted_directory, student, assignment)
    src = coursedir.format_path(coursedir.source_directory, ".", assignment)
    job = {"student": student, "assignment": assignment, "notebooks": {}, "files": {}}
    for folder in (sub, src):  # source files overwrite the student's, as nbgrader does
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                if name.endswith(".ipynb") or os.path.islink(path) or not os.path.isfile(path):
                    continue
                if os.path.getsize(path) + sum(map(len, job["files"].values())) > _MAX_FILES_BYTES:
                    return job, f"submission files exceed {_MAX_FILES_BYTES >> 20} MiB"
                with open(path, "rb") as f:
                    job["files"][os.path.relpath(path, folder)] = f.read()
    for nb_id in notebooks:
        path = os.path.join(sub, f"{nb_id}.ipynb")
        if not os.path.exists(path):
            continue
        try:
            nb = nbformat.read(path, as_version=4)
            resources = {"unique_key": nb_id, "nbgrader": {"student": student, "assignment": assignment,
                                                           "notebook": nb_id, "db_url": coursedir.db_url}}
            for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
                nb, resources = pp(config=cfg).preprocess(nb, resources)
        except Exception as err:  # noqa: BLE001  any unreadable notebook fails this student only
            return job, f"unreadable notebook {nb_id}.ipynb: {type(err).__name__}: {str(err)[:200]}"
        job["notebooks"][nb_id] = nbformat.writes(nb)
    if not job["notebooks"]:
        return job, "no notebook submitted"
    return job, None


def grade_submission(job):
    """Phase 2 (a worker; runs anywhere): execute and re-check one submission. Returns a dict."""
    from nbgrader.utils import determine_grade, is_grade, is_solution

    from .execution import execute_notebook, write_files

    start = time.perf_counter()
    result = {"student": job["student"], "outputs": {}, "kernel": {}, "trusted": {}, "error": None}
    tmp = tempfile.mkdtemp(prefix="conv-course-check-")
    try:  # holds the re-check's copies of the submission (start_sandboxed hands them to its uid)
        for nb_id, text in job["notebooks"].items():
            plan = (job.get("plans") or {}).get(nb_id)
            check_dir = os.path.join(tmp, nb_id, job["student"])
            if plan is not None:  # the re-check runs beside the kernel: its own process and sandbox
                os.makedirs(check_dir)
                write_files(check_dir, job["files"])
                handle = trusted.recheck_start(plan, nbformat.reads(text, as_version=4), check_dir,
                                               sandbox=job["sandbox"])
            nb, error = execute_notebook(nbformat.reads(text, as_version=4), job["files"], timeout=job["timeout"],
                                         sandbox=job["sandbox"], preload=job.get("preload", ()),
                                         warm=job.get("warm", False))
            result["error"] = result["error"] or error
            result["outputs"][nb_id] = [[c.get("outputs", []), c.get("execution_count")] for c in nb.cells]
            result["kernel"][nb_id] = {c.metadata.nbgrader["grade_id"]: determine_grade(c)[0]
                                       for c in nb.cells if is_grade(c) and not is_solution(c)}
            if plan is not None:
                verdicts = trusted.recheck_finish(handle, timeout=job["recheck_timeout"])
                result["trusted"][nb_id] = {gid: list(v) for gid, v in verdicts.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["seconds"] = time.perf_counter() - start
    return result


def _pool(jobs, scheduler):
    """(submit(fn, item) -> future, as_completed, close) for local processes or a Dask cluster."""
    if scheduler:
        from distributed import Client, as_completed

        client = Client(scheduler) if isinstance(scheduler, str) else scheduler
        close = client.close if isinstance(scheduler, str) else (lambda: None)
        return (lambda fn, item: client.submit(fn, item, pure=False)), as_completed, close
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"))
    return pool.submit, as_completed, pool.shutdown


def _plans(coursedir, assignment, notebooks):
    src = os.path.join(coursedir.root, coursedir.source_directory, assignment)
    cache = os.path.join(coursedir.root, "trusted", "plans", assignment)
    return {nb_id: trusted.cached_plan(src, nb_id, cache) for nb_id in notebooks}


def autograde(course_dir, assignment, **kwargs):
    """Autograde every submission of `assignment` (see the module docstring). Returns {student: record}.

    Args:
        course_dir: the course root (holds nbgrader_config.py, submitted/, gradebook.db).
        jobs: worker processes; scheduler: a Dask scheduler address (or Client) instead.
        sandbox: run student code in the bubblewrap sandbox (False only for trusted code).
        recheck: confirm points with the trusted re-check. students: only these (default all).
        timeout: per-cell seconds (default: Execute.timeout of the config). progress: show a bar.
    Returns:
        {student: {"status": graded|flagged|failed, "score", "max_score", "flags", "cells", "note"}}.
    """
    with gradebook.one_engine():
        return _autograde(course_dir, assignment, **kwargs)


def _autograde(course_dir, assignment, *, jobs=1, scheduler=None, sandbox=True, recheck=True,
              students=None, timeout=None, progress=True):
    """The body of `autograde`. The phases overlap: while workers execute, this process prepares
    the next submissions and records finished ones, so it is the only writer of the gradebook.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory
    from tqdm.auto import tqdm

    if jobs < 1:
        raise ValueError(f"autograde: `jobs` must be >= 1; got {jobs}")
    cfg = load_course_config(course_dir)
    coursedir = CourseDirectory(config=cfg)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            raise ValueError(f"autograde: assignment {assignment!r} is not in the gradebook; "
                             "run `conv-course release` (nbgrader generate_assignment) first") from None
    sub_root = os.path.join(coursedir.root, coursedir.submitted_directory)
    found = sorted(s for s in os.listdir(sub_root) if os.path.isdir(os.path.join(sub_root, s, assignment))) \
        if os.path.isdir(sub_root) else []
    students = [s for s in found if students is None or s in students]
    cell_timeout = int(timeout or cfg.Execute.get("timeout", 30) or 30)
    plans = _plans(coursedir, assignment, notebooks) if recheck and students else {}
    preload = list(dict.fromkeys(m for plan in plans.values() for m in plan["modules"])) if sandbox else []
    records, pending = {}, {}
    bar = tqdm(total=len(students), desc=f"autograde {assignment}", unit="sub", disable=not progress,
               file=sys.stderr)

    def finish(fut):
        job = pending.pop(fut)
        try:
            records[job["student"]] = gradebook.record(cfg, coursedir, assignment, job, fut.result())
        except Exception as err:  # noqa: BLE001  a crashed worker fails that student only
            with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
                records[job["student"]] = gradebook.record_failed(gb, assignment, job["student"],
                                                         f"{type(err).__name__}: {str(err)[:200]}")
        bar.update()

    submit, completed, close = _pool(jobs, scheduler) if students else (None, None, lambda: None)
    try:
        for i, student in enumerate(students):
            job, error = _prepare(cfg, coursedir, assignment, student, notebooks)
            if error:
                with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
                    records[student] = gradebook.record_failed(gb, assignment, student, error)
                bar.update()
                continue
            # warm: a local worker starts its next kernel early, when more submissions will follow
            job.update(timeout=cell_timeout, sandbox=sandbox, plans=plans, preload=preload,
                       warm=not scheduler and i < len(students) - jobs,
                       recheck_timeout=cell_timeout * (2 + len(job["notebooks"])))
            pending[submit(grade_submission, job)] = job
            for fut in [f for f in pending if f.done()]:
                finish(fut)
        for fut in completed(list(pending)):
            finish(fut)
    finally:
        close()
        bar.close()
    trusted.write_flags(coursedir.root, assignment, records)
    return records


def summary_table(records):
    """The per-student table and the totals line printed after a run."""
    from .bench import format_table

    rows = [{"student": s, "status": r["status"], "score": r.get("score"), "max": r.get("max_score"),
             "note": (r["flags"] or [r.get("note") or ""])[0][:70]} for s, r in sorted(records.items())]
    table = format_table(rows, [("student", "student", "{}"), ("status", "status", "{}"),
                                ("score", "score", "{:g}"), ("max", "max", "{:g}"), ("note", "note", "{}")])
    count = {k: sum(r["status"] == k for r in records.values()) for k in ("graded", "failed", "flagged")}
    return table + f"\n\ngraded {count['graded']}, failed to run {count['failed']}, flagged {count['flagged']}"


def add_autograde_arguments(parser):
    parser.add_argument("assignment", help="assignment name, e.g. 01-corr2d")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address: run the workers there")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run student code UNSANDBOXED, as you (only for code you trust)")
    parser.add_argument("--no-recheck", action="store_true", help="skip the trusted re-check (not recommended)")
    parser.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in s (default: nbgrader_config)")
    parser.add_argument("--course-dir", default=".", help="course root holding nbgrader_config.py (default .)")


def run_autograde(args):
    from .sandbox import SandboxUnavailable, preflight

    if args.no_sandbox:
        print("autograde: WARNING --no-sandbox: student code runs as you, with your files and network",
              file=sys.stderr)
    else:
        try:
            preflight()
        except SandboxUnavailable as err:
            print(f"autograde: refusing to run student code: {err}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    try:
        records = autograde(args.course_dir, args.assignment, jobs=args.jobs, scheduler=args.scheduler,
                            sandbox=not args.no_sandbox, recheck=not args.no_recheck, students=args.student,
                            timeout=args.timeout)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    wall = time.perf_counter() - start
    print(summary_table(records))
    print(f"{len(records)} submissions in {wall:.1f} s ({60 * len(records) / max(wall, 1e-9):.0f} per minute)")
    return 1 if any(r["status"] == "failed" for r in records.values()) else 0
