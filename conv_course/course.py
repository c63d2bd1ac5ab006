"""The instructor workflow: ``conv-course release | feedback | grades`` on an nbgrader course.

The repository root is the course directory (see ``nbgrader_config.py``): ``solutions/`` is
the nbgrader source, ``exercises/`` the release, ``submitted/<student>/<assignment>/`` the
collected submissions, ``autograded/`` and ``feedback/`` nbgrader's outputs, ``gradebook.db``
the scores. Each command runs nbgrader's own command line in the course directory, so what
the README shows (``make release``) and what nbgrader does are the same thing.
"""

import csv
import os
import subprocess
import sys

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader import utils as nbutils

from .trusted import load_flags

__all__ = ["course_root", "assignments", "nbgrader", "nbgrader_env", "release", "feedback", "export_grades",
           "ShortenTestTracebacks", "add_release_arguments", "run_release", "add_feedback_arguments",
           "run_feedback", "add_grades_arguments", "run_grades"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ShortenTestTracebacks(NbGraderPreprocessor):
    """Feedback preprocessor: a test cell's error keeps its message, not its traceback.

    An IPython traceback quotes the lines of the cell around the failing call, which in an
    autograded notebook include the hidden tests. The checker's message (case, expected vs
    received, likely bug) is all a student needs; tracebacks of the student's own cells stay.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and nbutils.is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}",
                                           "(traceback not shown: a test cell's hidden part stays hidden)"]
        return cell, resources


def course_root(path=None):
    """The course directory: `path`, else the current directory if it has nbgrader_config.py,
    else the repository this package lives in."""
    if path:
        root = os.path.abspath(path)
    elif os.path.isfile("nbgrader_config.py"):
        root = os.path.abspath(".")
    else:
        root = REPO_ROOT
    if not os.path.isfile(os.path.join(root, "nbgrader_config.py")):
        raise ValueError(f"course_root: `path` {root!r} has no nbgrader_config.py; expected a course "
                         "directory such as the conv-course repository root")
    return root


def assignments(root, directory="solutions"):
    """Assignment names under `root/directory`, sorted: folders holding ``<name>/<name>.ipynb``."""
    base = os.path.join(root, directory)
    if not os.path.isdir(base):
        return []
    return sorted(a for a in os.listdir(base) if os.path.isfile(os.path.join(base, a, f"{a}.ipynb")))


def nbgrader_env():
    """The environment for nbgrader: this interpreter's bin/ first on PATH (nbgrader runs
    `alembic` from PATH, and the grading kernel should be this interpreter's)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def nbgrader(root, *args, quiet=False):
    """Run ``nbgrader <args>`` with this interpreter in the course directory `root`.

    Returns the exit status; with `quiet`, nbgrader's log is captured and printed only on failure.
    """
    cmd = [sys.executable, "-m", "nbgrader", *args]
    env = nbgrader_env()
    if not quiet:
        return subprocess.call(cmd, cwd=root, env=env)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
    return proc.returncode


def _check_names(root, names, directory="solutions"):
    known = assignments(root, directory)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown assignment(s) {unknown}; {directory}/ has {known}")
    return list(names) or known


def release(root=None, names=(), quiet=False):
    """Regenerate ``exercises/<a>/`` from ``solutions/<a>/`` for `names` (default: all). Returns 0 on success."""
    root = course_root(root)
    names = _check_names(root, names)
    if not names:
        raise ValueError(f"release: no assignments under {os.path.join(root, 'solutions')}")
    if names == assignments(root):  # one call for all (startup is the slow part); the id is a glob
        return nbgrader(root, "generate_assignment", "*", "--force", quiet=quiet)
    code = 0
    for name in names:
        code = nbgrader(root, "generate_assignment", name, "--force", quiet=quiet) or code
    return code


def feedback(name, root=None, quiet=False):
    """Write ``feedback/<student>/<name>/<name>.html`` for every autograded submission of `name`."""
    root = course_root(root)
    _check_names(root, [name])
    return nbgrader(root, "generate_feedback", name, "--force", quiet=quiet)


def export_grades(root=None, to="grades.csv", quiet=False):
    """Export every score in the gradebook to the CSV file `to` (relative to the course root).

    nbgrader's columns plus ``flagged``: the reasons the trusted re-check gave for reviewing
    that submission by hand (empty when its points were confirmed).
    """
    root = course_root(root)
    code = nbgrader(root, "export", f"--to={to}", quiet=quiet)
    if code == 0:
        _add_flag_column(os.path.join(root, to), load_flags(root))
    return code


def _add_flag_column(path, flags):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0].keys()) if rows else ["assignment", "student_id"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields + ["flagged"])
        writer.writeheader()
        for row in rows:
            row["flagged"] = "; ".join(flags.get((row["student_id"], row["assignment"]), []))
            writer.writerow(row)


def _add_root(parser):
    parser.add_argument("--course-dir", default=None,
                        help="course directory (default: here if it has nbgrader_config.py, else the repository)")


def add_release_arguments(parser):
    parser.add_argument("assignments", nargs="*", help="assignment names, e.g. 01-corr2d (default: all)")
    _add_root(parser)


def run_release(args):
    return release(args.course_dir, args.assignments)


def add_feedback_arguments(parser):
    parser.add_argument("assignment", help="assignment name, e.g. 01-corr2d")
    _add_root(parser)


def run_feedback(args):
    return feedback(args.assignment, args.course_dir)


def add_grades_arguments(parser):
    parser.add_argument("--to", default="grades.csv", help="CSV file to write (default: grades.csv)")
    _add_root(parser)


def run_grades(args):
    return export_grades(args.course_dir, args.to)
