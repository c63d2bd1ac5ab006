"""Temporary nbgrader courses for the end-to-end assignment tests: submit notebooks, autograde, read scores.

Each assignment is described by a plain data module (`a01_corr2d.py` ... `a09_fine_tune.py`): its
name `A`, its grade cells `CELLS` and their `POINTS`, the wrong students' `SUBMISSIONS`
(student -> {grade_id: new source}) and what each of them must score (`EXPECTED`). The shared tests
in `test_assignments.py` run over all nine; the tests that concern one assignment only live in
`test_NN_<name>_pipeline.py`. Every module asks `graded_course(data)` for the same graded course,
so each assignment is autograded by ONE `conv-course autograde` run for all its submissions:

    import a01_corr2d as data

    @pytest.fixture
    def graded(graded_course):
        return graded_course(data)

    def test_flipped(graded):
        r = graded.result("flipped")
        assert r.scores["test_corr2d_basic"] == 0 and "kernel is flipped" in r.text("test_corr2d_basic")

Submissions are graded the way instructors grade them: `conv-course autograde` (the sandboxed
kernel, the trusted re-check and judge, nbgrader's gradebook), in the temporary course directory
with the repository's nbgrader_config.py. Everything collected here is marked `slow` and `grading`.
"""

import copy
import dataclasses
import pathlib
import re
import shutil

import nbformat
import pytest

from conv_course.autograding import course as course_mod

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def pytest_collection_modifyitems(items):
    # A conftest's hook sees every collected item, so keep to the ones under this directory.
    for item in items:
        if HERE in pathlib.Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.grading)


def strip_ansi(text):
    return _ANSI.sub("", text)


