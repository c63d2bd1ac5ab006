"""Phase 3 of `conv_course.autograding.autograde`: a worker's results into nbgrader's gradebook, the one writer.

Only the coordinating process calls these, so SQLite has one writer. `record` lets nbgrader's own
Autograde converter write ``autograded/`` and the scores, with its Execute step replaced by the
worker's outputs (the trusted judge's outputs in every cell it judged). Before nbgrader sees them,
the outputs are made safe to grade and to show:

- a test cell's stderr is kept as text but does not decide its grade (nbgrader gives 0 to any
  test cell with stderr output, so a warning or a progress bar would cost points);
- student-produced HTML, JavaScript, SVG and markdown are shown as escaped text, so nothing a
  student prints runs in the feedback page or in the instructor's formgrader;
- any output line that reproduces hidden test source is removed.

Human decisions survive re-runs: a manual score set in formgrader stays unless the submission
itself changed (its digest is kept in ``trusted/<assignment>.json``). `record_failed` gives a
submission that could not be read zero points, with the reason; infrastructure failures are
never written (`autograde` reports them instead).
"""

import contextlib
import json
import os
import shutil
import tempfile

import nbformat

from .execution import write_files

__all__ = ["record", "record_failed", "one_engine", "safe_outputs", "write_flags", "load_flags", "load_records"]

_EXECUTED = {}  # (student, notebook) -> executed notebook, read by UseExecuted in phase 3
_ACTIVE = ("text/html", "application/javascript", "text/javascript", "image/svg+xml", "text/markdown",
           "application/vnd.jupyter.widget-view+json", "text/latex")
_HIDDEN_NOTE = "[hidden test source removed]"


def _autograde_class():
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import (AssignLatePenalties, IgnorePattern, LimitOutput, NbGraderPreprocessor,
                                        SaveAutoGrades)

    class UseExecuted(NbGraderPreprocessor):
        """Stands in for Execute: the notebook sanitized in phase 1, with the worker's outputs."""

        def preprocess(self, nb, resources):
            return _EXECUTED[(resources["nbgrader"]["student"], resources["nbgrader"]["notebook"])], resources

    class RecordAutograde(Autograde):
        sanitize_preprocessors = []  # done in phase 1 (CheckCellMetadata included), on this same notebook
        autograde_preprocessors = [UseExecuted, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                   SaveAutoGrades, AssignLatePenalties]

    return RecordAutograde


def _hidden_lines(nb):
    """Lines of hidden test source (between the HIDDEN TESTS markers of test cells)."""
    lines = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 6:
                lines.add(line.strip())
    return lines | {"### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"}


def _scrub(text, hidden):
    if not hidden or not any(h in text for h in hidden):
        return text
    for h in sorted(hidden, key=len, reverse=True):
        text = text.replace(h, _HIDDEN_NOTE)
    return text


