"""Shared fixtures: hypothesis profiles and the once-per-session book build."""

import os
import pathlib

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def built_book():
    """Build the book (jupyter-cache makes repeats cheap) and return the `_build/html` path.

    A file lock keeps parallel pytest workers from building at the same time; the second
    worker finds everything cached. Set CONV_COURSE_BOOK_HTML=/path/to/_build/html to check an
    already built book instead (a private build, e.g. while writing a chapter).
    """
    given = os.environ.get("CONV_COURSE_BOOK_HTML")
    if given:
        path = pathlib.Path(given)
        assert (path / "index.html").is_file(), f"CONV_COURSE_BOOK_HTML={given} has no index.html"
        return path
    from filelock import FileLock

    from conv_course.book import build

    (ROOT / "_build").mkdir(exist_ok=True)
    with FileLock(str(ROOT / "_build" / ".build.lock")):
        code = build(str(ROOT), quiet=True)
    assert code == 0, "jupyter-book build failed (see the output above)"
    html = ROOT / "_build" / "html"
    assert (html / "index.html").is_file()
    return html
