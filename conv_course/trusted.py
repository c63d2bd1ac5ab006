"""The trusted re-check: points are confirmed by code the student's kernel cannot reach.

1. `build_plan` runs the instructor's source notebook (solutions + hidden tests) once, outside any
   student process, and records every call that each graded test cell makes to a name that a
   solution cell defines: the arguments and the instructor's result (or the exception raised).
2. `recheck` runs the student's own cells in a FRESH sandboxed plain-Python process (no IPython:
   no input transformers, excepthooks or checker patches survive from the kernel) and makes the
   same calls there. Only numbers come back (JSON + .npz, never pickle).
3. The results are compared here, with the instructor's numpy, against the recorded results.

A test cell whose calls cannot be recorded as plain data (models, callables) is "unverifiable":
its in-kernel score stands. The confirmed score of a cell is the in-kernel score if the re-check
agrees, else 0; any disagreement is flagged for manual review.
"""

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from . import _replay as codec

__all__ = ["build_plan", "plan_key", "cached_plan", "recheck", "recheck_start", "recheck_finish", "compare",
           "cell_plan", "Verdict",
           "load_flags", "write_flags"]


def _student_names(cells):
    """Top-level names bound by solution cells (functions, classes, variables)."""
    names = set()
    for cell in cells:
        if cell["kind"] != "solution":
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def cell_plan(nb):
    """The cells of an nbgrader notebook as dicts: kind (code/solution/test), grade_id, source."""
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


