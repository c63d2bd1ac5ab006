"""The instructor commands of conv_course.autograding.course: one course-directory rule, assignment names,
feedback pages that work offline, grades export, and nbgrader run without SQLAlchemy noise."""

import os
import shutil
import subprocess
import sys
from types import SimpleNamespace
from urllib.parse import urlparse

import nbformat
import pytest

from conv_course import cli
from conv_course.autograding import course

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "security"))
from tinycourse import ASSIGNMENT, CHECKER, CONFIG, HONEST, TESTS, source_notebook, submit  # noqa: E402

# The real course's feedback preprocessors (nbgrader_config.py): hidden tests cleared, test cells' tracebacks cut.
FEEDBACK_CONFIG = """
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades
from conv_course.autograding.course import ShortenTestTracebacks
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ShortenTestTracebacks, CSSHTMLHeaderPreprocessor]
"""
LONG_MESSAGE = "scale: `x` " + "does not fit the shape the checker expects " * 12
LONG_ERROR = f"def scale(x, k):\n    raise ValueError({LONG_MESSAGE!r})\n"
MATH = r"My notes: $H_{out} = \lfloor (H + 2P - K) / S \rfloor + 1$, and $$\sum_i x_i^2 \cancel{y}$$"


def _course_files(root, names=(ASSIGNMENT,)):
    """A course directory with nbgrader_config.py and one source notebook per name (no release)."""
    (root / "nbgrader_config.py").write_text(CONFIG.format(timeout=10) + FEEDBACK_CONFIG)
    for name in names:
        src = root / "solutions" / name
        src.mkdir(parents=True)
        nbformat.write(source_notebook(), src / f"{name}.ipynb")
        (src / "tinycheck.py").write_text(CHECKER)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The tiny course released, two submissions autograded by nbgrader, feedback generated."""
    root = _course_files(tmp_path_factory.mktemp("course"))
    assert course.release(str(root), quiet=True) == 0
    submit(str(root), {"alice": HONEST, "bob": LONG_ERROR})
    path = root / "submitted" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(MATH))
    nbformat.write(nb, path)
    proc = subprocess.run(course.nbgrader_command("autograde", ASSIGNMENT), cwd=root, env=course.nbgrader_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert course.feedback(ASSIGNMENT, str(root), quiet=True) == 0
    pages = {s: root / "feedback" / s / ASSIGNMENT / f"{ASSIGNMENT}.html" for s in ("alice", "bob")}
    return SimpleNamespace(root=root, autograde_log=proc.stderr, pages=pages)


def _soup(path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(), "html.parser")


@pytest.mark.grading
def test_nbgrader_runs_without_sqlalchemy_warnings(graded):
    assert "[AutogradeApp | INFO]" in graded.autograde_log   # the log is there, SQLAlchemy's noise is not
    assert "SAWarning" not in graded.autograde_log and "nbgrader/api.py" not in graded.autograde_log


@pytest.mark.grading
def test_feedback_pages_load_scripts_only_from_the_course(graded):
    for page in graded.pages.values():
        sources = [s["src"] for s in _soup(page).find_all("script", src=True)]
        assert sources, "the page loads MathJax"
        for src in sources:
            url = urlparse(src)
            assert not url.scheme and not url.netloc and not src.startswith("/"), src
            assert (page.parent / url.path).resolve().is_file(), src


@pytest.mark.grading
def test_feedback_score_summary_names_each_test_cell(graded):
    toc = _soup(graded.pages["bob"]).find(id="toc")
    assert [code.get_text() for code in toc.find_all("code")] == list(TESTS)
    assert [a["href"] for a in toc.find_all("a")] == [f"#{gid}" for gid in TESTS]


@pytest.mark.grading
def test_feedback_keeps_test_messages_but_not_tracebacks_or_hidden_tests(graded):
    text = graded.pages["bob"].read_text()
    assert f"ValueError: {LONG_MESSAGE}" in text
    assert "traceback not shown" in text and "Traceback (most recent call last)" not in text
    assert "BEGIN HIDDEN TESTS" not in text and "np.ones((2, 2)), -1.5" not in text


@pytest.mark.grading
def test_mathjax_is_copied_once(graded):
    dest = graded.root / "feedback" / course.FEEDBACK_MATHJAX
    files = [dest / "tex-chtml.js", dest / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff"]
    before = [f.stat().st_mtime_ns for f in files]
    course._copy_mathjax(str(dest))
    assert [f.stat().st_mtime_ns for f in files] == before


def _render(path, blocked):
    """Open a feedback page in Chromium with every non-file request blocked; returns (rendered
    math elements, output blocks that scroll sideways, output blocks holding the long message)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        context = browser.new_context(viewport={"width": 1024, "height": 800})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                      else (blocked.append(route.request.url), route.abort()))
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15_000)
        page.evaluate("MathJax.startup.promise")
        n_math = page.evaluate("document.querySelectorAll('#notebook mjx-container').length")
        overflow = page.evaluate("Array.from(document.querySelectorAll('div.output_area pre'))"
                                 ".filter(p => p.scrollWidth > p.clientWidth + 1).length")
        n_long = page.evaluate(f"Array.from(document.querySelectorAll('div.output_area pre'))"
                               f".filter(p => p.textContent.includes({LONG_MESSAGE[:40]!r})).length")
        browser.close()
    return n_math, overflow, n_long


