"""Fixtures of the book tests: the built HTML (from the shared `built_book` fixture).

Set CONV_COURSE_BOOK_HTML=/path/to/_build/html to check an already built book instead of
building it (useful while writing a chapter in a private build directory).
"""

import os
import pathlib

import pytest


@pytest.fixture(scope="session")
def book_html(request):
    given = os.environ.get("CONV_COURSE_BOOK_HTML")
    if given:
        path = pathlib.Path(given)
        assert (path / "index.html").is_file(), f"CONV_COURSE_BOOK_HTML={given} has no index.html"
        return path
    return request.getfixturevalue("built_book")
