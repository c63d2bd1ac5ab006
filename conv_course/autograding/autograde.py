"""``conv-course autograde ASSIGNMENT --jobs N``: sandboxed, re-checked, parallel nbgrader autograding.

Three phases, so that only this (coordinating) process ever writes the gradebook:

1. prepare (here): read each ``submitted/<student>/<assignment>/`` notebook and sanitize it with
   nbgrader's own preprocessors (locked and test cells restored from the gradebook);
2. execute (workers, ``--jobs N`` processes or a Dask cluster with ``--scheduler``): run the
   notebook in the sandboxed kernel (`execution`), and the trusted re-check beside it; return
   outputs and verdicts;
3. record (here, `gradebook`): nbgrader's Autograde converter, with execution replaced by the workers'
   outputs, writes ``autograded/`` and the scores. Every test cell the trusted re-check can judge
   is scored by the instructor's checker outside student code (`trusted`); the others by the
   kernel. A run's records merge into ``trusted/<assignment>.json``.

Nothing is recorded as a student's score when the grader itself fails (the kernel does not start,
the sandbox cannot import the course, the judge fails): such a submission is reported as an
*error*, its earlier grade stays, and the command exits non-zero. A worker that dies (killed
from outside) has its submissions retried in a fresh pool.

The phases overlap: the coordinator prepares the next submissions and records finished ones while
the workers execute. A worker needs no course files: a job carries the sanitized notebook, the
submission's files and the recorded reference calls, so Dask workers can live on other machines.
"""

import hashlib
import logging
import os
import sys
import time

import nbformat

from . import gradebook, recheck
from .nbgrader_env import with_this_python
from .plaindata import read_regular, regular_files

__all__ = ["autograde", "grade_submission", "load_course_config", "add_autograde_arguments", "run_autograde",
           "summary_table", "MAX_FILES", "MAX_FILES_BYTES"]

_QUIET = logging.getLogger("conv_course.autograding.autograde.nbgrader")  # nbgrader's "checksum has changed" notes:
_QUIET.setLevel(logging.ERROR)                                   # a student editing a cell is not news
MAX_FILES_BYTES = 64 << 20   # a submission's files beside its notebooks, in all
MAX_FILES = 1000             # and their number (counted before anything is copied)


def load_course_config(course_dir):
    """The course's nbgrader_config.py as a traitlets Config, with the course root set."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    with_this_python(os.environ)  # nbgrader runs `alembic` from PATH to create the gradebook
    cfg = Config()
    if os.path.exists(os.path.join(course_dir, "nbgrader_config.py")):
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=course_dir).load_config())
    cfg.CourseDirectory.root = os.path.abspath(course_dir)
    return cfg


def _bad_name(name):
    """Why a student folder name cannot be graded, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "its name contains a control character (e.g. a newline)"
    if name.startswith(".") or len(name) > 200:
        return "its name starts with a dot or is longer than 200 characters"
    return None


