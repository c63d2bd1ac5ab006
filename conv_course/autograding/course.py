"""The instructor workflow: ``conv-course release | feedback | grades`` on an nbgrader course.

The repository root is the course directory (see ``nbgrader_config.py``): ``solutions/`` is
the nbgrader source, ``exercises/`` the release, ``submitted/<student>/<assignment>/`` the
collected submissions, ``autograded/`` and ``feedback/`` nbgrader's outputs, ``gradebook.db``
the scores. Each command runs nbgrader's own command line in the course directory, so what
the README shows (``make release``) and what nbgrader does are the same thing.
"""

import csv
import filecmp
import html
import os
import shutil
import subprocess
import sys

from jinja2 import DictLoader
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader import utils as nbutils
from traitlets import default

from .. import REPO_ROOT
from .gradebook import load_flags
from .nbgrader_env import with_this_python

__all__ = ["resolve_course", "assignments", "check_assignment", "nbgrader", "nbgrader_command",
           "nbgrader_env", "release", "feedback", "export_grades", "ShortenTestTracebacks", "FeedbackExporter",
           "add_release_arguments", "run_release", "add_feedback_arguments", "run_feedback", "add_grades_arguments",
           "run_grades"]

# What `python -m nbgrader` runs, behind the conv-course command's warning filter. (-W and
# PYTHONWARNINGS cannot name SQLAlchemy's categories: Python reads them before site-packages is
# importable. PYTHONWARNINGS would also reach the kernels nbgrader starts.)
_NBGRADER_MAIN = """import sys
from conv_course.autograding.nbgrader_env import hide_sqlalchemy_warnings
hide_sqlalchemy_warnings()
from nbgrader.apps.nbgraderapp import main
sys.exit(main())"""

# MathJax 3 as the book serves it (node_modules/ is filled by scripts/fetch_assets.py, pinned and
# verified): the CHTML component, its fonts, the TeX extensions it autoloads, the menu's parts.
MATHJAX_SOURCE = os.path.join(REPO_ROOT, "node_modules", "mathjax")
MATHJAX_FILES = ["LICENSE", "es5/tex-chtml.js", "es5/input/tex", "es5/output/chtml", "es5/a11y", "es5/ui", "es5/sre"]
FEEDBACK_MATHJAX = "_static/mathjax"  # under feedback/, one copy for every page

