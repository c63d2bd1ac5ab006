"""The trusted re-check: every verifiable point is decided by the instructor's checker, outside student code.

Three processes (`conv_course.autograding._replay`), so that no process both runs student code and knows an answer:

1. `build_plan` (instructor side, once per assignment, cached): run the instructor's notebook and
   record every call that each test cell makes to a name a solution cell defines. A cell is
   *verifiable* when its calls and the values it reads are plain data, and the judge (3), fed the
   instructor's own recorded results, passes it: a self-check of the whole design.
2. ``replay`` (sandboxed, student code): the student's cells run, then each recorded call is made
   with its ARGUMENTS only; outputs come back as plain data. Hidden cases are generated from a
   course secret that this process never has, and the sandbox hides the reference
   implementations (`conv_course.autograding.sandbox.REFERENCE_CODE`), so it has no answer to copy or compute.
   A cell that hangs or kills the process costs that cell only: the replay starts again after it.
3. ``judge`` (instructor side, no student code): the instructor's test cell runs with the real
   checker, each student function standing in by its replayed results. Its verdict and message
   are the cell's score and feedback: the re-check judges exactly what the cell checks.

A cell whose calls are not plain data (models, callables) is "unverifiable": its kernel score stands.
"""

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

from .. import PACKAGE_DIR
from ..grading._i18n import LANG_ENV
from . import plaindata
from .execution import InfrastructureError, write_files
from ._replay import student_names

__all__ = ["build_plan", "plan_key", "cached_plan", "course_secret", "recheck", "recheck_start", "recheck_finish",
           "recheck_stop", "cell_plan", "Verdict"]

_MAX_PLAN_FILES = 16 << 20
_ANSWER_LIMITS = plaindata.Limits(file_bytes=64 << 20, array_bytes=32 << 20, total_bytes=64 << 20, nodes=200_000)


class Verdict(tuple):
    """(status, detail, output): status "pass", "fail" or "unverifiable"; `output` is what the cell
    shows in the autograded notebook: {"stdout": ...} and, for a failure, {"ename", "evalue"}."""

    def __new__(cls, status, detail="", output=None):
        return super().__new__(cls, (status, detail, output or {}))

    status = property(lambda self: self[0])
    detail = property(lambda self: self[1])
    output = property(lambda self: self[2])


def cell_plan(nb):
    """The code cells of an nbgrader notebook as dicts: kind (code/solution/test), grade_id, source."""
    cells = []
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        kind = "code"
        if meta.get("grade") and not meta.get("solution"):
            kind = "test"
        elif meta.get("solution"):
            kind = "solution"
        cells.append({"kind": kind, "grade_id": meta.get("grade_id"), "source": source})
    return cells


def course_secret(course_dir):
    """The course's secret (``trusted/secret``, created once, readable by the instructor only):
    it seeds the hidden test cases, so no student process can generate them."""
    folder = os.path.join(course_dir, "trusted")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "secret")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16))
    with open(path) as f:
        return f.read().strip()


def _env(secret):
    env = dict(os.environ)
    env.pop("CONV_COURSE_HIDDEN_SEED", None)
    if secret:
        env["CONV_COURSE_HIDDEN_SEED"] = secret
    return env


def _run(mode, box, cwd, secret, timeout):
    """Run an instructor-side mode of `_replay` in `box`; returns its out bundle or raises."""
    try:
        proc = subprocess.run([sys.executable, "-m", "conv_course.autograding._replay", mode, box], cwd=cwd,
                              capture_output=True, timeout=timeout, env=_env(secret))
        return plaindata.read_bundle(box, "out")
    except (OSError, ValueError, subprocess.TimeoutExpired) as err:
        detail = proc.stderr.decode(errors="replace")[-2000:] if "proc" in locals() else str(err)
        raise InfrastructureError(f"trusted: the {mode} step failed: {detail}") from None


