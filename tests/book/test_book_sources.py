"""Checks on the chapter sources that need no build: front matter, glue keys, includes, citations."""

import re

import pytest

from bookpages import ASSIGNMENT_PATH, CHAPTERS, ROOT, toc_documents

GLUE_USE = re.compile(r"\{glue(?::[a-z]+)?\}`([^`:]+)(?::[^`]*)?`")
GLUE_DEF = re.compile(r"""glue(?:_phrase)?\(\s*["']([^"']+)["']""")    # glue_phrase: per edition
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
TERM = re.compile(r"\{term\}`([^`]+)`")
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n:pyobject: ([\w.]+)")
BIB_KEY = re.compile(r"^@\w+\{([^,]+),", re.M)

# (first author's surname, year, words of the title) the bibliography must hold
REQUIRED_WORKS = [
    ("LeCun", "1998", "Gradient-Based Learning Applied to Document Recognition"),
    ("Dumoulin", "2016", "Convolution Arithmetic"),
    ("Krizhevsky", "2012", "ImageNet} Classification with Deep Convolutional Neural Networks"),
    ("He", "2015", "Delving Deep into Rectifiers"),
    ("Hu", "2021", "Low-Rank Adaptation"),
    ("Goodfellow", "2016", "Deep Learning"),
]


def source(doc):
    for ext in (".md", ".ipynb"):
        path = ROOT / f"{doc}{ext}"
        if path.exists():
            return path
    pytest.fail(f"{doc}: no .md or .ipynb source")


def bib_entries():
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    return {m.group(1).strip(): text[m.start():] .split("\n}\n", 1)[0] for m in BIB_KEY.finditer(text)}


@pytest.mark.parametrize("doc", toc_documents())
def test_every_toc_document_has_a_source(doc):
    assert source(doc).stat().st_size > 0


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_chapter_is_a_myst_notebook_importing_conv_course(doc):
    text = source(doc).read_text(encoding="utf-8")
    assert text.startswith("---\njupytext:"), f"{doc}: no jupytext front matter"
    assert "format_name: myst" in text.split("\n---\n", 1)[0]
    assert "{code-cell} ipython3" in text
    assert re.search(r"^(from conv_course|import conv_course)", text, re.M), f"{doc} does not import conv_course"


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_every_glued_name_is_defined_in_the_same_chapter(doc):
    text = source(doc).read_text(encoding="utf-8")
    missing = set(GLUE_USE.findall(text)) - set(GLUE_DEF.findall(text))
    assert not missing, f"{doc} pastes glue names it never defines: {sorted(missing)}"


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_chapter_source_ends_with_takeaways_then_exercises_naming_the_assignment(doc):
    text = source(doc).read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[-2:] == ["Takeaways", "Exercises"], f"{doc}: last sections are {headings[-2:]}"
    exercises = text.rsplit("\n## Exercises", 1)[1]
    named = [m.group(1) for m in ASSIGNMENT_PATH.finditer(exercises)]
    assert named, f"{doc}: the Exercises section names no exercises/<a>/<a>.ipynb notebook"
    if CHAPTERS[doc]:
        assert CHAPTERS[doc] in named


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_included_package_functions_exist(doc):
    path = source(doc)
    for rel, name in INCLUDE.findall(path.read_text(encoding="utf-8")):
        target = (path.parent / rel).resolve()
        assert target.is_file(), f"{doc}: literalinclude of missing file {rel}"
        code = target.read_text(encoding="utf-8")
        outer, _, method = name.partition(".")
        assert re.search(rf"^(def|class) {outer}\b", code, re.M), f"{doc}: {rel} defines no top-level {outer}"
        if method:
            assert re.search(rf"^\s+def {method}\(", code, re.M), f"{doc}: {rel} has no method {name}"


def test_every_cited_key_is_in_the_bibliography():
    keys = set(bib_entries())
    for path in (ROOT / "book").rglob("*.md"):
        for group in CITE.findall(path.read_text(encoding="utf-8")):
            for key in group.split(","):
                assert key.strip() in keys, f"{path.relative_to(ROOT)} cites unknown key {key.strip()!r}"


@pytest.mark.parametrize("surname,year,title", REQUIRED_WORKS)
def test_bibliography_holds_the_required_works(surname, year, title):
    hits = [body for body in bib_entries().values()
            if re.search(r"author\s*=\s*\{" + surname + ",", body)
            and re.search(r"year\s*=\s*\{" + year + r"\}", body) and title in body]
    assert hits, f"references.bib has no {surname} {year} '{title}'"


def test_every_glossary_term_used_is_defined():
    glossary = (ROOT / "book" / "appendix" / "glossary.md").read_text(encoding="utf-8")
    block = glossary.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    defined = {line.strip().lower() for line in block.splitlines() if line and not line.startswith(" ")}
    for path in (ROOT / "book").rglob("*.md"):
        for term in TERM.findall(path.read_text(encoding="utf-8")):
            target = re.sub(r"^.*<(.+)>$", r"\1", term).lower()
            assert target in defined, f"{path.relative_to(ROOT)} uses undefined glossary term {target!r}"