def _prepare(cfg, coursedir, assignment, student, notebooks):
    """Phase 1: sanitized notebooks and files of one submission (a job), or an error string."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                        OverwriteKernelspec)

    sub = coursedir.format_path(coursedir.submitted_directory, student, assignment)
    src = coursedir.format_path(coursedir.source_directory, ".", assignment)
    job = {"student": student, "assignment": assignment, "notebooks": {}, "files": {}, "notes": []}
    digest = hashlib.sha256()
    refused = []
    if os.path.islink(sub) or os.path.islink(os.path.dirname(sub)):
        return job, "the submission folder is a symbolic link (not followed)"
    size = 0
    for folder, mine in ((sub, True), (src, False)):  # source files overwrite the student's, as nbgrader does
        for rel, path in regular_files(folder, refused if mine else [], MAX_FILES):
            if rel.endswith(".ipynb"):
                continue
            size += os.path.getsize(path)
            if size > MAX_FILES_BYTES:
                return job, f"the submission's files exceed {MAX_FILES_BYTES >> 20} MiB"
            try:
                job["files"][rel] = read_regular(path, MAX_FILES_BYTES)
            except (OSError, ValueError) as err:
                refused.append(f"{rel}: not read ({err})")
                continue
            if mine:
                digest.update(rel.encode(errors="surrogateescape") + b"\0" + hashlib.sha256(job["files"][rel]).digest())
    for nb_id in notebooks:
        path = os.path.join(sub, f"{nb_id}.ipynb")
        if not os.path.lexists(path) or os.path.islink(path):  # a link is refused (and listed) by the walk
            continue
        try:
            raw = read_regular(path, MAX_FILES_BYTES)
        except (OSError, ValueError) as err:
            refused.append(f"{nb_id}.ipynb: not read ({'a symbolic link or special file' if os.path.islink(path) or not os.path.isfile(path) else err})")
            continue
        digest.update(nb_id.encode() + b"\0" + hashlib.sha256(raw).digest())
        try:
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        except Exception as err:  # noqa: BLE001  any unreadable notebook fails this student only
            return job, (f"{nb_id}.ipynb is not a readable notebook (malformed JSON or not a notebook: "
                         f"{str(err)[:120]}); ask the student to resubmit it")
        def sanitize(nb):
            resources = {"unique_key": nb_id, "nbgrader": {"student": student, "assignment": assignment,
                                                           "notebook": nb_id, "db_url": coursedir.db_url}}
            for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
                nb, resources = pp(config=cfg, log=_QUIET).preprocess(nb, resources)
            return nb

        try:
            nb = sanitize(nb)
        except Exception as err:  # noqa: BLE001  tampered grading cells: grade the answers in your copy
            release = os.path.join(coursedir.format_path(coursedir.release_directory, ".", assignment), f"{nb_id}.ipynb")
            rebuilt, matched = _rebuild(nbformat.read(release, as_version=4), nb) if os.path.isfile(release) else (None, [])
            why = str(err).splitlines()[0][:160]
            if rebuilt is None:
                return job, (f"{nb_id}.ipynb has changed grading cells ({why}) and none of its answer cells "
                             "matches the released notebook's; compare it with the released notebook")
            nb = sanitize(rebuilt)
            job["notes"].append(f"{nb_id}.ipynb has changed grading cells ({why}): graded from the released "
                                f"notebook with the student's answer cells {', '.join(matched)}")
        job["notebooks"][nb_id] = nbformat.writes(nb)
    job["digest"] = digest.hexdigest()
    job["notes"] += [f"refused {r}" for r in refused]
    if not job["notebooks"]:
        return job, "no notebook submitted" + (f" ({'; '.join(refused)[:200]})" if refused else "")
    return job, None


def _rebuild(release, submitted):
    """The released notebook with the student's answer cells (matched by grade_id) and the code cells
    they added after each; (notebook, matched ids), or (None, []) when no answer cell matches."""
    answers = {c.metadata.nbgrader["grade_id"]: c for c in release.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    mine, added, last = {}, {}, None
    for cell in submitted.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers and gid not in mine and cell.cell_type == answers[gid].cell_type:
            mine[gid], last = cell.source, gid
        elif not cell.metadata.get("nbgrader") and cell.cell_type == "code":
            added.setdefault(last, []).append(nbformat.v4.new_code_cell(cell.source))
    if not mine:
        return None, []
    cells, first = [], True
    for cell in release.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers and first:  # cells added before any answer go just before the first answer
            cells += added.get(None, [])
            first = False
        if gid in mine:
            cell.source = mine[gid]
        cells.append(cell)
        cells += added.get(gid, []) if gid in mine else []
    release.cells = cells
    return release, sorted(mine)


def _judged_outputs(verdict):
    """The outputs a judged test cell shows: the checker's prints, then its error, if it failed."""
    outs = []
    out = verdict.output
    if out.get("stdout"):
        outs.append(nbformat.v4.new_output("stream", name="stdout", text=out["stdout"]))
    if verdict.status == "fail":
        outs.append(nbformat.v4.new_output("error", ename=out.get("ename", "Error"), evalue=out.get("evalue", ""),
                                           traceback=[f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]))
    elif verdict.status == "unverifiable":
        text = f"this test could not be judged automatically ({verdict.detail}); an instructor will grade it"
        outs.append(nbformat.v4.new_output("error", ename="NotJudged", evalue=text, traceback=[f"NotJudged: {text}"]))
    return outs