@pytest.mark.grading
@pytest.mark.browser
def test_feedback_page_shows_math_and_wraps_long_lines_offline(graded):
    if not shutil.which("/usr/bin/chromium"):
        pytest.fail("/usr/bin/chromium missing: run `bash scripts/setup.sh --system` (installs Debian chromium)")
    from concurrent.futures import ThreadPoolExecutor

    # In a thread of its own: in-process grading earlier in the session can leave an asyncio loop
    # running in this thread, and Playwright's sync API refuses to start inside one.
    blocked = []
    with ThreadPoolExecutor(1) as pool:
        n_math, overflow, n_long = pool.submit(_render, graded.pages["bob"], blocked).result()
    assert n_math == 2 and blocked == []
    assert n_long == len(TESTS) and overflow == 0


@pytest.mark.parametrize("argv", [["release"], ["feedback", ASSIGNMENT], ["grades"]])
def test_a_folder_without_nbgrader_config_is_refused(argv, tmp_path, capsys):
    assert cli.main([*argv, "--course-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"conv-course {argv[0]}: ") and str(tmp_path) in err and "nbgrader_config.py" in err


def test_a_missing_course_folder_is_refused(tmp_path, capsys):
    assert cli.main(["grades", "--course-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["release", "feedback"])
def test_a_mistyped_assignment_lists_the_valid_names(command, tmp_path, capsys):
    _course_files(tmp_path, names=("01-corr2d", "02-padding"))
    assert cli.main([command, "01-cor2d", "--course-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"conv-course {command}: ") and "'01-cor2d'" in err and "01-corr2d, 02-padding" in err


def test_resolve_course_and_check_assignment(tmp_path):
    _course_files(tmp_path, names=("01-corr2d",))
    assert course.resolve_course(str(tmp_path)) == str(tmp_path)
    assert course.check_assignment(str(tmp_path), "01-corr2d") == "01-corr2d"
    with pytest.raises(ValueError, match=r"'01-corr2d'; exercises/ has none"):
        course.check_assignment(str(tmp_path), "01-corr2d", directory="exercises")
    with pytest.raises(ValueError, match="no nbgrader_config.py"):
        course.resolve_course(str(tmp_path / "solutions"))


def test_grades_into_a_missing_folder_is_a_message(tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("")
    assert cli.main(["grades", "--to", "out/x.csv", "--course-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conv-course grades: ") and f"{tmp_path / 'out'} does not exist" in err
    assert "Traceback" not in err


def test_grades_into_a_folder_is_a_message(tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("")
    assert cli.main(["grades", "--to", str(tmp_path), "--course-dir", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
