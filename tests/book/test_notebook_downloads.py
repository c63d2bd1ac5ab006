"""The chapters to take away: every notebook page of the built book offers its executed notebook,
and the front page all of them as one zip, which runs in a plain Jupyter kernel from any folder."""

import re
import zipfile

import nbformat
import pytest
from bs4 import BeautifulSoup

from bookpages import ROOT, toc_documents

pytestmark = [pytest.mark.book, pytest.mark.slow]

ZIP = "_downloads/conv-course-notebooks.zip"
MYST_ONLY = re.compile(r"\{(glue|glue:text|literalinclude|dropdown|doc|cite|term)\}`?|^\(\w[\w.:-]*\)=\s*$", re.MULTILINE)


def is_notebook_page(doc):
    """A page built from a MyST notebook (it has a `kernelspec` in its front matter)."""
    return "kernelspec:" in (ROOT / f"{doc}.md").read_text(encoding="utf-8").split("\n---", 1)[0]


@pytest.fixture(scope="module")
def taken_away(built_book):
    with zipfile.ZipFile(built_book / ZIP) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def notebooks(taken_away):
    return {name: nbformat.reads(data.decode("utf-8"), as_version=4)
            for name, data in taken_away.items() if name.endswith(".ipynb")}


def test_zip_holds_every_notebook_page_executed_and_readable(taken_away):
    expected = {f"conv-course-notebooks/{doc.removeprefix('book/')}.ipynb"
                for doc in toc_documents() if is_notebook_page(doc)}
    found = notebooks(taken_away)
    assert len(expected) >= 10 and set(found) == expected
    assert "conv-course-notebooks/README.txt" in taken_away
    for name, nb in found.items():
        nbformat.validate(nb)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert code and any(cell.outputs for cell in code), f"{name}: no outputs: not the executed notebook"
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                left = MYST_ONLY.search(cell.source)
                assert not left, f"{name}: MyST-only syntax {left.group(0)!r} that Jupyter shows raw"


def test_every_notebook_page_links_its_notebook_and_the_front_page_the_zip(built_book):
    for doc in ["book/index", *(doc for doc in toc_documents() if is_notebook_page(doc))]:
        page = built_book / f"{doc}.html"
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        link = soup.select_one("p.cc-notebook-download a[download]")
        assert link is not None, f"{doc}: no visible download link"
        target = (page.parent / link["href"]).resolve()
        assert target.is_file(), f"{doc}: its download link {link['href']} leads nowhere"
        assert target.name == ("conv-course-notebooks.zip" if doc == "book/index" else page.stem + ".ipynb")
        assert link.get_text(strip=True), f"{doc}: the download link has no text"


def test_a_chapter_from_the_zip_runs_headless_from_another_folder(built_book, tmp_path):
    """Chapter 1, unpacked far from the repository, executed top to bottom in a fresh kernel."""
    from nbclient import NotebookClient

    with zipfile.ZipFile(built_book / ZIP) as zf:
        zf.extractall(tmp_path)
    path = tmp_path / "conv-course-notebooks" / "01-convolution" / "convolution.ipynb"
    nb = nbformat.read(path, as_version=4)
    shipped = [len(cell.outputs) for cell in nb.cells if cell.cell_type == "code"]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    rerun = [len(cell.outputs) for cell in nb.cells if cell.cell_type == "code"]
    assert not any(out.get("output_type") == "error" for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs)
    assert rerun == shipped, "the notebook's outputs differ in number from the book's execution"