def cell_text(cell):
    """Everything a code cell printed: streams, results and errors (with tracebacks), ANSI removed."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
            parts.extend(out.get("traceback", []))
    return strip_ansi("\n".join(parts))


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


@dataclasses.dataclass
class Result:
    """One autograded submission: per-test-cell scores and the autograded notebook."""

    scores: dict  # grade_id -> score of each grade cell
    max_scores: dict
    notebook: object  # the autograded nbformat notebook

    @property
    def total(self):
        return sum(self.scores.values())

    @property
    def max_total(self):
        return sum(self.max_scores.values())

    def text(self, gid):
        """The text output of the cell with nbgrader grade_id `gid` (errors included)."""
        for cell in self.notebook.cells:
            if grade_id(cell) == gid:
                return cell_text(cell)
        raise KeyError(f"no cell with grade_id {gid!r} in the autograded notebook")

    def all_text(self):
        return "\n".join(cell_text(c) for c in self.notebook.cells if c.cell_type == "code")

    def check(self, cells, scores, texts=None, relative=False):
        """Assert the scores of `cells` (in order; with `relative`, as fractions of each cell's
        points) and that each cell in `texts` printed its text."""
        got = [self.scores[c] / (self.max_scores[c] if relative else 1) for c in cells]
        assert got == scores, self.all_text()[-3000:]
        for cell, text in (texts or {}).items():
            assert text in self.text(cell), self.text(cell)[-2000:]


class Course:
    """A temporary nbgrader course holding one assignment copied from the repository's solutions/."""

    def __init__(self, root, assignment):
        self.root, self.assignment = pathlib.Path(root), assignment
        self.nb_name = f"{assignment}.ipynb"
        shutil.copy(ROOT / "nbgrader_config.py", self.root / "nbgrader_config.py")
        shutil.copytree(ROOT / "solutions" / assignment, self.root / "solutions" / assignment)
        self.run("generate_assignment", assignment, "--force")

    def run(self, *args):
        code = course_mod.nbgrader(str(self.root), *args, "--log-level=WARN", quiet=True)
        assert code == 0, f"nbgrader {' '.join(args)} failed with exit status {code} (log above)"

    def _read(self, directory):
        return nbformat.read(self.root / directory / self.assignment / self.nb_name, as_version=4)

    def solution(self):
        """The source notebook (the instructor's solution, hidden tests included)."""
        return self._read("solutions")

    def release(self):
        """The notebook students receive (stubs, no hidden tests)."""
        return self._read("exercises")

    def variant(self, replace=None, delete=(), base="solution"):
        """`base` with the source of the cells whose grade_id is a key of `replace` replaced,
        and the cells whose grade_id is in `delete` removed."""
        nb = copy.deepcopy(self.solution() if base == "solution" else self.release())
        replace = dict(replace or {})
        missing = (set(replace) | set(delete)) - {grade_id(c) for c in nb.cells}
        if missing:
            raise KeyError(f"no cells with grade_id {sorted(missing)} in {self.assignment}")
        nb.cells = [c for c in nb.cells if grade_id(c) not in set(delete)]
        for cell in nb.cells:
            if grade_id(cell) in replace:
                cell.source = replace[grade_id(cell)].strip("\n")
        return nb

    def submit(self, student, nb):
        path = self.root / "submitted" / student / self.assignment / self.nb_name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)

    def grade_class(self, submissions, delete=(), timeout=None):
        """Submit the solution, the untouched release, one variant per entry of `submissions`
        (student -> {grade_id: new source}) and, if `delete` names cells, a student who deleted
        them; then autograde everyone in one run (`timeout`: seconds per cell)."""
        self.submit("solution", self.solution())
        self.submit("untouched", self.release())
        for student, replace in submissions.items():
            self.submit(student, self.variant(replace=replace))
        if delete:
            self.submit("deleted_cells", self.variant(delete=delete))
        self.autograde(timeout)
        return self

    def autograde(self, timeout=None):
        """Autograde every submission with `conv-course autograde --jobs 2` (sandbox and re-check on)."""
        from conv_course.autograding.autograde import autograde

        self.records = autograde(str(self.root), self.assignment, jobs=2, timeout=timeout, progress=False)
        failed = {s: r["flags"] for s, r in self.records.items() if r["status"] == "error"}
        assert not failed, f"grader errors: {failed}"

    def feedback(self):
        assert course_mod.feedback(self.assignment, str(self.root), quiet=True) == 0, "generate_feedback failed"
        return {p.parts[-3]: p.read_text() for p in (self.root / "feedback").glob(f"*/{self.assignment}/*.html")}

    def result(self, student):
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}", "conv-course") as gb:
            nb = gb.find_submission_notebook(self.assignment, self.assignment, student)
            scores = {g.name: g.score for g in nb.grades}
            max_scores = {g.name: g.max_score for g in nb.grades}
        notebook = nbformat.read(self.root / "autograded" / student / self.assignment / self.nb_name,
                                 as_version=4)
        return Result(scores, max_scores, notebook)


@pytest.fixture(scope="session")
def course_factory(tmp_path_factory):
    """course_factory(assignment) -> a fresh `Course` in its own temporary directory."""
    def make(assignment):
        return Course(tmp_path_factory.mktemp(f"course-{assignment}"), assignment)
    return make


@pytest.fixture(scope="session")
def graded_course(course_factory):
    """graded_course(data) -> the `Course` of the data module's assignment `data.A`, with the solution,
    the untouched release, every student of `data.SUBMISSIONS` and, if `data.DELETE` names cells, a
    student who deleted them, all autograded in one run (`data.TIMEOUT` seconds per cell).

    Graded once per session whichever module asks first; a grading that failed is not retried."""
    courses, failures = {}, {}

    def get(data):
        if data.A in failures:
            pytest.fail(f"grading {data.A} failed earlier in this session: {failures[data.A]}", pytrace=False)
        if data.A not in courses:
            try:
                courses[data.A] = course_factory(data.A).grade_class(
                    data.SUBMISSIONS, delete=data.DELETE, timeout=data.TIMEOUT)
            except BaseException as err:
                failures[data.A] = f"{type(err).__name__}: {err}"
                raise
        return courses[data.A]
    return get
