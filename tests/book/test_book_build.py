"""The built book: every page there, chapters end as they should, no errors, accessible basics.

These tests build the book once (the shared `built_book` fixture, cached by jupyter-cache).
"""

import json
import re

import pytest

from bookpages import ASSIGNMENT_PATH, CHAPTERS, article, heading_text, toc_documents, top_sections

pytestmark = [pytest.mark.book, pytest.mark.slow]

UNRENDERED = re.compile(r"\{(glue|glue:text|glue:md|term|cite|doc|ref|numref)\}`")


def page(built_book, doc):
    path = built_book / f"{doc}.html"
    assert path.is_file(), f"{doc}: not built ({path} missing)"
    return path


def all_pages(built_book):
    """The built pages of the table of contents (a missing one fails test_every_toc_document_is_built)."""
    return [p for p in (built_book / f"{doc}.html" for doc in toc_documents()) if p.is_file()]


@pytest.mark.parametrize("doc", toc_documents())
def test_every_toc_document_is_built(built_book, doc):
    assert page(built_book, doc).stat().st_size > 0


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_chapter_ends_with_takeaways_then_exercises(built_book, doc):
    titles = [heading_text(s.find(["h2"])) for s in top_sections(article(page(built_book, doc)))]
    assert titles[-2:] == ["Takeaways", "Exercises"], f"{doc}: last sections are {titles[-2:]}"


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_chapter_exercises_name_the_assignment_and_link_the_student_guide(built_book, doc):
    exercises = top_sections(article(page(built_book, doc)))[-1]
    named = [m.group(1) for m in ASSIGNMENT_PATH.finditer(exercises.get_text(" "))]
    assert named, f"{doc}: Exercises name no exercises/<a>/<a>.ipynb notebook"
    if CHAPTERS[doc]:
        assert CHAPTERS[doc] in named, f"{doc}: Exercises name {named}, not {CHAPTERS[doc]}"
    links = [a["href"] for a in exercises.find_all("a", href=True)]
    assert any("appendix/student-guide.html" in href for href in links), \
        f"{doc}: Exercises do not link the student guide (links: {links})"


def test_no_page_shows_an_execution_error(built_book):
    bad = []
    for path in all_pages(built_book):
        for cell in article(path).find_all("div", class_="cell"):
            if "tag_raises-exception" in cell.get("class", []):
                continue  # the error is the lesson
            if cell.find(class_=["traceback", "stderr"]) or "Traceback (most recent call last)" in cell.get_text():
                bad.append(f"{path.relative_to(built_book)}: {cell.get_text(' ', strip=True)[:120]}")
    assert not bad, "cells show errors:\n" + "\n".join(bad)


def test_no_page_shows_unrendered_roles(built_book):
    bad = [f"{p.relative_to(built_book)}: {m.group(0)}" for p in all_pages(built_book)
           for m in UNRENDERED.finditer(article(p).get_text())]
    assert not bad, bad


def test_every_image_has_alt_text(built_book):
    missing = [f"{p.relative_to(built_book)}: {img.get('src')}" for p in all_pages(built_book)
               for img in article(p).find_all("img") if not (img.get("alt") or "").strip()]
    assert not missing, "images without alt text:\n" + "\n".join(missing)


def test_headings_are_in_order_with_one_h1(built_book):
    problems = []
    for path in all_pages(built_book):
        levels = [int(h.name[1]) for h in article(path).find_all(re.compile(r"^h[1-6]$"))]
        if levels.count(1) != 1 or levels[0] != 1:
            problems.append(f"{path.relative_to(built_book)}: h1 count {levels.count(1)}, first h{levels[0]}")
        for prev, cur in zip(levels, levels[1:]):
            if cur > prev + 1:
                problems.append(f"{path.relative_to(built_book)}: h{prev} followed by h{cur}")
    assert not problems, problems


def test_glossary_defines_terms_and_cites_the_bibliography(built_book):
    node = article(page(built_book, "book/appendix/glossary"))
    terms = [heading_text(dt) for dt in node.select("dl.glossary dt")]
    assert {"Stride", "Padding", "Receptive field", "Transposed convolution"} <= set(terms), terms
    cites = [a["href"] for a in node.find_all("a", href=True) if "bibliography.html#" in a["href"]]
    assert cites, "the glossary renders no citation links"


def test_citations_resolve_to_bibliography_entries(built_book):
    bib = page(built_book, "book/appendix/bibliography")
    ids = {tag["id"] for tag in article(bib).find_all(id=True)}
    text = " ".join(article(bib).get_text(" ").split()).lower()
    for title in ["Gradient-Based Learning Applied to Document Recognition",
                  "A Guide to Convolution Arithmetic for Deep Learning",
                  "ImageNet Classification with Deep Convolutional Neural Networks",
                  "Delving Deep into Rectifiers", "Low-Rank Adaptation of Large Language Models",
                  "Deep Learning"]:
        assert title.lower() in text, f"bibliography lacks {title!r}"
    for doc in CHAPTERS:
        path = built_book / f"{doc}.html"
        if not path.is_file():
            continue
        for a in article(path).find_all("a", href=re.compile(r"bibliography\.html#")):
            assert a["href"].split("#", 1)[1] in ids, f"{doc}: citation {a['href']} has no target"


def test_classic_kernels_page_embeds_the_kernel_explorer_state(built_book):
    html = page(built_book, "book/04-classic-kernels/classic-kernels").read_text(encoding="utf-8")
    state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S)
    assert state, "no saved widget state: the widget cell was not executed at build time"
    models = json.loads(state.group(1))["state"]
    views = re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>', html, re.S)
    assert views, "no widget view in the page"
    for view in views:
        model = models[json.loads(view)["model_id"]]
        assert model["state"].get("_esm"), "the view's model carries no widget module (_esm)"