def _folder_files(folder):
    """{relative path: bytes} of the regular files beside the instructor's notebook (no links, no notebooks)."""
    files, total = {}, 0
    for rel, path in plaindata.regular_files(folder, [], max_files=10_000):
        if rel.endswith(".ipynb"):
            continue
        total += os.path.getsize(path)
        if total > _MAX_PLAN_FILES:
            raise ValueError(f"recheck: {folder} holds more than {_MAX_PLAN_FILES >> 20} MiB beside the notebook")
        files[rel] = plaindata.read_regular(path, _MAX_PLAN_FILES)
    return files


def build_plan(source_nb, workdir=None, timeout=600, secret=None):
    """Record the calls of every test cell of the instructor's notebook, then self-check them.

    Args:
        source_nb: the source notebook (a dict from nbformat/json), with solutions and hidden tests.
        workdir: the assignment's source folder (or a copy): the notebook's modules and data.
        secret: the course secret (`course_secret`) that seeds hidden cases; None: package seeds.
    Returns:
        dict: "cells" {grade_id: {"status", "reason", "calls", "values"}}, "arrays", "names" (student
        names), "source" (the notebook's code cells), "files" (the folder's other files),
        "modules" (imported by the notebook, in order: a warm kernel preloads them),
        "setup_modules" (imported by its instructor cells), "secret".
    """
    cells = cell_plan(source_nb)
    names = sorted(student_names(cells))
    files = _folder_files(workdir) if workdir else {}
    with tempfile.TemporaryDirectory(prefix="conv-course-plan-") as box:
        run_dir = os.path.join(box, "work")
        os.makedirs(run_dir)
        write_files(run_dir, files)
        plaindata.write_bundle(box, "job", {"cells": cells, "names": names}, [])
        out, arrays = _run("record", box, run_dir, secret, timeout)
    plan = {"cells": out["cells"], "arrays": arrays, "names": names, "source": cells, "files": files,
            "modules": out.get("modules", []), "setup_modules": out.get("setup_modules", []),
            "kinds": out.get("kinds", {}), "secret": secret}
    _self_check(plan, timeout)
    return plan


def _self_check(plan, timeout):
    """Judge the instructor's own recorded results: a cell the judge does not pass is unverifiable."""
    todo = [gid for gid, c in plan["cells"].items() if c["status"] == "ok"]
    if not todo:
        return
    answers = {}
    for gid in todo:
        cell = plan["cells"][gid]
        arrays = []
        calls = [dict(c["outcome"], value=_recode(c["outcome"]["value"], plan["arrays"], arrays))
                 if c["outcome"]["kind"] == "return" else dict(c["outcome"], message="") for c in cell["calls"]]
        values = {n: _recode(v, plan["arrays"], arrays) for n, v in cell["values"].items()}
        status = dict(plan["kinds"])
        answers[gid] = ({"calls": calls, "values": values, "names": status}, arrays)
    verdicts = _judge(plan, answers, timeout)
    for gid in todo:
        v = verdicts[gid]
        if v["status"] != "pass":
            plan["cells"][gid] = {"status": "unverifiable", "reason": "the checker does not pass the instructor's own "
                                  f"recorded results ({v.get('ename', v['status'])}: {v.get('evalue', '')[:200]})"}


def _recode(tree, arrays, into):
    """`tree` re-encoded into the array list `into` (references to student objects kept by name)."""
    refs = {}
    value = plaindata.decode(tree, arrays, resolve=lambda name: refs.setdefault(name, _Ref(name)))
    return plaindata.encode(value, into, refs={id(r): r.name for r in refs.values()})


class _Ref:
    """A student object in transit: known by its name only."""

    def __init__(self, name):
        self.name = name