def grade_submission(job):
    """Phase 2 (a worker; runs anywhere): execute and judge one submission. Returns a dict.

    The cells the trusted re-check can judge are not run in the kernel: the judge's outputs and
    verdicts are theirs. The other test cells are scored from the kernel's outputs.
    """
    from nbgrader.utils import determine_grade, is_grade, is_solution

    from .execution import InfrastructureError, execute_notebook

    start = time.perf_counter()
    result = {"student": job["student"], "outputs": {}, "cells": {}, "error": None, "infrastructure": None}
    handle = None
    try:
        for nb_id, text in job["notebooks"].items():
            plan = (job.get("plans") or {}).get(nb_id)
            judged = [gid for gid, c in plan["cells"].items() if c["status"] == "ok"] if plan else []
            if plan is not None:  # the replay runs beside the kernel: its own process, sandbox and folder
                handle = recheck.recheck_start(plan, nbformat.reads(text, as_version=4), job["files"],
                                               sandbox=job["sandbox"], cell_timeout=job["timeout"])
            nb, error = execute_notebook(nbformat.reads(text, as_version=4), job["files"], timeout=job["timeout"],
                                         sandbox=job["sandbox"], preload=job.get("preload", ()),
                                         warm=job.get("warm", False), judged=judged)
            result["error"] = result["error"] or error
            verdicts = {}
            if plan is not None:
                finishing, handle = handle, None  # recheck_finish cleans up, whatever happens
                verdicts = recheck.recheck_finish(finishing, timeout=job["recheck_timeout"])
            cells = result["cells"][nb_id] = {}
            for cell in nb.cells:
                if not (is_grade(cell) and not is_solution(cell)):
                    continue
                gid = cell.metadata.nbgrader["grade_id"]
                if gid in judged:
                    cell.outputs = _judged_outputs(verdicts[gid])
                    cells[gid] = ["judge", verdicts[gid].status, verdicts[gid].detail]
                else:
                    why = verdicts[gid].detail if gid in verdicts else "no re-check"
                    cells[gid] = ["kernel", "pass" if determine_grade(cell)[0] else "fail", why]
            result["outputs"][nb_id] = [[c.get("outputs", []), c.get("execution_count")] for c in nb.cells]
    except InfrastructureError as err:
        result["infrastructure"] = str(err)
    finally:
        if handle is not None:  # the kernel failed before the re-check was collected
            recheck.recheck_stop(handle)
    result["seconds"] = time.perf_counter() - start
    return result


class _Pool:
    """submit / as_completed / close over local processes or a Dask cluster; a local pool broken by a
    killed worker is replaced, so the submissions it held can be retried."""

    def __init__(self, jobs, scheduler):
        self.jobs, self.scheduler, self.client, self.pool = jobs, scheduler, None, None
        if scheduler:
            from distributed import Client

            self.client = Client(scheduler) if isinstance(scheduler, str) else scheduler

    def submit(self, fn, item):
        if self.client is not None:
            return self.client.submit(fn, item, pure=False)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        for _ in range(2):
            if self.pool is None:
                self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("fork"))
            try:
                return self.pool.submit(fn, item)
            except BrokenProcessPool:  # a worker died: its futures fail and are retried by the caller
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = None
        raise RuntimeError("autograde: cannot start worker processes")

    def as_completed(self, futures):
        if self.client is not None:
            from distributed import as_completed
        else:
            from concurrent.futures import as_completed
        return as_completed(futures)

    def broken(self, err):
        """Whether `err` means the worker was lost (then the pool is replaced)."""
        from concurrent.futures.process import BrokenProcessPool

        lost = isinstance(err, BrokenProcessPool) or type(err).__name__ in ("KilledWorker", "CommClosedError")
        if lost and self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        return lost

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
        if self.client is not None and isinstance(self.scheduler, str):
            self.client.close()