# nbconvert's `mathjax` macro loads MathJax 2 from a CDN; this one loads the course's MathJax 3.
_MATHJAX_MACRO = """{%- macro mathjax(url=None) -%}
<script>
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true, processEnvironments: true, tags: "ams"}
};
</script>
<script defer src="SRC"></script>
{%- endmacro %}
"""
# nbgrader's feedback page, with each graded cell named in the score summary and long lines of
# output wrapped. The body block is nbgrader 0.9's with the <code>grade_id</code> added.
_FEEDBACK_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block header -%}
{{ super() | replace('</head>', '<style>
div.output_area pre { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>
</head>') }}
{%- endblock header -%}
{% block body %}
<body>
  <a name="top"></a>
  <div class="container">
    <div class="panel panel-default">
      <div class="panel-heading">
        <h4>{{ resources.nbgrader.notebook }} (Score: {{ resources.nbgrader.score | float | round(2) }}
          / {{ resources.nbgrader.max_score | float | round(2) }})</h4>
        <div id="toc">
          <ol>
          {%- for cell in nb.cells if cell.metadata.nbgrader %}
            {%- set g = cell.metadata.nbgrader %}
            {%- if g.grade or g.task %}
            {%- set kind = "Test cell" if g.grade and not g.solution else "Coding free-response"
                           if g.grade and cell.cell_type == "code" else "Written response" if g.grade else "Task" %}
            <li><a href="#{{ g.grade_id }}">{{ kind }} <code>{{ g.grade_id }}</code></a>
              (Score: {{ g.score | float | round(2) }} / {{ g.points | float | round(2) }})</li>
            {%- endif %}
            {%- if g.comment %}
            <li><a href="#comment-{{ g.grade_id }}">Comment</a></li>
            {%- endif %}
          {%- endfor %}
          {%- if resources.nbgrader.late_penalty > 0 %}
            <li class="late-penalty">Late submission penalty
              (Score: -{{ resources.nbgrader.late_penalty | float | round(2) }})</li>
          {%- endif %}
          </ol>
        </div>
      </div>
      <div class="panel-body">
        <div id="notebook" class="border-box-sizing">
          <div class="container" id="notebook-container">
            {{ super.super() }}
          </div>
        </div>
      </div>
    </div>
  </div>
</body>
{%- endblock body %}
"""


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


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback page, readable offline: MathJax from the course's own copy, each graded
    cell named by its grade_id in the score summary, long output lines wrapped.

    `mathjax_url` is relative to the page, ``feedback/<student>/<assignment>/<notebook>.html``.
    """

    @default("mathjax_url")
    def _mathjax_url_default(self):
        return f"../../{FEEDBACK_MATHJAX}/tex-chtml.js"

    @default("template_file")
    def _template_file_default(self):
        return "conv_course_feedback.html.j2"

    @default("extra_loaders")
    def _extra_loaders_default(self):
        macro = _MATHJAX_MACRO.replace("SRC", html.escape(self.mathjax_url))
        return [DictLoader({"mathjax.html.j2": macro, "conv_course_feedback.html.j2": _FEEDBACK_TEMPLATE})]

    def from_notebook_node(self, nb, resources=None, **kw):
        """Whatever the course's nbgrader_config.py says, the page shows no hidden test source, no
        test-cell traceback, and no student output that could run (HTML, JavaScript)."""
        import copy

        from nbgrader.preprocessors import ClearHiddenTests

        from .gradebook import safe_outputs

        nb = safe_outputs(copy.deepcopy(nb))  # first: it scrubs outputs that reproduce hidden tests
        nb, resources = ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources or {})
        nb, resources = ShortenTestTracebacks().preprocess(nb, resources)
        return super().from_notebook_node(nb, resources, **kw)


def _copy_mathjax(dest):
    """Copy the fetched MathJax into `dest` (files already there and unchanged are kept)."""
    if not os.path.isfile(os.path.join(MATHJAX_SOURCE, "es5", "tex-chtml.js")):
        print(f"conv-course feedback: MathJax is missing from {MATHJAX_SOURCE} (run `python "
              "scripts/fetch_assets.py`, as `make setup` does); the pages show math as TeX source",
              file=sys.stderr)
        return
    for rel in MATHJAX_FILES:
        src, out = os.path.join(MATHJAX_SOURCE, rel), os.path.join(dest, rel.removeprefix("es5/"))
        for path in [src] if os.path.isfile(src) else [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs]:
            target = os.path.normpath(os.path.join(out, os.path.relpath(path, src)))
            if not os.path.exists(target) or not filecmp.cmp(path, target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(path, target)


def resolve_course(course_dir=None):
    """The course directory, the one rule of every instructor command's ``--course-dir``.

    Args:
        course_dir: a folder holding nbgrader_config.py; None means the current directory if it
            holds one, else the repository this package lives in.
    Returns: its absolute path.
    Raises: ValueError if the folder does not exist or has no nbgrader_config.py.
    """
    if course_dir:
        root = os.path.abspath(course_dir)
    elif os.path.isfile("nbgrader_config.py"):
        root = os.path.abspath(".")
    else:
        root = REPO_ROOT
    if not os.path.isdir(root):
        raise ValueError(f"course directory {root} does not exist; `--course-dir` takes the folder that "
                         "holds nbgrader_config.py (the conv-course repository root)")
    if not os.path.isfile(os.path.join(root, "nbgrader_config.py")):
        raise ValueError(f"{root} is not an nbgrader course directory: it has no nbgrader_config.py; "
                         "`--course-dir` takes the folder that holds it (the conv-course repository root)")
    return root


def assignments(root, directory="solutions"):
    """Assignment names under `root/directory`, sorted: folders holding ``<name>/<name>.ipynb``."""
    base = os.path.join(root, directory)
    if not os.path.isdir(base):
        return []
    return sorted(a for a in os.listdir(base) if os.path.isfile(os.path.join(base, a, f"{a}.ipynb")))


def check_assignment(root, name, directory="solutions"):
    """Return `name` if ``root/directory/<name>/<name>.ipynb`` exists.

    Raises: ValueError naming the assignments that `directory` does have (a typo shows its fix).
    """
    known = assignments(root, directory)
    if name not in known:
        raise ValueError(f"unknown assignment {name!r}; {directory}/ has {', '.join(known) or 'none'}")
    return name


def nbgrader_env():
    """The environment for nbgrader: this interpreter's bin/ first on PATH (nbgrader runs
    `alembic` from PATH, and the grading kernel should be this interpreter's)."""
    return with_this_python(dict(os.environ))


def nbgrader_command(*args):
    """The command line that runs ``nbgrader <args>`` with this interpreter, SQLAlchemy's
    warnings hidden (`nbgrader_env.hide_sqlalchemy_warnings`)."""
    return [sys.executable, "-c", _NBGRADER_MAIN, *args]


def nbgrader(root, *args, quiet=False):
    """Run ``nbgrader <args>`` with this interpreter in the course directory `root`.

    Returns the exit status; with `quiet`, nbgrader's log is captured and printed only on failure.
    """
    cmd = nbgrader_command(*args)
    env = nbgrader_env()
    if not quiet:
        return subprocess.call(cmd, cwd=root, env=env)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
    return proc.returncode


def release(root=None, names=(), quiet=False):
    """Regenerate ``exercises/<a>/`` from ``solutions/<a>/`` for `names` (default: all). Returns 0 on success."""
    root = resolve_course(root)
    names = [check_assignment(root, name) for name in names] or assignments(root)
    if not names:
        raise ValueError(f"release: no assignments under {os.path.join(root, 'solutions')}")
    if names == assignments(root):  # one call for all (startup is the slow part); the id is a glob
        return nbgrader(root, "generate_assignment", "*", "--force", quiet=quiet)
    code = 0
    for name in names:
        code = nbgrader(root, "generate_assignment", name, "--force", quiet=quiet) or code
    return code


def feedback(name, root=None, quiet=False):
    """Write ``feedback/<student>/<name>/<notebook>.html`` for every autograded submission of `name`.

    The pages come from `FeedbackExporter` and load MathJax from ``feedback/_static/mathjax/``,
    the course's own copy (written here once): they work with no network, as long as that folder
    travels with them. Returns nbgrader's exit status.
    """
    root = resolve_course(root)
    check_assignment(root, name)
    code = nbgrader(root, "generate_feedback", name, "--force",
                    f"--GenerateFeedback.exporter_class={__name__}.FeedbackExporter", quiet=quiet)
    if code == 0:
        _copy_mathjax(os.path.join(root, "feedback", FEEDBACK_MATHJAX))
    return code


def export_grades(root=None, to="grades.csv", quiet=False):
    """Export every score in the gradebook to the CSV file `to` (relative to the course root).

    nbgrader's columns plus ``flagged``: the reasons the trusted re-check gave for reviewing
    that submission by hand (empty when its points were confirmed).
    Raises: ValueError if `to` is a folder or its folder does not exist.
    """
    root = resolve_course(root)
    path = os.path.join(root, to)
    if os.path.isdir(path):
        raise ValueError(f"cannot write the grades to {path}: it is a folder; name a CSV file in it")
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError(f"cannot write the grades to {path}: folder {os.path.dirname(path)} does not exist; "
                         "create it first")
    code = nbgrader(root, "export", f"--to={path}", quiet=quiet)
    if code == 0:
        _add_flag_column(path, load_flags(root))
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
    parser.add_argument("--to", default="grades.csv",
                        help="CSV file to write, relative to the course directory (default: grades.csv)")
    _add_root(parser)


def run_grades(args):
    return export_grades(args.course_dir, args.to)