def safe_outputs(nb):
    """Make every output safe to grade and show (see the module docstring). Modifies `nb`."""
    hidden = _hidden_lines(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        grade = bool(cell.metadata.get("nbgrader", {}).get("grade"))
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                out["text"] = _scrub(out.get("text", ""), hidden)
                if grade and out.get("name") == "stderr":
                    out["name"] = "stdout"
                    out["text"] = "".join(f"[stderr] {line}" for line in out["text"].splitlines(True))
            elif kind in ("display_data", "execute_result"):
                data = out.get("data", {})
                active = [k for k in list(data) if k in _ACTIVE or "javascript" in k or "html" in k]
                if active:
                    shown = data.get("text/plain") or data[active[0]]
                    shown = shown if isinstance(shown, str) else json.dumps(shown)
                    for k in active:
                        del data[k]
                    data["text/plain"] = shown
                for k, v in list(data.items()):
                    if isinstance(v, str) and k.startswith("text/"):
                        data[k] = _scrub(v, hidden)
                out["metadata"] = {}
            elif kind == "error":
                out["evalue"] = _scrub(str(out.get("evalue", "")), hidden)
                out["traceback"] = [_scrub(str(t), hidden) for t in out.get("traceback", [])]
    return nb


def record_failed(gb, assignment, student, reason):
    """Give every test cell of `student`'s submission 0 points; returns the record of a failed run."""
    gb.update_or_create_student(student)
    gb.update_or_create_submission(assignment, student)
    sub = gb.find_submission(assignment, student)
    for nb in sub.notebooks:
        for grade in nb.grades:
            grade.auto_score, grade.needs_manual_grade = 0, False
    gb.db.commit()
    return {"status": "failed", "flags": [f"failed to run: {reason}"], "cells": {},
            "score": float(sub.score), "max_score": float(sub.max_score)}


def _human_decisions(gb, assignment, student):
    """{(notebook, grade_id): manual_score} that a person set (reviewed: no longer needs grading)."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return {}
    return {(nb.name, g.name): g.manual_score for nb in sub.notebooks for g in nb.grades
            if g.manual_score is not None and not g.needs_manual_grade}


def record(cfg, coursedir, assignment, job, res, previous=None):
    """Phase 3 for one student: nbgrader writes autograded/ and the scores; judged cells count as judged.

    Args:
        previous: this student's record of the last run (from `load_records`), or None.
    """
    from nbgrader.api import Gradebook

    student = job["student"]
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        human = _human_decisions(gb, assignment, student)
    unchanged = bool(previous) and previous.get("digest") == job.get("digest")
    for nb_id, outputs in res["outputs"].items():
        nb = nbformat.reads(job["notebooks"][nb_id], as_version=4)
        if len(outputs) != len(nb.cells):
            raise RuntimeError(f"worker returned {len(outputs)} cells for {student}/{nb_id}, expected {len(nb.cells)}")
        for cell, (outs, count) in zip(nb.cells, outputs):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [nbformat.from_dict(o) for o in outs], count
        _EXECUTED[(student, nb_id)] = safe_outputs(nb)
    # nbgrader copies the submission's folder into autograded/: give it a staging copy holding only
    # what phase 1 accepted (regular files, no links, no special files), never the live folder
    staging = tempfile.mkdtemp(prefix="conv-course-record-")
    folder = os.path.join(staging, student, assignment)
    os.makedirs(folder)
    write_files(folder, job["files"])
    for nb_id, text in job["notebooks"].items():
        with open(os.path.join(folder, f"{nb_id}.ipynb"), "w") as f:
            f.write(text)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    submitted, coursedir.submitted_directory = coursedir.submitted_directory, staging
    app = _autograde_class()(coursedir=coursedir, config=cfg)
    app.force = True
    app.log.setLevel("ERROR")
    try:
        app.start()
    finally:
        coursedir.submitted_directory = submitted
        _EXECUTED.clear()
        shutil.rmtree(staging, ignore_errors=True)
    rec = {"status": "graded", "flags": [], "cells": {}, "digest": job.get("digest"), "notes": list(job.get("notes", []))}
    if res["error"]:
        rec["note"] = res["error"]
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        for nb_id, verdicts in res["cells"].items():
            for gid, (by, status, detail) in verdicts.items():
                grade = gb.find_grade(gid, nb_id, assignment, student)
                rec["cells"][f"{nb_id}/{gid}"] = {"score": grade.auto_score, "by": by, "verdict": status,
                                                  "detail": detail}
                if by == "judge" and status == "unverifiable":
                    rec["flags"].append(f"{nb_id}/{gid}: not judged automatically: {detail}")
                    grade.needs_manual_grade = True
                    if (nb_id, gid) not in human:
                        grade.manual_score = None
                if (nb_id, gid) in human:
                    if unchanged:
                        grade.manual_score, grade.needs_manual_grade = human[(nb_id, gid)], False
                        rec["cells"][f"{nb_id}/{gid}"]["manual"] = human[(nb_id, gid)]
                    else:
                        grade.manual_score, grade.needs_manual_grade = None, False
                        rec["notes"].append(f"{nb_id}/{gid}: manual score {human[(nb_id, gid)]:g} dropped: "
                                            "the submission changed since it was set")
        gb.db.commit()
        if any(c.get("manual") is not None for c in rec["cells"].values()):
            rec["notes"].append("kept the manual scores set in review (the submission is unchanged)")
        if rec["flags"]:
            rec["status"] = "flagged"
        sub = gb.find_submission(assignment, student)
        rec["score"], rec["max_score"] = float(sub.score), float(sub.max_score)
    return rec


def _flags_path(course_dir, assignment):
    return os.path.join(course_dir, "trusted", f"{assignment}.json")


def load_records(course_dir, assignment):
    """{student: record} of every earlier autograde run of `assignment` (empty if none)."""
    try:
        with open(_flags_path(course_dir, assignment)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_flags(course_dir, assignment, records):
    """Merge this run's `records` into ``trusted/<assignment>.json`` (other students' entries stay).

    Submissions whose grading failed for infrastructure reasons ("error") are not written: their
    earlier record, if any, stays.
    """
    folder = os.path.join(course_dir, "trusted")
    os.makedirs(folder, exist_ok=True)
    merged = load_records(course_dir, assignment)
    merged.update({s: r for s, r in records.items() if r.get("status") != "error"})
    path = _flags_path(course_dir, assignment)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def load_flags(course_dir):
    """{(student, assignment): [reason, ...]} for every flagged submission (for the grades export)."""
    folder = os.path.join(course_dir, "trusted")
    flags = {}
    if not os.path.isdir(folder):
        return flags
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            for student, rec in load_records(course_dir, name[:-5]).items():
                if isinstance(rec, dict) and rec.get("flags"):
                    flags[(student, name[:-5])] = list(rec["flags"])
    return flags


@contextlib.contextmanager
def one_engine():
    """Share one SQLAlchemy engine per database during a run.

    nbgrader's Gradebook opens a new engine and checks every table each time it is created, about
    ten times per submission; in one run the database and its tables do not change.
    """
    import nbgrader.api as api

    engines, checked = {}, set()
    create_engine, create_all = api.create_engine, api.Base.metadata.create_all

    def shared_engine(url, **kwargs):
        if url not in engines:
            engines[url] = create_engine(url, **kwargs)
        return engines[url]

    def create_all_once(bind=None, **kwargs):
        if id(bind) not in checked:
            checked.add(id(bind))
            create_all(bind=bind, **kwargs)

    api.create_engine, api.Base.metadata.create_all = shared_engine, create_all_once
    try:
        yield
    finally:
        api.create_engine = create_engine
        del api.Base.metadata.create_all
        for engine in engines.values():
            engine.dispose()