def _plans(coursedir, assignment, notebooks):
    src = os.path.join(coursedir.root, coursedir.source_directory, assignment)
    cache = os.path.join(coursedir.root, "trusted", "plans", assignment)
    secret = recheck.course_secret(coursedir.root)
    return {nb_id: recheck.cached_plan(src, nb_id, cache, secret=secret) for nb_id in notebooks}


def autograde(course_dir, assignment, **kwargs):
    """Autograde every submission of `assignment` (see the module docstring). Returns {student: record}.

    Args:
        course_dir: the course root (holds nbgrader_config.py, submitted/, gradebook.db).
        jobs: worker processes; scheduler: a Dask scheduler address (or Client) instead.
        sandbox: run student code in the bubblewrap sandbox (False only for trusted code).
        recheck: judge test cells with the trusted re-check. students: only these (default all).
        timeout: per-cell seconds (default: Execute.timeout of the config). progress: show a bar.
    Returns:
        {student: {"status": graded|flagged|failed|error|refused, "score", "max_score", "flags",
        "cells", "note", "notes"}}.
    Raises:
        ValueError: no course there, an unknown assignment, or nothing to grade.
    """
    import warnings

    from .nbgrader_env import SQLAlchemyWarning

    with gradebook.one_engine(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SQLAlchemyWarning)  # nbgrader's, about its own internals
        return _autograde(course_dir, assignment, **kwargs)


def _students(coursedir, assignment, wanted):
    """(students to grade, {name: why refused}); ValueError when there is nothing to grade."""
    sub_root = os.path.join(coursedir.root, coursedir.submitted_directory)
    if not os.path.isdir(sub_root):
        raise ValueError(f"autograde: nothing to grade: no submissions folder {sub_root} (collected submissions go "
                         f"in {coursedir.submitted_directory}/<student>/{assignment}/{assignment}.ipynb)")
    found, refused = [], {}
    for entry in sorted(os.listdir(sub_root)):
        if not os.path.isdir(os.path.join(sub_root, entry, assignment)):
            continue
        why = _bad_name(entry)
        if why:
            refused[entry.encode("utf-8", "surrogateescape").decode("utf-8", "replace")] = why
        else:
            found.append(entry)
    students = [s for s in found if wanted is None or s in wanted]
    if not students and not refused:
        which = f"for student(s) {', '.join(wanted)} " if wanted else ""
        raise ValueError(f"autograde: nothing to grade: no submission of {assignment} {which}in {sub_root} "
                         f"(expected {sub_root}/<student>/{assignment}/{assignment}.ipynb)")
    return students, refused