def plan_key(source_dir, secret=None):
    """sha256 (hex) of what a plan depends on: the assignment's source folder, conv_course's own
    files (checkers, reference ops, weights), the course secret and the versions of Python, numpy
    and torch."""
    from importlib import metadata

    h = hashlib.sha256(sys.version.encode())
    h.update(hashlib.sha256((secret or "").encode()).digest())
    for dist in ("numpy", "torch"):
        try:
            h.update(f"{dist} {metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    for base in (source_dir, PACKAGE_DIR):
        for root, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                path = os.path.join(root, name)
                h.update(os.path.relpath(path, base).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def cached_plan(source_dir, nb_id, cache_dir, secret=None):
    """`build_plan` of ``<source_dir>/<nb_id>.ipynb``, kept in `cache_dir` and reused until
    `plan_key` changes: re-grading one late submission need not re-run the instructor's notebook.

    The cache lives in the course folder (``trusted/plans/``), which no sandbox can see.
    """
    import nbformat

    folder = os.path.join(cache_dir, nb_id)
    name = plan_key(source_dir, secret)[:32]
    try:
        meta, arrays = plaindata.read_bundle(folder, name)
        meta["files"] = _folder_files(source_dir)
        return dict(meta, arrays=arrays, secret=secret)
    except (OSError, ValueError):
        pass
    plan = build_plan(nbformat.read(os.path.join(source_dir, f"{nb_id}.ipynb"), as_version=4), source_dir,
                      secret=secret)
    shutil.rmtree(folder, ignore_errors=True)  # plans of older sources
    os.makedirs(folder)
    plaindata.write_bundle(folder, name, {k: v for k, v in plan.items() if k not in ("arrays", "files", "secret")},
                           plan["arrays"])
    return plan


# ---------------------------------------------------------------- replay (sandboxed)

def _replay_job(plan, student_nb, cells_of, todo, skip):
    """What the sandbox gets: the student's cells and the recorded ARGUMENTS, never a result.

    The job lists the test cells `cells_of` (the same cells, in the same order, at every restart,
    so `skip` indices carry over) and asks for the calls of those in `todo` only.
    """
    cells = [c for c in cell_plan(student_nb) if c["kind"] != "test" or c["grade_id"] in cells_of]
    seen = {c["grade_id"] for c in cells if c["kind"] == "test"}
    cells += [{"kind": "test", "grade_id": gid, "source": ""} for gid in cells_of if gid not in seen]
    arrays, calls, values = [], {}, {}
    for gid in todo:
        cell = plan["cells"][gid]
        calls[gid] = [{"name": c["name"], "probe": c.get("probe", False),
                       "args": _recode(c["args"], plan["arrays"], arrays),
                       "kwargs": _recode(c["kwargs"], plan["arrays"], arrays)} for c in cell["calls"]]
        values[gid] = sorted(cell["values"])
    job = {"cells": [dict(c, source="") if c["kind"] == "test" else c for c in cells], "calls": calls,
           "values": values, "names": plan["names"], "skip": sorted(skip)}
    return job, arrays


def recheck(plan, student_nb, files=None, *, sandbox=True, limits=None, timeout=120, cell_timeout=None):
    """Replay the student's cells with the plan's arguments in a fresh process; judge here.

    Args:
        plan: from `build_plan`.
        student_nb: the sanitized submission (locked cells already restored by nbgrader).
        files: {relative path: bytes} of the submission's files beside the notebook (data the
            student's code may read); the replay sees a private copy of them.
    Returns:
        dict grade_id -> Verdict.
    """
    handle = recheck_start(plan, student_nb, files, sandbox=sandbox, limits=limits, cell_timeout=cell_timeout)
    return recheck_finish(handle, timeout)


def recheck_start(plan, student_nb, files=None, *, sandbox=True, limits=None, cell_timeout=None):
    """Start the replay and return a handle for `recheck_finish` (so the kernel runs meanwhile).

    The re-check keeps its own folder (the submission's files, handed to the sandbox's uid):
    `recheck_finish` or `recheck_stop` removes it.
    """
    todo = [gid for gid, c in plan["cells"].items() if c["status"] == "ok"]
    handle = {"plan": plan, "nb": student_nb, "sandbox": sandbox, "limits": limits, "folder": None,
              "cell_timeout": cell_timeout or 30, "start": time.monotonic(), "todo": todo, "proc": None,
              "verdicts": {gid: Verdict("unverifiable", c["reason"]) for gid, c in plan["cells"].items()
                           if c["status"] != "ok"}}
    if todo:
        handle["folder"] = tempfile.mkdtemp(prefix="conv-course-check-")
        handle["workdir"] = os.path.join(handle["folder"], "submission")
        try:
            os.makedirs(handle["workdir"])
            write_files(handle["workdir"], files or {})
            _launch(handle, todo, set())
        except BaseException:
            recheck_stop(handle)
            raise
    return handle


def recheck_stop(handle):
    """End a re-check that will not be finished (the kernel failed): kill the replay, remove its folder."""
    proc = handle.get("proc")
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, 9)
        proc.wait()
    if proc is not None:
        _end(proc)
    for key in ("box", "folder"):
        if handle.get(key):
            shutil.rmtree(handle.pop(key), ignore_errors=True)


def _launch(handle, todo, skip):
    from .sandbox import Limits, reference_free, start_sandboxed

    box = handle["box"] = tempfile.mkdtemp(prefix="conv-course-recheck-")  # a mount point inside: fixed
    job, arrays = _replay_job(handle["plan"], handle["nb"], handle["todo"], todo, skip)
    handle["cells"] = job["cells"]
    plaindata.write_bundle(box, "job", job, arrays)
    # the only files the replay may write: its progress and one bundle per test cell, each at most
    # Limits.fsize bytes (as root the box itself stays root's: no other file can be created there)
    outputs = [os.path.join(box, "progress")] + [os.path.join(box, f"cell-{i}{ext}") for i, c in enumerate(job["cells"])
                                                 if c["kind"] == "test" for ext in (".json", ".npz")]
    for path in outputs:
        open(path, "wb").close()
    os.chmod(box, 0o755)
    argv = [sys.executable, "-I", "-m", "conv_course.autograding._replay", "replay", box]
    try:
        if handle["sandbox"]:
            hide = reference_free(keep=handle["plan"].get("setup_modules", []))
            handle["proc"] = start_sandboxed(argv, workdir=handle["workdir"], extra_writable=[box], writable_files=outputs,
                                             limits=handle["limits"] or Limits(), output=subprocess.DEVNULL, hide=hide,
                                             env={k: os.environ[k] for k in (LANG_ENV,) if k in os.environ})
        else:
            handle["proc"] = subprocess.Popen(argv, cwd=handle["workdir"], stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True, env=_env(None))
    except (OSError, RuntimeError) as err:  # bwrap or Python missing, SandboxUnavailable
        shutil.rmtree(box, ignore_errors=True)
        raise InfrastructureError(f"trusted: the re-check process did not start ({err})") from None


def _progress(box):
    try:
        with open(os.path.join(box, "progress"), "rb") as f:
            return f.read(32).decode(errors="replace").strip() or None
    except OSError:
        return None


def _watch(handle, deadline):
    """Wait for the replay; kill it when a cell makes no progress for `cell_timeout` s or at
    `deadline`. Returns (last progress seen, how it ended: "done", "exited", "timeout", "deadline")."""
    proc, box, limit = handle["proc"], handle["box"], handle["cell_timeout"]
    last, since = None, time.monotonic()
    while True:
        now = time.monotonic()
        progress = _progress(box)
        if progress is not None and progress != last:  # an empty read (a write in flight) is no news
            last, since = progress, now
        if proc.poll() is not None:
            _end(proc)
            last = _progress(box) or last
            return last, "done" if last == "done" else "exited"
        if now - since > limit or now > deadline:
            os.killpg(proc.pid, 9)
            proc.wait()
            _end(proc)
            return last, "timeout" if now - since > limit else "deadline"
        time.sleep(0.02)


def _end(proc):
    """Make sure nothing of a finished replay's sandbox survives (its cgroup, when it has one)."""
    group = getattr(proc, "group", None)
    if group is not None:
        group.remove()


def recheck_finish(handle, timeout=120):
    """Wait for the replay (restarting it after a cell that hangs or kills it), then judge.

    Raises:
        InfrastructureError: the replay never started running the student's cells, or the judge failed.
    """
    try:
        return _finish(handle, timeout)
    finally:
        recheck_stop(handle)


def _finish(handle, timeout):
    verdicts, plan = dict(handle["verdicts"]), handle["plan"]
    if handle["proc"] is None:
        return verdicts
    deadline = handle["start"] + timeout
    answers, skip, todo = {}, set(), list(handle["todo"])
    limit = handle["cell_timeout"]
    while todo:
        try:
            progress, how = _watch(handle, deadline)
            cells = handle["cells"]
            for i, cell in enumerate(cells):
                if cell["kind"] == "test" and cell["grade_id"] in todo:
                    try:
                        answers[cell["grade_id"]] = plaindata.read_bundle(handle["box"], f"cell-{i}", _ANSWER_LIMITS)
                    except FileNotFoundError:
                        pass
                    except (OSError, ValueError) as err:
                        verdicts[cell["grade_id"]] = _failed("ReplayError", "your code's results could not be read "
                                                             f"back ({str(err)[:200]})")
        finally:
            shutil.rmtree(handle.pop("box"), ignore_errors=True)
        if progress is None:
            raise InfrastructureError(f"trusted: the re-check process did not start ({how})")
        todo = [gid for gid in todo if gid not in answers and gid not in verdicts]
        if how == "done" or not todo:
            break
        if how == "deadline":
            for gid in todo:
                verdicts[gid] = _failed("TimeoutError", f"the re-check of this notebook ran past its limit of "
                                        f"{timeout:.0f} s before this test; make your functions faster")
            break
        stuck = int(progress) if progress.isdigit() and int(progress) < len(cells) else None
        if stuck is None:  # the student's code wrote into the progress file: go on after the next test
            stuck = next((i for i, c in enumerate(cells) if c["kind"] == "test" and c["grade_id"] in todo), 0)
        if cells[stuck]["kind"] == "test" and cells[stuck]["grade_id"] in todo:
            gid = cells[stuck]["grade_id"]
            verdicts[gid] = _failed("TimeoutError", f"your code ran longer than {limit:g} s on this test's cases "
                                    "(the per-cell limit): look for an endless loop or make it faster") \
                if how == "timeout" else _failed("ProcessExit", "your code ended the Python process during this "
                                                 "test (exit, os._exit, a crash or too much memory)")
        skip.add(stuck)
        todo = [gid for gid in todo if gid not in verdicts]
        if todo:
            _launch(handle, todo, skip)
    judged = _judge(plan, answers, max(30.0, 2 * limit * len(answers) + 30)) if answers else {}
    for gid, v in judged.items():
        verdicts[gid] = _verdict(v)
    return verdicts


def _failed(ename, evalue):
    return Verdict("fail", f"{ename}: {evalue}", {"ename": ename, "evalue": evalue})


def _verdict(v):
    if v["status"] == "pass":
        return Verdict("pass", "the checker passed on your function's results", {"stdout": v.get("stdout", "")})
    if v["status"] == "unjudgeable":
        return Verdict("unverifiable", f"the checker could not be replayed: {v.get('evalue', '')}")
    return Verdict("fail", f"{v.get('ename')}: {v.get('evalue', '')}"[:300],
                   {"ename": v.get("ename", "Error"), "evalue": v.get("evalue", ""), "stdout": v.get("stdout", "")})


def _judge(plan, answers, timeout):
    """Run the judge on {grade_id: (answer, arrays)}; returns {grade_id: verdict dict}."""
    tests = {gid: plan["cells"][gid] for gid in answers}
    with tempfile.TemporaryDirectory(prefix="conv-course-judge-") as box:
        run_dir = os.path.join(box, "work")
        os.makedirs(run_dir)
        write_files(run_dir, plan.get("files", {}))
        plaindata.write_bundle(box, "job", {"cells": plan["source"], "names": plan["names"], "tests": tests},
                               plan["arrays"])
        for gid, (answer, arrays) in answers.items():
            plaindata.write_bundle(box, f"answer-{gid}", answer, arrays)
        out, _ = _run("judge", box, run_dir, plan.get("secret"), timeout)
    got = out.get("cells", {})
    missing = set(answers) - set(got)
    if missing:
        raise InfrastructureError(f"trusted: the judge gave no verdict for {sorted(missing)}")
    return got