def build_plan(source_nb, workdir=None, timeout=600):
    """Record the reference calls of every test cell of the instructor's notebook.

    Args:
        source_nb: the source notebook (a dict from nbformat/json), with solutions and hidden tests.
        workdir: folder to run in (a copy of the assignment's source folder); default a temp folder.
    Returns:
        dict: {"cells": {grade_id: {"status", "reason", "calls", "values"}}, "arrays": [ndarray],
        "modules": the modules the notebook imported, as `_replay.new_roots` lists them (a warm
        grading kernel preloads them)} (kept in memory; `recheck` ships it to the sandbox).
    """
    cells = cell_plan(source_nb)
    job = {"cells": cells, "names": sorted(_student_names(cells))}
    with tempfile.TemporaryDirectory(prefix="conv-course-plan-") as tmp:
        run_dir = workdir or tmp
        _write_job(tmp, job, [])
        proc = subprocess.run([sys.executable, "-m", "conv_course._replay", "record", tmp], cwd=run_dir,
                              capture_output=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(os.path.join(tmp, "out.json")):
            raise RuntimeError("trusted: recording the reference calls failed:\n"
                               + proc.stderr.decode(errors="replace")[-2000:])
        out, arrays = codec.read_bundle(tmp, "out")
    return {"cells": out["cells"], "arrays": arrays, "names": job["names"], "modules": out.get("modules", [])}


def plan_key(source_dir):
    """sha256 (hex) of what a plan depends on: the assignment's source folder, conv_course's own
    files (checkers, reference ops, weights) and the versions of Python, numpy and torch."""
    from importlib import metadata

    h = hashlib.sha256(sys.version.encode())
    for dist in ("numpy", "torch"):
        try:
            h.update(f"{dist} {metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    for base in (source_dir, os.path.dirname(os.path.abspath(__file__))):
        for root, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                path = os.path.join(root, name)
                h.update(os.path.relpath(path, base).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def cached_plan(source_dir, nb_id, cache_dir):
    """`build_plan` of ``<source_dir>/<nb_id>.ipynb``, kept in `cache_dir` and reused until
    `plan_key` changes: re-grading one late submission need not re-run the instructor's notebook.

    The cache lives in the course folder (``trusted/plans/``), which no sandbox can see.
    """
    folder = os.path.join(cache_dir, nb_id)
    name = plan_key(source_dir)[:32]
    try:
        meta, arrays = codec.read_bundle(folder, name)
        return dict(meta, arrays=arrays)
    except (OSError, ValueError):
        pass
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(source_dir, tmp, dirs_exist_ok=True)
        plan = build_plan(nbformat.read(os.path.join(source_dir, f"{nb_id}.ipynb"), as_version=4), tmp)
    shutil.rmtree(folder, ignore_errors=True)  # plans of older sources
    os.makedirs(folder)
    codec.write_bundle(folder, name, {k: v for k, v in plan.items() if k != "arrays"}, plan["arrays"])
    return plan


def _write_job(folder, job, arrays):
    codec.write_bundle(folder, "job", job, arrays)


def recheck(plan, student_nb, workdir, *, sandbox=True, limits=None, timeout=120):
    """Re-run the student's cells with the plan's calls in a fresh process; compare here.

    Args:
        plan: from `build_plan`.
        student_nb: the sanitized submission (locked cells already restored by nbgrader).
        workdir: a private folder holding a copy of the submission; the only writable path inside.
    Returns:
        dict grade_id -> Verdict.
    """
    return recheck_finish(recheck_start(plan, student_nb, workdir, sandbox=sandbox, limits=limits), timeout)


def recheck_start(plan, student_nb, workdir, *, sandbox=True, limits=None):
    """Start `recheck`'s process and return a handle for `recheck_finish` (so the kernel runs meanwhile)."""
    handle = {"plan": plan, "proc": None, "box": None, "start": time.monotonic(),
              "verdicts": {gid: Verdict("unverifiable", c["reason"]) for gid, c in plan["cells"].items()
                           if c["status"] != "ok"},
              "todo": [gid for gid, c in plan["cells"].items() if c["status"] == "ok"]}
    if not handle["todo"]:
        return handle
    todo = handle["todo"]
    cells = [c for c in cell_plan(student_nb) if c["kind"] != "test" or c["grade_id"] in todo]
    seen = {c["grade_id"] for c in cells if c["kind"] == "test"}
    cells += [{"kind": "test", "grade_id": gid, "source": ""} for gid in todo if gid not in seen]
    job = {"cells": [dict(c, source="") if c["kind"] == "test" else c for c in cells],
           "calls": {gid: plan["cells"][gid] for gid in todo}}
    box = handle["box"] = tempfile.mkdtemp(prefix="conv-course-recheck-")  # a mount point inside: fixed
    _write_job(box, job, plan["arrays"])
    argv = [sys.executable, "-I", "-m", "conv_course._replay", "replay", box]
    if sandbox:
        from .sandbox import Limits, start_sandboxed

        handle["proc"] = start_sandboxed(argv, workdir=workdir, extra_writable=[box], limits=limits or Limits(),
                                         output=subprocess.DEVNULL)
    else:
        handle["proc"] = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
    return handle


def recheck_finish(handle, timeout=120):
    """Wait for the re-check (killing it `timeout` s after it started) and compare. Returns the verdicts."""
    verdicts, proc, box = dict(handle["verdicts"]), handle["proc"], handle["box"]
    if proc is None:
        return verdicts
    try:
        proc.wait(timeout=max(0.1, timeout - (time.monotonic() - handle["start"])))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    try:
        got, arrays = codec.read_bundle(box, "out", max_bytes=256 << 20)
        note = f"re-check process exited {proc.returncode} before this cell"
    except (OSError, ValueError) as err:
        got, arrays = {"cells": {}}, []
        note = f"re-check process produced no readable result ({err}; exit {proc.returncode})"
    finally:
        shutil.rmtree(box, ignore_errors=True)
    plan = handle["plan"]
    for gid in handle["todo"]:
        answer = got.get("cells", {}).get(gid) if isinstance(got.get("cells"), dict) else None
        if answer is None:
            verdicts[gid] = Verdict("fail", note)
        else:
            ok, why = compare(plan["cells"][gid], plan["arrays"], answer, arrays)
            verdicts[gid] = Verdict("pass" if ok else "fail", why)
    return verdicts


class Verdict(tuple):
    """(status, detail): status is "pass", "fail" or "unverifiable"."""

    def __new__(cls, status, detail=""):
        return super().__new__(cls, (status, detail))

    status = property(lambda self: self[0])
    detail = property(lambda self: self[1])


def compare(reference, ref_arrays, answer, arrays):
    """Whether the student's replayed calls give the instructor's results. Returns (ok, why)."""
    calls, got_calls = reference["calls"], answer.get("calls")
    if not isinstance(got_calls, list) or len(got_calls) != len(calls):
        return False, f"expected {len(calls)} call results, got {len(got_calls or [])}"
    for i, (call, outcome) in enumerate(zip(calls, got_calls)):
        try:
            same, why = _same_outcome(call["outcome"], ref_arrays, outcome, arrays)
        except (ValueError, TypeError, KeyError, IndexError) as err:
            same, why = False, f"unreadable result ({err})"
        if not same:
            return False, f"call {i + 1} `{call['name']}`: {why}"
    for name, value in reference.get("values", {}).items():
        got = answer.get("values", {}).get(name)
        try:
            same = got is not None and codec.same(codec.decode(value, ref_arrays), codec.decode(got, arrays))
        except (ValueError, TypeError, KeyError, IndexError):
            same = False
        if not same:
            return False, f"value of `{name}` differs"
    return True, f"{len(calls)} calls and {len(reference.get('values', {}))} values agree"


def _same_outcome(ref, ref_arrays, got, arrays):
    if not isinstance(got, dict) or got.get("kind") not in ("return", "raise", "missing", "unencodable"):
        return False, "malformed result"
    if ref["kind"] == "raise":
        if got["kind"] != "raise":
            return False, f"should raise {ref['types'][0]}, returned instead"
        types = got.get("types")
        ok = isinstance(types, list) and ref["types"][0] in types
        return ok, "" if ok else f"should raise {ref['types'][0]}, raised {types[:1]}"
    if got["kind"] != "return":
        return False, {"raise": f"raised {(got.get('types') or ['?'])[0]}", "missing": "name not defined",
                       "unencodable": "returned something that is not plain data"}[got["kind"]]
    ok = codec.same(codec.decode(ref["value"], ref_arrays), codec.decode(got["value"], arrays))
    return ok, "" if ok else "result differs from the instructor's"


def write_flags(course_dir, assignment, records):
    """Write `trusted/<assignment>.json`: per student, per cell, kernel vs confirmed score and flags."""
    folder = os.path.join(course_dir, "trusted")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{assignment}.json")
    with open(path, "w") as f:
        json.dump(records, f, indent=1, sort_keys=True)
    return path


def load_flags(course_dir):
    """{(student, assignment): [reason, ...]} for every flagged submission (for the grades export)."""
    folder = os.path.join(course_dir, "trusted")
    flags = {}
    if not os.path.isdir(folder):
        return flags
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                for student, rec in json.load(f).items():
                    if rec.get("flags"):
                        flags[(student, name[:-5])] = list(rec["flags"])
    return flags