def _autograde(course_dir, assignment, *, jobs=1, scheduler=None, sandbox=True, recheck=True,
               students=None, timeout=None, progress=True):
    """The body of `autograde`. The phases overlap: while workers execute, this process prepares
    the next submissions and records finished ones, so it is the only writer of the gradebook.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory
    from tqdm.auto import tqdm

    from .course import check_assignment, resolve_course

    if jobs < 1:
        raise ValueError(f"autograde: `jobs` must be >= 1; got {jobs}")
    root = resolve_course(course_dir)
    cfg = load_course_config(root)
    coursedir = CourseDirectory(config=cfg)
    check_assignment(root, assignment, coursedir.source_directory)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            raise ValueError(f"autograde: assignment {assignment!r} is not in the gradebook; "
                             "run `conv-course release` (nbgrader generate_assignment) first") from None
    students, refused = _students(coursedir, assignment, students)
    cell_timeout = int(timeout or cfg.Execute.get("timeout", 30) or 30)
    plans = _plans(coursedir, assignment, notebooks) if recheck and students else {}
    preload = list(dict.fromkeys(m for plan in plans.values() for m in plan["modules"])) if sandbox else []
    previous = gradebook.load_records(root, assignment)
    records = {name: {"status": "refused", "flags": [f"refused: {why}"], "cells": {}, "score": None,
                      "max_score": None} for name, why in refused.items()}
    pending, tries = {}, {}
    bar = tqdm(total=len(students), desc=f"autograde {assignment}", unit="sub", disable=not progress,
               file=sys.stderr)
    pool = _Pool(jobs, scheduler)

    def finish(fut):
        job = pending.pop(fut)
        student = job["student"]
        try:
            res = fut.result()
        except Exception as err:  # noqa: BLE001
            if pool.broken(err) and tries.get(student, 0) < 2:  # a lost worker: try elsewhere
                tries[student] = tries.get(student, 0) + 1
                pending[pool.submit(grade_submission, job)] = job
                return
            res = {"infrastructure": f"the worker failed: {type(err).__name__}: {str(err)[:200]}"}
        if res.get("infrastructure"):
            records[student] = {"status": "error", "flags": [f"not graded (grader failure): {res['infrastructure']}"],
                                "cells": {}, "score": None, "max_score": None}
        else:
            records[student] = gradebook.record(cfg, coursedir, assignment, job, res, previous.get(student))
        bar.update()

    try:
        for i, student in enumerate(students):
            job, error = _prepare(cfg, coursedir, assignment, student, notebooks)
            if error:
                with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
                    records[student] = gradebook.record_failed(gb, assignment, student, error)
                records[student]["notes"] = job.get("notes", [])
                bar.update()
                continue
            # warm: a local worker starts its next kernel early, when more submissions will follow
            job.update(timeout=cell_timeout, sandbox=sandbox, plans=plans, preload=preload,
                       warm=not scheduler and i < len(students) - jobs,
                       recheck_timeout=cell_timeout * (2 + sum(len(p["cells"]) for p in plans.values())))
            pending[pool.submit(grade_submission, job)] = job
            for fut in [f for f in pending if f.done()]:
                finish(fut)
        while pending:
            for fut in pool.as_completed(list(pending)):
                finish(fut)
    finally:
        pool.close()
        bar.close()
    gradebook.write_flags(root, assignment, records)
    return records


def summary_table(records):
    """The per-student table, what was refused or kept, and the totals line printed after a run."""
    from ..tables import format_table

    rows = [{"student": s, "status": r["status"], "score": r.get("score"), "max": r.get("max_score"),
             "note": (r["flags"] or [r.get("note") or ""])[0][:70]} for s, r in sorted(records.items())]
    table = format_table(rows, [("student", "student", "{}"), ("status", "status", "{}"),
                                ("score", "score", "{:g}"), ("max", "max", "{:g}"), ("note", "note", "{}")])
    cells = [c for r in records.values() for c in r.get("cells", {}).values()]
    judged = sum(c.get("by") == "judge" and c.get("verdict") != "unverifiable" for c in cells)
    lines = [table, ""]
    if cells:
        lines.append(f"test cells judged by the trusted re-check: {judged} of {len(cells)}"
                     + ("" if judged == len(cells) else " (the others are scored by the sandboxed kernel: their "
                        "checks involve objects that are not plain data, such as models or functions)"))
    for s, r in sorted(records.items()):
        for note in r.get("notes", []):
            lines.append(f"{s}: {note}")
    count = {k: sum(r["status"] == k for r in records.values())
             for k in ("graded", "failed", "flagged", "error", "refused")}
    lines.append(f"graded {count['graded']}, failed to run {count['failed']}, flagged {count['flagged']}"
                 + (f", grader errors {count['error']} (not recorded; rerun them)" if count["error"] else "")
                 + (f", refused {count['refused']}" if count["refused"] else ""))
    return "\n".join(lines)


def add_autograde_arguments(parser):
    parser.add_argument("assignment", help="assignment name, e.g. 01-corr2d")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address: run the workers there")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run student code UNSANDBOXED, as you (only for code you trust)")
    parser.add_argument("--no-recheck", action="store_true", help="skip the trusted re-check (not recommended)")
    parser.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in s (default: nbgrader_config)")
    parser.add_argument("--course-dir", default=None,
                        help="course directory (default: here if it has nbgrader_config.py, else the repository)")


def run_autograde(args):
    from .sandbox import SandboxUnavailable
    from .sandbox_kernel import preflight

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
    return 1 if any(r["status"] in ("failed", "error", "refused") for r in records.values()) else 0
