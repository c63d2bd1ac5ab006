"""Phase 3 of `conv_course.autograde`: a worker's results into nbgrader's gradebook.

Only the coordinating process calls these, so SQLite has one writer. `record` lets nbgrader's own
Autograde converter write ``autograded/`` and the scores, with its Execute step replaced by the
worker's outputs, then lets the trusted re-check confirm or lower each test cell's score and flag
disagreements for manual review. `record_failed` gives a submission that could not run zero
points, with the reason.
"""

import contextlib

import nbformat

__all__ = ["record", "record_failed", "one_engine"]

_EXECUTED = {}  # (student, notebook) -> executed notebook, read by UseExecuted in phase 3


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


def record(cfg, coursedir, assignment, job, res):
    """Phase 3 for one student: nbgrader writes autograded/ and scores; the re-check confirms or lowers them."""
    from nbgrader.api import Gradebook

    student = job["student"]
    for nb_id, outputs in res["outputs"].items():
        nb = nbformat.reads(job["notebooks"][nb_id], as_version=4)
        if len(outputs) != len(nb.cells):
            raise RuntimeError(f"worker returned {len(outputs)} cells for {student}/{nb_id}, expected {len(nb.cells)}")
        for cell, (outs, count) in zip(nb.cells, outputs):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [nbformat.from_dict(o) for o in outs], count
        _EXECUTED[(student, nb_id)] = nb
    coursedir.assignment_id, coursedir.student_id = assignment, student
    app = _autograde_class()(coursedir=coursedir, config=cfg)
    app.force = True
    app.log.setLevel("ERROR")
    try:
        app.start()
    finally:
        _EXECUTED.clear()
    rec = {"status": "graded", "flags": [], "cells": {}}
    if res["error"]:
        rec["note"] = res["error"]
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        for nb_id, kernel in res["kernel"].items():
            for gid, k_score in kernel.items():
                status, detail = res["trusted"].get(nb_id, {}).get(gid, ("unchecked", ""))
                grade = gb.find_grade(gid, nb_id, assignment, student)
                k_score = grade.auto_score if grade.auto_score is not None else k_score
                confirmed = 0.0 if status == "fail" else k_score
                rec["cells"][f"{nb_id}/{gid}"] = {"kernel": k_score, "confirmed": confirmed,
                                                  "recheck": status, "detail": detail}
                if (status == "fail" and k_score) or (status == "pass" and not k_score):
                    rec["flags"].append(f"{nb_id}/{gid}: kernel {k_score:g}, re-check {status}: {detail}")
                    grade.manual_score, grade.needs_manual_grade = confirmed, True
        gb.db.commit()
        if rec["flags"]:
            rec["status"] = "flagged"
        sub = gb.find_submission(assignment, student)
        rec["score"], rec["max_score"] = float(sub.score), float(sub.max_score)
    return rec


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
